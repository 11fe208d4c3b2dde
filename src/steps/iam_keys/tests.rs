//! Invariants 4 and 5 with in-memory ports: no IAM change without its intent record; a
//! run that stops after any AWS call converges on the next run; one run at a time; a
//! report that cannot be read changes nothing.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::TimeZone;

use super::*;
use crate::domain::credential_report::{ReportKey, ReportRow};
use crate::domain::model::{AccessKey, AccessKeyId, KeyStatus, LastUsed, Tags};
use crate::ports::{Notification, PortError, PortResult, SystemClock};
use crate::steps::memory::{Me, MemAudit, MemState};

const KEY: &str = "AKIAAAAAAAAAAAAA0001";

fn t(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
}

fn enforce() -> Policy {
    Policy {
        mode: Mode::Enforce,
        ..Policy::default()
    }
}

/// One user, one key created on day 0 and last used on day 10.
struct FakeIam {
    key: Mutex<Option<AccessKey>>,
    calls: Mutex<Vec<&'static str>>,
    /// Fail the IAM change with this error (after recording the call).
    fail_change: Option<PortError>,
    malformed_report: bool,
    /// ListAccessKeys fails (throttled) from this call on (counting from 1).
    fail_list_from: Option<usize>,
    list_calls: Mutex<usize>,
    /// The user was renamed to this after the credential report was made: the report
    /// still says `bob`, IAM knows only the new name.
    renamed_to: Option<&'static str>,
    /// GetAccessKeyLastUsed fails (throttled) when set.
    fail_last_used: bool,
}

impl FakeIam {
    fn new() -> FakeIam {
        FakeIam {
            key: Mutex::new(Some(AccessKey {
                id: AccessKeyId::parse(KEY).unwrap(),
                status: KeyStatus::Active,
                created: t(0),
                last_used: None,
            })),
            calls: Mutex::new(Vec::new()),
            fail_change: None,
            malformed_report: false,
            fail_list_from: None,
            list_calls: Mutex::new(0),
            renamed_to: None,
            fail_last_used: false,
        }
    }

    fn used(&self) -> LastUsed {
        LastUsed {
            at: t(10),
            service: Some("s3".into()),
            region: None,
        }
    }

    fn status(&self) -> Option<KeyStatus> {
        self.key.lock().unwrap().as_ref().map(|k| k.status)
    }
}

#[async_trait]
impl IamInventory for FakeIam {
    async fn credential_report(
        &self,
        _now: DateTime<Utc>,
        _max_age_hours: u32,
    ) -> PortResult<Vec<ReportRow>> {
        if self.malformed_report {
            // A report truncated after its header, through the real decoder.
            let truncated = b"user,arn,user_creation_time\nbob,arn:aws:iam::123456789012:user/bob,2026-01-01T00:00:00+00:00\n";
            let e = crate::domain::credential_report::parse(truncated).unwrap_err();
            return Err(PortError::InvalidResponse {
                operation: "iam:GetCredentialReport".into(),
                message: e.to_string(),
            });
        }
        let keys = self
            .key
            .lock()
            .unwrap()
            .iter()
            .map(|k| ReportKey {
                active: k.status == KeyStatus::Active,
                last_rotated: k.created,
                last_used: Some(self.used()),
            })
            .collect();
        Ok(vec![ReportRow {
            user: "bob".into(),
            arn: "arn:aws:iam::123456789012:user/bob".into(),
            created: Some(t(0)),
            keys,
        }])
    }
    async fn access_keys(&self, user: &str) -> PortResult<Vec<AccessKey>> {
        if self.renamed_to.is_some_and(|new| new != user) {
            return Err(PortError::NotFound {
                operation: "iam:ListAccessKeys".into(),
                what: format!("NoSuchEntity: user {user}"),
            });
        }
        let mut calls = self.list_calls.lock().unwrap();
        *calls += 1;
        if self.fail_list_from.is_some_and(|n| *calls >= n) {
            return Err(PortError::Throttled {
                operation: "iam:ListAccessKeys".into(),
            });
        }
        Ok(self.key.lock().unwrap().iter().cloned().collect())
    }
    async fn user_tags(&self, _user: &str) -> PortResult<Tags> {
        Ok(Tags::new())
    }
    async fn key_last_used(&self, _key: &AccessKeyId) -> PortResult<Option<LastUsed>> {
        if self.fail_last_used {
            return Err(PortError::Throttled {
                operation: "iam:GetAccessKeyLastUsed".into(),
            });
        }
        Ok(Some(self.used()))
    }
    async fn key_owner(&self, key: &AccessKeyId) -> PortResult<Option<String>> {
        Ok(self
            .key
            .lock()
            .unwrap()
            .as_ref()
            .filter(|k| &k.id == key)
            .map(|_| self.renamed_to.unwrap_or("bob").to_owned()))
    }
    async fn user(&self, name: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
        Ok(Some(crate::domain::model::IamUser {
            name: name.to_owned(),
            arn: format!("arn:aws:iam::123456789012:user/{name}"),
            path: "/".into(),
            created: t(0),
            tags: Tags::new(),
            keys: Vec::new(),
            is_root: false,
        }))
    }
}

#[async_trait]
impl IamKeyAdmin for FakeIam {
    async fn create_key(
        &self,
        _user: &str,
    ) -> PortResult<(AccessKeyId, crate::ports::SecretValue)> {
        unreachable!("the IAM key sweep never creates keys")
    }
    async fn set_key_active(&self, _u: &str, _k: &AccessKeyId, active: bool) -> PortResult<()> {
        self.calls.lock().unwrap().push("UpdateAccessKey");
        if let Some(e) = &self.fail_change {
            return Err(e.clone());
        }
        if let Some(k) = self.key.lock().unwrap().as_mut() {
            k.status = if active {
                KeyStatus::Active
            } else {
                KeyStatus::Inactive
            };
        }
        Ok(())
    }
    async fn delete_key(&self, _u: &str, _k: &AccessKeyId) -> PortResult<()> {
        self.calls.lock().unwrap().push("DeleteAccessKey");
        if let Some(e) = &self.fail_change {
            return Err(e.clone());
        }
        self.key.lock().unwrap().take();
        Ok(())
    }
}

struct Quiet;
#[async_trait]
impl Notifier for Quiet {
    async fn notify(&self, _n: &Notification) -> PortResult<Option<String>> {
        Ok(None)
    }
}

async fn sweep_at(
    iam: &FakeIam,
    state: &MemState,
    audit: &MemAudit,
    day: i64,
) -> Result<IamSweep, StepError> {
    let ports = IamKeyPorts {
        identity: &Me,
        iam,
        secrets: &crate::steps::memory::NoSecrets,
        admin: iam,
        state,
        notifier: &Quiet,
        audit,
    };
    sweep(&ports, &enforce(), t(day), &SystemClock::Fixed(t(day))).await
}

fn stage(state: &MemState) -> Option<String> {
    state
        .0
        .lock()
        .unwrap()
        .get(&(KeyRecord::partition("123456789012"), KEY.to_owned()))
        .map(|(_, a)| a["stage"].clone())
}

fn actions(done: &IamSweep) -> Vec<(ActionType, Status)> {
    done.applied.iter().map(|a| (a.action, a.status)).collect()
}

#[tokio::test]
async fn no_iam_change_without_its_intent_record() {
    let iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap(); // warned
    let failing = MemAudit {
        failing: true,
        ..Default::default()
    };
    let err = sweep_at(&iam, &state, &failing, 63).await.unwrap_err();
    assert!(err.to_string().contains("dynamodb:PutItem"), "{err}");
    assert!(
        iam.calls.lock().unwrap().is_empty(),
        "changed IAM without an intent record"
    );
    assert_eq!(iam.status(), Some(KeyStatus::Active));
    assert_eq!(stage(&state).as_deref(), Some("warned"));
    // The lease was given back: the next run is not blocked.
    let done = sweep_at(&iam, &state, &audit, 63).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Deactivate, Status::Done)]);
}

#[tokio::test]
async fn a_run_that_stops_after_the_iam_change_converges_on_the_next_run() {
    // Deactivated in IAM, but the run stopped before recording it: the next run finds
    // the key inactive and records the deactivation, without a second IAM call.
    let iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap();
    iam.set_key_active("bob", &AccessKeyId::parse(KEY).unwrap(), false)
        .await
        .unwrap();
    iam.calls.lock().unwrap().clear();
    let done = sweep_at(&iam, &state, &audit, 63).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Reconcile, Status::Done)]);
    assert_eq!(stage(&state).as_deref(), Some("deactivated"));
    assert!(iam.calls.lock().unwrap().is_empty());
    // Deleted in IAM before the record was written: recorded as deleted, once.
    iam.delete_key("bob", &AccessKeyId::parse(KEY).unwrap())
        .await
        .unwrap();
    let done = sweep_at(&iam, &state, &audit, 100).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Reconcile, Status::Done)]);
    assert_eq!(stage(&state).as_deref(), Some("deleted"));
    let again = sweep_at(&iam, &state, &audit, 100).await.unwrap();
    assert!(again.applied.is_empty());
    let report = crate::audit::verify(audit.all().await.unwrap());
    assert!(report.ok(), "{report:?}");
}

#[tokio::test]
async fn a_failed_iam_change_is_audited_and_leaves_the_stage_unchanged() {
    let mut iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap();
    iam.fail_change = Some(PortError::AccessDenied {
        operation: "iam:UpdateAccessKey".into(),
        message: "not authorized".into(),
    });
    let done = sweep_at(&iam, &state, &audit, 63).await.unwrap();
    assert_eq!(done.failed(), 1);
    assert_eq!(stage(&state).as_deref(), Some("warned"));
    let last = audit.resource_records().last().cloned().unwrap();
    assert_eq!(
        (last.phase, last.outcome),
        (Phase::Outcome, Some(Outcome::Failed))
    );
    assert!(
        last.detail.contains("iam:UpdateAccessKey"),
        "{}",
        last.detail
    );
}

#[tokio::test]
async fn a_second_run_is_refused_while_the_first_holds_the_lease() {
    let iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    let account = AccountId::parse("123456789012").unwrap();
    state
        .acquire_lease(
            &lease_name(&account),
            "run-other",
            t(56),
            Duration::minutes(15),
        )
        .await
        .unwrap()
        .unwrap();
    let err = sweep_at(&iam, &state, &audit, 56).await.unwrap_err();
    assert!(matches!(err, StepError::InProgress(_)), "{err:?}");
    assert!(err.to_string().contains("run-other"), "{err}");
    assert!(audit.records.lock().unwrap().is_empty());
    // Once the lease has expired, a crashed holder no longer blocks.
    let done = sweep_at(&iam, &state, &audit, 57).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Warn, Status::Done)]);
}

#[tokio::test]
async fn a_malformed_credential_report_changes_nothing() {
    let mut iam = FakeIam::new();
    iam.malformed_report = true;
    let state = MemState::default();
    let audit = MemAudit::default();
    let err = sweep_at(&iam, &state, &audit, 56).await.unwrap_err();
    assert!(err.to_string().contains("missing column"), "{err}");
    assert!(audit.records.lock().unwrap().is_empty());
    assert_eq!(stage(&state), None);
}

#[tokio::test]
async fn a_delete_whose_last_guard_cannot_read_the_key_is_blocked_not_done() {
    // Deactivated on day 63; the delete is due on day 100, but ListAccessKeys is
    // throttled right before it: the guard cannot see whether the key was reactivated,
    // so nothing is deleted.
    let mut iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap();
    sweep_at(&iam, &state, &audit, 63).await.unwrap();
    assert_eq!(iam.status(), Some(KeyStatus::Inactive));
    // Discovery lists the keys (call 1); the guard's own read (call 2) is throttled.
    *iam.list_calls.lock().unwrap() = 0;
    iam.fail_list_from = Some(2);
    iam.calls.lock().unwrap().clear();
    let done = sweep_at(&iam, &state, &audit, 100).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Delete, Status::Blocked)]);
    assert_eq!(done.failed(), 1);
    assert!(iam.calls.lock().unwrap().is_empty(), "nothing deleted");
    assert_eq!(iam.status(), Some(KeyStatus::Inactive));
    assert_eq!(stage(&state).as_deref(), Some("deactivated"));
    iam.fail_list_from = None;
    let done = sweep_at(&iam, &state, &audit, 101).await.unwrap();
    assert_eq!(actions(&done), vec![(ActionType::Delete, Status::Done)]);
}

#[tokio::test]
async fn a_key_missing_from_an_old_credential_report_is_not_marked_deleted() {
    // The user was renamed after the credential report was generated (AWS reuses a
    // report for up to 4 hours; moto makes a new one on every read, so this is shown
    // here): the report names a user IAM no longer knows, so the key looks gone.
    let mut iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap();
    assert_eq!(stage(&state).as_deref(), Some("warned"));
    iam.renamed_to = Some("bob-svc");
    let done = sweep_at(&iam, &state, &audit, 57).await.unwrap();
    assert_eq!(
        actions(&done),
        vec![(ActionType::Reconcile, Status::Blocked)]
    );
    let why = done.applied[0].error.clone().unwrap_or_default();
    assert!(
        why.contains("still exists") && why.contains("bob-svc"),
        "{why}"
    );
    assert_eq!(stage(&state).as_deref(), Some("warned"), "lifecycle kept");
    let last = audit.resource_records().last().cloned().unwrap();
    assert_eq!(last.outcome, Some(Outcome::Blocked));
}

#[tokio::test]
async fn a_last_use_that_cannot_be_read_again_blocks_that_key_not_the_sweep() {
    let mut iam = FakeIam::new();
    let state = MemState::default();
    let audit = MemAudit::default();
    sweep_at(&iam, &state, &audit, 56).await.unwrap();
    iam.fail_last_used = true;
    let done = sweep_at(&iam, &state, &audit, 63).await.unwrap();
    assert_eq!(
        actions(&done),
        vec![(ActionType::Deactivate, Status::Blocked)]
    );
    assert!(iam.calls.lock().unwrap().is_empty(), "not deactivated");
    assert_eq!(stage(&state).as_deref(), Some("warned"));
}

#[tokio::test]
async fn a_record_written_over_a_stale_version_is_refused_and_nothing_changes() {
    // GIVEN a key record both runs read at version 1
    let state = MemState::default();
    let account = AccountId::parse("123456789012").unwrap();
    let store = KeyRecordStore::new(&state, &account);
    let record = |stage| KeyRecord {
        key: AccessKeyId::parse(KEY).unwrap(),
        user: "bob".into(),
        stage,
        since: t(56),
        version: 0,
        secret: None,
    };
    let stored = store.replace(0, record(Stage::Warned)).await.unwrap();
    assert_eq!(stored.map(|r| r.version), Some(1));
    // WHEN one run moves it on, and the other writes over the version it read
    let first = store.replace(1, record(Stage::Deactivated)).await.unwrap();
    let second = store.replace(1, record(Stage::Active)).await.unwrap();
    // THEN the first is stored, the second is told so and wrote nothing
    assert_eq!(
        first.map(|r| (r.stage, r.version)),
        Some((Stage::Deactivated, 2))
    );
    assert_eq!(second, None);
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].stage, listed[0].version),
        (Stage::Deactivated, 2)
    );
}
