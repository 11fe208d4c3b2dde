//! The response over in-memory ports: what is changed, what is audited, what is left alone
//! (the emulator-backed tests, tests/respond_cli.rs and the fault-injection matrix, drive
//! the real adapters, the replacement and the investigation).

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::domain::audit_record::Phase;
use crate::domain::lifecycle::Stage;
use crate::domain::model::{AccessKey, AccessKeyId, ApiKey, KeyStatus, Tags};
use crate::domain::policy::Policy;
use crate::domain::respond::{Exposure, Reason, Target, Trigger};
use crate::ports::{
    ActivityEvent, ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory, KeyTester, PortError, PortResult,
    SecretValue, SystemClock,
};
use crate::steps::memory::{Me, MemAudit, MemIam, MemState, MemUser, NoSecrets, Sent};
use crate::steps::status::Status;

const KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const OTHER: &str = "AKIAIOSFODNN7OTHER00";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap()
}

fn enforce() -> Policy {
    Policy::from_toml("mode = \"enforce\"\n", "test").unwrap()
}

/// No API Gateway, no key tester, no CloudTrail history: the response to an unbound key
/// never reaches them.
struct Nothing;

fn unused(operation: &str) -> PortError {
    PortError::Other {
        operation: operation.into(),
        message: "not used by these tests".into(),
    }
}

#[async_trait]
impl ApiKeyInventory for Nothing {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        Err(unused("apigateway:GetApiKeys"))
    }
}

#[async_trait]
impl ApiKeyAdmin for Nothing {
    async fn key(&self, _id: &str) -> PortResult<Option<ApiKeyInfo>> {
        Err(unused("apigateway:GetApiKey"))
    }
    async fn keys_named(&self, _p: &str) -> PortResult<Vec<ApiKeyInfo>> {
        Err(unused("apigateway:GetApiKeys"))
    }
    async fn create_key(
        &self,
        _n: &str,
        _d: Option<&str>,
        _t: &Tags,
        _v: &SecretValue,
    ) -> PortResult<String> {
        Err(unused("apigateway:CreateApiKey"))
    }
    async fn key_value(&self, _id: &str) -> PortResult<SecretValue> {
        Err(unused("apigateway:GetApiKey"))
    }
    async fn plan_keys(&self, _p: &str) -> PortResult<Vec<String>> {
        Err(unused("apigateway:GetUsagePlanKeys"))
    }
    async fn key_plans(&self, _id: &str) -> PortResult<Vec<String>> {
        Err(unused("apigateway:GetUsagePlans"))
    }
    async fn attach(&self, _p: &str, _k: &str) -> PortResult<()> {
        Err(unused("apigateway:CreateUsagePlanKey"))
    }
    async fn detach(&self, _p: &str, _k: &str) -> PortResult<()> {
        Err(unused("apigateway:DeleteUsagePlanKey"))
    }
    async fn set_enabled(&self, _id: &str, _e: bool) -> PortResult<()> {
        Err(unused("apigateway:UpdateApiKey"))
    }
    async fn delete_key(&self, _id: &str) -> PortResult<()> {
        Err(unused("apigateway:DeleteApiKey"))
    }
}

#[async_trait]
impl KeyTester for Nothing {
    async fn works(&self, _k: &AccessKeyId, _s: &SecretValue) -> PortResult<bool> {
        Err(unused("sts:GetCallerIdentity"))
    }
}

#[async_trait]
impl ActivityLog for Nothing {
    async fn enabled_regions(&self) -> PortResult<Vec<String>> {
        Ok(vec!["us-east-1".into()])
    }
    async fn key_events(
        &self,
        _r: &str,
        _k: &AccessKeyId,
        _s: DateTime<Utc>,
        _e: DateTime<Utc>,
        _l: Option<usize>,
    ) -> PortResult<Vec<ActivityEvent>> {
        Ok(Vec::new())
    }
}

struct World {
    iam: MemIam,
    state: MemState,
    audit: MemAudit,
    sent: Sent,
}

/// User `ci` (tags `tags`) with an active key [`KEY`], and user `other` with [`OTHER`].
fn world(tags: &[(&str, &str)]) -> World {
    let key = |id: &str| AccessKey {
        id: AccessKeyId::parse(id).unwrap(),
        status: KeyStatus::Active,
        created: now() - chrono::Duration::days(30),
        last_used: None,
    };
    let iam = MemIam::default();
    {
        let mut w = iam.0.lock().unwrap();
        w.users.insert(
            "ci".into(),
            MemUser {
                tags: tags
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                keys: vec![key(KEY)],
                ..MemUser::default()
            },
        );
        w.users.insert(
            "other".into(),
            MemUser {
                keys: vec![key(OTHER)],
                ..MemUser::default()
            },
        );
    }
    World {
        iam,
        state: MemState::default(),
        audit: MemAudit::default(),
        sent: Sent(Default::default()),
    }
}

impl World {
    fn ports(&self) -> RespondPorts<'_> {
        RespondPorts {
            hook: HookPorts {
                identity: &Me,
                secrets: &NoSecrets,
                iam: &self.iam,
                iam_admin: &self.iam,
                tester: &Nothing,
                api_keys: &Nothing,
                api_admin: &Nothing,
                state: &self.state,
                audit: &self.audit,
                notifier: &self.sent,
            },
            roles: &self.iam,
            activity: &Nothing,
        }
    }

    fn status(&self, user: &str, key: &str) -> KeyStatus {
        self.iam.0.lock().unwrap().users[user]
            .keys
            .iter()
            .find(|k| k.id.as_str() == key)
            .unwrap()
            .status
    }
}

fn request(target: Target, event: &str) -> Request {
    Request {
        exposure: Exposure {
            target,
            reason: Reason::Exposed,
            trigger: Trigger::Health,
            event_id: event.into(),
            event_type: "AWS_RISK_CREDENTIALS_EXPOSED".into(),
            account: Some("123456789012".into()),
            user: None,
        },
        override_exemption: false,
        region: "us-east-1".into(),
    }
}

fn key_target() -> Target {
    Target::Key(AccessKeyId::parse(KEY).unwrap())
}

async fn run(w: &World, policy: &Policy, request: &Request) -> Result<Response, StepError> {
    respond(
        &w.ports(),
        policy,
        request,
        now(),
        &SystemClock::Fixed(now()),
    )
    .await
}

#[tokio::test]
async fn an_unbound_key_is_deactivated_its_sessions_revoked_and_every_change_audited() {
    let w = world(&[]);
    let done = run(&w, &enforce(), &request(key_target(), "event-1"))
        .await
        .unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(w.status("ci", KEY), KeyStatus::Inactive);
    assert_eq!(w.status("other", OTHER), KeyStatus::Active, "nobody else");
    assert_eq!(
        w.iam.changes(),
        vec![
            format!("UpdateAccessKey ci {KEY} active=false"),
            format!("PutUserPolicy ci {}", crate::domain::respond::REVOKE_POLICY),
        ]
    );
    let steps: Vec<(&str, Status)> = done.steps.iter().map(|s| (s.step, s.status)).collect();
    assert_eq!(
        steps,
        vec![
            ("replace", Status::Skipped),
            ("deactivate", Status::Done),
            ("hold", Status::Done),
            ("revoke-sessions", Status::Done),
            ("record", Status::Done)
        ]
    );
    // Intent before and outcome after each of the two changes.
    let records = w.audit.resource_records();
    for action in ["deactivate", "revoke-sessions"] {
        let phases: Vec<Phase> = records
            .iter()
            .filter(|r| r.action == action)
            .map(|r| r.phase)
            .collect();
        assert_eq!(phases, vec![Phase::Intent, Phase::Outcome], "{action}");
    }
    // The lifecycle holds the key as evidence.
    let stages: Vec<Stage> = crate::steps::iam_keys::KeyRecordStore::new(
        &w.state,
        &crate::domain::model::AccountId::parse("123456789012").unwrap(),
    )
    .list()
    .await
    .unwrap()
    .into_iter()
    .map(|r| r.stage)
    .collect();
    assert_eq!(stages, vec![Stage::Contained]);
    assert_eq!(done.undo.len(), 2);
    assert!(done.undo[0].contains("keyrotor reactivate iam-key"));
}

#[tokio::test]
async fn the_same_event_again_or_another_after_containment_changes_nothing() {
    let w = world(&[]);
    run(&w, &enforce(), &request(key_target(), "event-1"))
        .await
        .unwrap();
    let changes = w.iam.changes();
    let records = w.audit.resource_records().len();
    for event in ["event-1", "event-2"] {
        let again = run(&w, &enforce(), &request(key_target(), event))
            .await
            .unwrap();
        assert_eq!(again.status, Status::NoOp, "{event}");
    }
    assert_eq!(w.iam.changes(), changes);
    assert_eq!(w.audit.resource_records().len(), records);
    // After a person reactivated the key, the same event does not undo the undo; a new
    // event contains it again.
    crate::ports::IamKeyAdmin::set_key_active(
        &w.iam,
        "ci",
        &AccessKeyId::parse(KEY).unwrap(),
        true,
    )
    .await
    .unwrap();
    let same = run(&w, &enforce(), &request(key_target(), "event-1"))
        .await
        .unwrap();
    assert_eq!(same.status, Status::NoOp);
    assert_eq!(w.status("ci", KEY), KeyStatus::Active);
    let new = run(&w, &enforce(), &request(key_target(), "event-3"))
        .await
        .unwrap();
    assert_eq!(new.status, Status::Done);
    assert_eq!(w.status("ci", KEY), KeyStatus::Inactive);
}

#[tokio::test]
async fn a_break_glass_user_is_told_urgently_and_left_alone_unless_overridden() {
    let w = world(&[]);
    let policy = Policy::from_toml(
        "mode = \"enforce\"\n[exemptions]\nbreak_glass = [\"ci\"]\n",
        "test",
    )
    .unwrap();
    let done = run(&w, &policy, &request(key_target(), "event-1"))
        .await
        .unwrap();
    assert_eq!(done.status, Status::Blocked);
    assert!(
        done.detail.contains("--override-exemption"),
        "{}",
        done.detail
    );
    assert!(w.iam.changes().is_empty());
    assert_eq!(w.sent.events(), vec!["action-blocked".to_owned()]);
    let mut overridden = request(key_target(), "event-1");
    overridden.override_exemption = true;
    let done = run(&w, &policy, &overridden).await.unwrap();
    assert_eq!(done.status, Status::Done);
    assert_eq!(w.status("ci", KEY), KeyStatus::Inactive);
}

#[tokio::test]
async fn plan_mode_records_the_decision_and_changes_nothing() {
    let w = world(&[]);
    let plan = Policy::from_toml("mode = \"plan\"\n", "test").unwrap();
    let done = run(&w, &plan, &request(key_target(), "event-1"))
        .await
        .unwrap();
    assert_eq!(done.status, Status::DryRun);
    assert!(w.iam.changes().is_empty());
    assert!(
        w.audit
            .resource_records()
            .iter()
            .all(|r| r.phase == Phase::Decision)
    );
}

#[tokio::test]
async fn a_user_target_resolves_to_its_only_active_key_and_never_guesses() {
    let w = world(&[]);
    let done = run(&w, &enforce(), &request(Target::User("ci".into()), "e"))
        .await
        .unwrap();
    assert_eq!(done.key, KEY);
    // Two active keys: which one leaked is unknown; nothing is changed.
    let w = world(&[]);
    w.iam
        .0
        .lock()
        .unwrap()
        .users
        .get_mut("ci")
        .unwrap()
        .keys
        .push(AccessKey {
            id: AccessKeyId::parse("AKIAIOSFODNN7SECOND0").unwrap(),
            status: KeyStatus::Active,
            created: now(),
            last_used: None,
        });
    let err = run(&w, &enforce(), &request(Target::User("ci".into()), "e"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StepError::InvalidInput(ref m) if m.contains("2 active keys")),
        "{err}"
    );
    assert!(w.iam.changes().is_empty());
}

#[tokio::test]
async fn temporary_and_unknown_keys_are_refused_with_the_reason() {
    let w = world(&[]);
    let temporary = Target::Key(AccessKeyId::parse("ASIAIOSFODNN7EXAMPLE").unwrap());
    let err = run(&w, &enforce(), &request(temporary, "e"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("temporary credential"), "{err}");
    let unknown = Target::Key(AccessKeyId::parse("AKIAIOSFODNN7UNKNOWN").unwrap());
    let err = run(&w, &enforce(), &request(unknown, "e"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(w.iam.changes().is_empty());
}

#[tokio::test]
async fn an_event_about_another_account_is_refused_and_changes_nothing() {
    let w = world(&[]);
    let mut elsewhere = request(key_target(), "e");
    elsewhere.exposure.account = Some("999999999999".into());
    let err = run(&w, &enforce(), &elsewhere).await.unwrap_err();
    assert!(
        matches!(err, StepError::InvalidInput(ref m) if m.contains("999999999999")),
        "{err}"
    );
    assert!(w.iam.changes().is_empty());
    // The refusal is on the event's record, and told to a person.
    let records = w.audit.resource_records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].resource_id, "event:e");
    assert_eq!(records[0].reason, "could-not-act");
    assert_eq!(w.sent.events(), vec!["action-blocked".to_owned()]);
}

#[tokio::test]
async fn a_key_of_another_user_than_the_event_names_is_left_to_a_person() {
    let w = world(&[]);
    let mut crafted = request(key_target(), "e");
    crafted.exposure.user = Some("mallory".into());
    let done = run(&w, &enforce(), &crafted).await.unwrap();
    assert_eq!(done.status, Status::Blocked);
    assert!(done.detail.contains("mallory"), "{}", done.detail);
    assert!(w.iam.changes().is_empty());
    assert_eq!(w.status("ci", KEY), KeyStatus::Active);
}

#[tokio::test]
async fn another_active_key_nobody_accounts_for_is_reported_not_touched() {
    let w = world(&[]);
    w.iam
        .0
        .lock()
        .unwrap()
        .users
        .get_mut("ci")
        .unwrap()
        .keys
        .push(AccessKey {
            id: AccessKeyId::parse("AKIAIOSFODNN7SECOND0").unwrap(),
            status: KeyStatus::Active,
            created: now(),
            last_used: None,
        });
    let done = run(&w, &enforce(), &request(key_target(), "e"))
        .await
        .unwrap();
    let other = done.steps.iter().find(|s| s.step == "other-keys").unwrap();
    assert_eq!(other.status, Status::Blocked);
    assert!(
        other.detail.contains("AKIAIOSFODNN7SECOND0"),
        "{}",
        other.detail
    );
    assert_eq!(w.status("ci", "AKIAIOSFODNN7SECOND0"), KeyStatus::Active);
    assert_eq!(w.status("ci", KEY), KeyStatus::Inactive);
    assert_eq!(crate::steps::outcome::JobOutcome::failed(&done), 1);
}

#[tokio::test]
async fn a_retried_response_keeps_the_first_revocation_cut_off() {
    use super::store::{ResponseRecord, ResponseStore};
    let w = world(&[]);
    let first = Utc.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
    // A response that stopped before it went through (complete = false), after revoking.
    let stopped = ResponseRecord {
        key: AccessKeyId::parse(KEY).unwrap(),
        user: "ci".into(),
        events: Vec::new(),
        run_id: "run-earlier".into(),
        contained_at: first,
        replacement: None,
        complete: false,
        revoked_before: Some(first),
        version: 0,
    };
    let account = crate::domain::model::AccountId::parse("123456789012").unwrap();
    assert!(
        ResponseStore::new(&w.state, &account)
            .put(&stopped)
            .await
            .unwrap()
    );
    let done = run(&w, &enforce(), &request(key_target(), "e"))
        .await
        .unwrap();
    assert_eq!(done.sessions_revoked_before, Some(first));
    let document =
        w.iam.0.lock().unwrap().users["ci"].inline[crate::domain::respond::REVOKE_POLICY].clone();
    assert_eq!(
        document["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
        "2026-12-04T09:00:00Z"
    );
    // A new exposure after the response went through revokes up to its own time.
    crate::ports::IamKeyAdmin::set_key_active(
        &w.iam,
        "ci",
        &AccessKeyId::parse(KEY).unwrap(),
        true,
    )
    .await
    .unwrap();
    let again = run(&w, &enforce(), &request(key_target(), "later"))
        .await
        .unwrap();
    assert_eq!(again.sessions_revoked_before, Some(now()));
}
