//! Behaviour the emulator cannot show, with injected responses: IAM's eventual
//! consistency (a new key rejected for a while), and errors that must stop a step.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::TimeZone;

use super::iam::IAM_TEST_BACKOFF;
use super::iam_attempt::Attempt;
use super::*;
use crate::domain::audit_record::Outcome;
use crate::domain::credential_report::ReportRow;
use crate::domain::model::AccessKeyId;
use crate::domain::model::{AccessKey, ApiKey, LastUsed, Tags};
use crate::ports::SecretValue;
use crate::ports::{ApiKeyInfo, PortResult, SystemClock};
use crate::steps::memory::{Me, MemAudit, MemState};

const TOKEN: &str = "11111111-2222-3333-4444-555555555555";
const NEW_KEY: &str = "AKIAAAAAAAAAAAAANEW1";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

/// A secret with a pending IAM key, and a tester that rejects the key `rejections`
/// times before accepting it (or always, with `usize::MAX`).
struct World {
    rejections: usize,
    tries: Mutex<usize>,
}

#[async_trait]
impl SecretVersions for World {
    async fn describe(&self, _secret: &str) -> PortResult<Option<SecretDescription>> {
        Ok(Some(SecretDescription {
            arn: SECRET_ARN.into(),
            name: "svc/iam".into(),
            rotation_enabled: true,
            tags: Tags::from([(TAG_TYPE.to_owned(), TYPE_IAM.to_owned())]),
            versions: BTreeMap::from([
                ("v0".to_owned(), vec!["AWSCURRENT".to_owned()]),
                (TOKEN.to_owned(), vec!["AWSPENDING".to_owned()]),
            ]),
        }))
    }
    async fn rotate_now(&self, _secret: &str) -> PortResult<String> {
        unreachable!()
    }
    async fn stages(&self, _s: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>> {
        unreachable!()
    }
    async fn value(
        &self,
        _secret: &str,
        _version: Option<&str>,
        _stage: Option<&str>,
    ) -> PortResult<Option<SecretValue>> {
        Ok(Some(SecretValue::new(
            serde_json::json!({"userName": "svc", "accessKeyId": NEW_KEY, "secretAccessKey": "s3cr3t"})
                .to_string(),
        )))
    }
    async fn put_pending(&self, _s: &str, _t: &str, _v: &SecretValue) -> PortResult<()> {
        unreachable!()
    }
    async fn move_stage(
        &self,
        _s: &str,
        _stage: &str,
        _to: Option<&str>,
        _from: Option<&str>,
    ) -> PortResult<()> {
        unreachable!()
    }
}

#[async_trait]
impl KeyTester for World {
    async fn works(&self, key: &AccessKeyId, secret: &SecretValue) -> PortResult<bool> {
        assert_eq!((key.as_str(), secret.expose()), (NEW_KEY, "s3cr3t"));
        let mut tries = self.tries.lock().unwrap();
        *tries += 1;
        Ok(*tries > self.rejections)
    }
}

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc/iam";

/// IAM as the binding check reads it: user `svc` names the secret and owns the key.
#[async_trait]
impl IamInventory for World {
    async fn credential_report(
        &self,
        _now: DateTime<Utc>,
        _max_age_hours: u32,
    ) -> PortResult<Vec<ReportRow>> {
        unreachable!()
    }
    async fn access_keys(&self, _u: &str) -> PortResult<Vec<AccessKey>> {
        unreachable!()
    }
    async fn user_tags(&self, _u: &str) -> PortResult<Tags> {
        unreachable!()
    }
    async fn key_last_used(&self, _k: &AccessKeyId) -> PortResult<Option<LastUsed>> {
        unreachable!()
    }
    async fn key_owner(&self, _k: &AccessKeyId) -> PortResult<Option<String>> {
        Ok(Some("svc".into()))
    }
    async fn user(&self, name: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
        Ok(Some(crate::domain::model::IamUser {
            name: name.to_owned(),
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
            path: "/".into(),
            created: now(),
            tags: Tags::from([(
                crate::domain::model::TAG_SECRET.to_owned(),
                SECRET_ARN.to_owned(),
            )]),
            keys: Vec::new(),
            is_root: false,
        }))
    }
}

/// Ports testSecret never reaches.
struct Unused;
#[async_trait]
impl IamInventory for Unused {
    async fn credential_report(&self, _n: DateTime<Utc>, _h: u32) -> PortResult<Vec<ReportRow>> {
        unreachable!()
    }
    async fn access_keys(&self, _u: &str) -> PortResult<Vec<AccessKey>> {
        unreachable!()
    }
    async fn user_tags(&self, _u: &str) -> PortResult<Tags> {
        unreachable!()
    }
    async fn key_last_used(&self, _k: &AccessKeyId) -> PortResult<Option<LastUsed>> {
        unreachable!()
    }
    async fn key_owner(&self, _k: &AccessKeyId) -> PortResult<Option<String>> {
        unreachable!()
    }
    async fn user(&self, _u: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
        unreachable!()
    }
}
#[async_trait]
impl IamKeyAdmin for Unused {
    async fn create_key(&self, _u: &str) -> PortResult<(AccessKeyId, SecretValue)> {
        unreachable!()
    }
    async fn set_key_active(&self, _u: &str, _k: &AccessKeyId, _a: bool) -> PortResult<()> {
        unreachable!()
    }
    async fn delete_key(&self, _u: &str, _k: &AccessKeyId) -> PortResult<()> {
        unreachable!()
    }
}
#[async_trait]
impl ApiKeyInventory for Unused {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        unreachable!()
    }
}
#[async_trait]
impl ApiKeyAdmin for Unused {
    async fn key(&self, _id: &str) -> PortResult<Option<ApiKeyInfo>> {
        unreachable!()
    }
    async fn keys_named(&self, _p: &str) -> PortResult<Vec<ApiKeyInfo>> {
        unreachable!()
    }
    async fn create_key(
        &self,
        _n: &str,
        _d: Option<&str>,
        _t: &Tags,
        _v: &SecretValue,
    ) -> PortResult<String> {
        unreachable!()
    }
    async fn key_value(&self, _id: &str) -> PortResult<SecretValue> {
        unreachable!()
    }
    async fn plan_keys(&self, _p: &str) -> PortResult<Vec<String>> {
        unreachable!()
    }
    async fn key_plans(&self, _id: &str) -> PortResult<Vec<String>> {
        unreachable!()
    }
    async fn attach(&self, _p: &str, _k: &str) -> PortResult<()> {
        unreachable!()
    }
    async fn detach(&self, _p: &str, _k: &str) -> PortResult<()> {
        unreachable!()
    }
    async fn set_enabled(&self, _id: &str, _e: bool) -> PortResult<()> {
        unreachable!()
    }
    async fn delete_key(&self, _id: &str) -> PortResult<()> {
        unreachable!()
    }
}

async fn test_secret(world: &World, audit: &MemAudit) -> Result<StepResult, StepError> {
    run(world, audit, ProtocolStep::TestSecret, &Policy::default()).await
}

async fn run(
    world: &World,
    audit: &MemAudit,
    step: ProtocolStep,
    policy: &Policy,
) -> Result<StepResult, StepError> {
    let state = MemState::default();
    let ports = HookPorts {
        identity: &Me,
        secrets: world,
        iam: world,
        iam_admin: &Unused,
        tester: world,
        api_keys: &Unused,
        api_admin: &Unused,
        state: &state,
        audit,
        notifier: &crate::aws::sns::NoNotifier,
    };
    let request = Request {
        step,
        secret_id: "svc/iam".into(),
        token: TOKEN.into(),
    };
    run_step(
        &ports,
        policy,
        &request,
        Caller::SecretsManager,
        "us-east-1",
        now(),
        &SystemClock::Fixed(now()),
    )
    .await
}

// Virtual time: the backoff sleeps are skipped, their schedule is what is tested.
#[tokio::test(start_paused = true)]
async fn a_new_key_rejected_for_a_while_is_retried_with_backoff_until_it_works() {
    let world = World {
        rejections: 3,
        tries: Mutex::new(0),
    };
    let started = tokio::time::Instant::now();
    let done = test_secret(&world, &MemAudit::default()).await.unwrap();
    assert_eq!(done.status, Status::Done);
    assert!(done.detail.contains("attempt 4"), "{}", done.detail);
    // Waited 1 + 2 + 4 seconds between the four attempts.
    assert_eq!(started.elapsed().as_secs(), 7);
}

#[tokio::test(start_paused = true)]
async fn a_key_that_never_works_fails_the_step_as_retryable_and_audited() {
    let world = World {
        rejections: usize::MAX,
        tries: Mutex::new(0),
    };
    let audit = MemAudit::default();
    let err = test_secret(&world, &audit).await.unwrap_err();
    assert_eq!(err.name(), "KeyRotor.Retryable", "{err}");
    assert!(err.to_string().contains("eventual consistency"), "{err}");
    assert_eq!(*world.tries.lock().unwrap(), IAM_TEST_BACKOFF.len());
    let records = audit.resource_records();
    assert_eq!(records.len(), 2, "intent and failed outcome");
    assert_eq!(records[1].outcome, Some(Outcome::Failed));
    assert!(records.iter().all(|r| !r.detail.contains("s3cr3t")));
}

#[tokio::test]
async fn in_plan_mode_the_hook_changes_nothing() {
    let world = World {
        rejections: 0,
        tries: Mutex::new(0),
    };
    let audit = MemAudit::default();
    for step in [ProtocolStep::CreateSecret, ProtocolStep::FinishSecret] {
        let err = run(&world, &audit, step, &Policy::default())
            .await
            .unwrap_err();
        assert_eq!(err.name(), "KeyRotor.Blocked", "{err}");
        assert!(err.to_string().contains("mode"), "{err}");
    }
    assert!(audit.records.lock().unwrap().is_empty());
}

#[test]
fn only_keys_an_attempt_made_count_as_its_leftovers() {
    let t = now();
    let key = |id: &str, created| AccessKey {
        id: AccessKeyId::parse(id).unwrap(),
        status: crate::domain::model::KeyStatus::Active,
        created,
        last_used: None,
    };
    let mut attempt = Attempt {
        before: vec!["AKIAAAAAAAAAAAAAOLD1".into()],
        times: vec![t],
        created: Vec::new(),
    };
    // The answer of the attempt at `t` was lost: a new key created at `t` is its own,
    // one created an hour later (by a person) is not, and a key from before never is.
    assert!(attempt.created(&key(
        "AKIAAAAAAAAAAAAANEW1",
        t + chrono::Duration::seconds(2)
    )));
    assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAPER1", t + chrono::Duration::hours(1))));
    assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAOLD1", t)));
    // Once CreateAccessKey's answer is noted, only the key it named is the attempt's:
    // a person's key made in the same second is not.
    attempt.times.clear();
    attempt.created.push("AKIAAAAAAAAAAAAANEW1".into());
    assert!(attempt.created(&key("AKIAAAAAAAAAAAAANEW1", t)));
    assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAPER1", t)));
    let back = Attempt::from_attrs(&attempt.attrs()).unwrap();
    assert_eq!(back, attempt);
}

#[test]
fn events_with_missing_or_wrong_fields_name_the_field() {
    for (event, field) in [
        (
            serde_json::json!({"SecretId": "s", "ClientRequestToken": "t"}),
            "Step",
        ),
        (
            serde_json::json!({"Step": "createSecret", "ClientRequestToken": "t"}),
            "SecretId",
        ),
        (
            serde_json::json!({"Step": "createSecret", "SecretId": "", "ClientRequestToken": "t"}),
            "SecretId",
        ),
        (
            serde_json::json!({"Step": "create", "SecretId": "s", "ClientRequestToken": "t"}),
            "create",
        ),
        (serde_json::json!("truncated"), "expected"),
    ] {
        let err = Request::from_event(event.clone()).unwrap_err();
        assert_eq!(err.name(), "KeyRotor.InvalidInput");
        assert!(err.to_string().contains(field), "{event}: {err}");
    }
}
