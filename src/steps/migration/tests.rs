//! The migration sweep, apply and rollback with in-memory ports: a record that IAM does
//! not back (forged, or its user or role changed) changes nothing; the guard is attached
//! only as the deployed managed policy; plan mode refuses; only the planned role is
//! adopted.

use chrono::{Duration, TimeZone};

use super::*;
use crate::domain::migration::{
    GUARD_POLICY_NAME, MigrationStage, guard_policy, guard_policy_arn, role_plan,
};
use crate::domain::model::{AccessKey, AccessKeyId, KeyStatus, LastUsed, TAG_MIGRATE_TO, Tags};
use crate::steps::memory::{Me, MemAudit, MemIam, MemState, MemUser, Sent};
use crate::steps::status::Status;

const ACCOUNT: &str = "123456789012";
const KEY: &str = "AKIAAAAAAAAAAAAA0001";

fn t(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap() + Duration::days(d)
}

fn policy() -> Policy {
    Policy::from_toml(
        "mode = \"enforce\"\n[migration]\nenabled = true\n",
        "keyrotor.toml",
    )
    .unwrap()
}

fn runner() -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/runner")
}

fn guard_arn() -> String {
    guard_policy_arn("aws", ACCOUNT)
}

struct Fixture {
    iam: MemIam,
    state: MemState,
    audit: MemAudit,
    sent: Sent,
}

impl Fixture {
    /// User `app`, tagged for `runner()` when `tagged`, with one key last used on day
    /// -60 (idle) and a managed policy; the guard's managed policy as deployed.
    fn new(tagged: bool, key: KeyStatus) -> Fixture {
        let iam = MemIam::default();
        {
            let mut w = iam.0.lock().unwrap();
            let mut user = MemUser {
                attached: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                keys: vec![AccessKey {
                    id: AccessKeyId::parse(KEY).unwrap(),
                    status: key,
                    created: t(-100),
                    last_used: Some(LastUsed {
                        at: t(-60),
                        service: None,
                        region: None,
                    }),
                }],
                ..MemUser::default()
            };
            if tagged {
                user.tags.insert(TAG_MIGRATE_TO.into(), runner());
            }
            w.users.insert("app".into(), user);
            w.policies.insert(guard_arn(), guard_policy());
        }
        Fixture {
            iam,
            state: MemState::default(),
            audit: MemAudit::default(),
            sent: Sent::default(),
        }
    }

    fn ports(&self) -> MigrationPorts<'_> {
        MigrationPorts {
            identity: &Me,
            iam: &self.iam,
            keys: &self.iam,
            roles: &self.iam,
            state: &self.state,
            notifier: &self.sent,
            audit: &self.audit,
            directory: None,
        }
    }

    /// The role keyrotor provisions for `app`, as IAM would have it, with `trust`.
    fn role(&self, trust: &serde_json::Value, migrated_from: &str) -> String {
        let plan = self.plan();
        self.iam.0.lock().unwrap().roles.insert(
            plan.name.clone(),
            RoleInfo {
                arn: plan.arn.clone(),
                last_used: Some(t(-70)),
                trust_policy: trust.to_string(),
                tags: Tags::from([
                    (TAG_MIGRATED_FROM.to_owned(), migrated_from.to_owned()),
                    (TAG_MIGRATE_TO.to_owned(), runner()),
                ]),
                permissions_boundary: None,
            },
        );
        plan.arn
    }

    fn plan(&self) -> RolePlan {
        role_plan(
            "app",
            &TrustScope::account("aws", ACCOUNT),
            &WorkloadIdentity::parse(&runner()).unwrap(),
            &Permissions::default(),
            &policy(),
            false,
        )
    }

    /// A migration item written straight into the state table.
    async fn item(&self, stage: MigrationStage, role_arn: &str, since: DateTime<Utc>) {
        let record = MigrationRecord {
            user: "app".into(),
            role_arn: role_arn.into(),
            stage,
            since,
            provisioned_at: t(-80),
            adopted_at: Some(t(-70)),
            deactivated: Vec::new(),
            migrate_to: None,
            version: 0,
        };
        let pk = MigrationRecord::partition(ACCOUNT);
        assert!(
            self.state
                .put_versioned(&pk, "app", 0, &record.attrs())
                .await
                .unwrap()
        );
    }

    async fn sweep(&self) -> MigrationSweep {
        sweep(
            &self.ports(),
            &policy(),
            t(0),
            &crate::ports::SystemClock::Fixed(t(0)),
        )
        .await
        .unwrap()
    }

    fn blocked_decisions(&self) -> usize {
        self.audit
            .resource_records()
            .iter()
            .filter(|r| r.outcome == Some(Outcome::Blocked))
            .count()
    }
}

/// (stage, since, key status, the change a real migration makes there)
fn destructive_stages() -> [(MigrationStage, DateTime<Utc>, KeyStatus, &'static str); 3] {
    [
        (
            MigrationStage::KeysIdle,
            t(-1),
            KeyStatus::Active,
            "AttachUserPolicy",
        ),
        (
            MigrationStage::Guarded,
            t(-10),
            KeyStatus::Active,
            "UpdateAccessKey",
        ),
        (
            MigrationStage::KeysDeactivated,
            t(-40),
            KeyStatus::Inactive,
            "DeleteAccessKey",
        ),
    ]
}

#[tokio::test]
async fn a_forged_record_without_its_role_neither_guards_nor_deactivates_nor_deletes() {
    for (stage, since, key, change) in destructive_stages() {
        // GIVEN a migration item nobody provisioned: the role it names does not exist
        let f = Fixture::new(true, key);
        f.item(stage, &f.plan().arn, since).await;
        // WHEN the sweep follows it
        let done = f.sweep().await;
        // THEN the step is blocked, counted as work left, audited, and IAM untouched
        assert_eq!(
            done.transitions.len(),
            1,
            "{stage:?}: {:?}",
            done.transitions
        );
        let t0 = &done.transitions[0];
        assert_eq!(t0.status, Status::Blocked, "{stage:?}: {t0:?}");
        assert!(t0.detail.contains("does not exist"), "{}", t0.detail);
        assert_eq!(done.failed(), 1);
        assert_eq!(f.iam.changes(), Vec::<String>::new(), "{stage:?}");
        assert_eq!(f.blocked_decisions(), 1, "{stage:?}");

        // The same item backed by the role keyrotor provisions does make the change.
        let real = Fixture::new(true, key);
        let arn = real.role(&real.plan().trust_policy, "app");
        real.item(stage, &arn, since).await;
        let done = real.sweep().await;
        assert_eq!(
            done.transitions[0].status,
            Status::Done,
            "{stage:?}: {done:?}"
        );
        assert!(
            real.iam.changes().iter().any(|c| c.starts_with(change)),
            "{stage:?}: {:?}",
            real.iam.changes()
        );
    }
}

#[tokio::test]
async fn a_forged_record_is_blocked_when_the_user_or_the_role_does_not_back_it() {
    let plan_trust = Fixture::new(true, KeyStatus::Active).plan().trust_policy;
    let other = WorkloadIdentity::parse("arn:aws:iam::999999999999:role/attacker")
        .unwrap()
        .trust_policy(&TrustScope::account("aws", ACCOUNT));
    for (tagged, trust, from, why) in [
        (false, &plan_trust, "app", "no longer tagged"),
        (true, &other, "app", "differs"),
        (true, &plan_trust, "bob", "\"bob\""),
    ] {
        let f = Fixture::new(tagged, KeyStatus::Active);
        let arn = f.role(trust, from);
        f.item(MigrationStage::KeysIdle, &arn, t(-1)).await;
        let done = f.sweep().await;
        let t0 = &done.transitions[0];
        assert_eq!(t0.status, Status::Blocked, "{why}: {t0:?}");
        assert!(t0.detail.contains(why), "{why}: {}", t0.detail);
        assert!(f.iam.changes().is_empty(), "{why}: {:?}", f.iam.changes());
    }
}

#[tokio::test]
async fn the_guard_is_attached_only_as_the_deployed_managed_policy() {
    let tampered = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}
    ]});
    for (doc, outcome) in [
        (None, "does not exist"),
        (Some(tampered), "does not say"),
        (Some(guard_policy()), "done"),
    ] {
        let f = Fixture::new(true, KeyStatus::Active);
        match doc {
            Some(d) => f.iam.0.lock().unwrap().policies.insert(guard_arn(), d),
            None => f.iam.0.lock().unwrap().policies.remove(&guard_arn()),
        };
        let arn = f.role(&f.plan().trust_policy, "app");
        f.item(MigrationStage::KeysIdle, &arn, t(-1)).await;
        let done = f.sweep().await;
        let t0 = &done.transitions[0];
        if outcome == "done" {
            assert_eq!(t0.status, Status::Done, "{t0:?}");
            assert_eq!(
                f.iam.changes(),
                [format!("AttachUserPolicy app {}", guard_arn())]
            );
        } else {
            assert_eq!(t0.status, Status::Blocked, "{t0:?}");
            assert!(
                t0.detail.contains(outcome) && t0.detail.contains("infra/template.yaml"),
                "{}",
                t0.detail
            );
            assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
        }
    }
}

#[tokio::test]
async fn in_plan_mode_apply_and_rollback_refuse_and_change_nothing() {
    // Invariant 7 is held by the steps, not only by their callers (CLI, Lambda).
    let clock = crate::ports::SystemClock::Fixed(t(0));
    let plan_mode = Policy::from_toml("[migration]\nenabled = true\n", "keyrotor.toml").unwrap();
    let f = Fixture::new(true, KeyStatus::Active);
    let e = apply(&f.ports(), &plan_mode, "app", t(0), &clock)
        .await
        .unwrap_err();
    assert!(matches!(e, StepError::Blocked(_)), "{e}");
    assert!(e.to_string().contains("mode is \"plan\""), "{e}");
    let e = rollback(&f.ports(), &plan_mode, "app", t(0), &clock)
        .await
        .unwrap_err();
    assert!(matches!(e, StepError::Blocked(_)), "{e}");
    assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
    assert!(f.audit.resource_records().is_empty());
}

#[tokio::test]
async fn apply_adopts_only_the_planned_role_and_changes_nothing_otherwise() {
    let clock = crate::ports::SystemClock::Fixed(t(0));
    let attacker = WorkloadIdentity::parse("arn:aws:iam::999999999999:role/attacker")
        .unwrap()
        .trust_policy(&TrustScope::account("aws", ACCOUNT));
    for (trust, from, why) in [
        (Some(&attacker), "app", "differs"),
        (None, "bob", "\"bob\""),
    ] {
        let f = Fixture::new(true, KeyStatus::Active);
        let planned = f.plan().trust_policy;
        f.role(trust.unwrap_or(&planned), from);
        let e = apply(&f.ports(), &policy(), "app", t(0), &clock)
            .await
            .unwrap_err();
        assert!(matches!(e, StepError::Blocked(_)), "{e}");
        assert!(e.to_string().contains(why), "{e}");
        assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
        assert!(
            f.state
                .list("migration#123456789012")
                .await
                .unwrap()
                .is_empty()
        );
    }
    // The planned role itself is adopted (idempotent apply after a partial run).
    let f = Fixture::new(true, KeyStatus::Active);
    let arn = f.role(&f.plan().trust_policy, "app");
    let plan = apply(&f.ports(), &policy(), "app", t(0), &clock)
        .await
        .unwrap();
    let record = plan.record.unwrap();
    assert_eq!(record.role_arn, arn);
    assert_eq!(record.migrate_to.as_deref(), Some(runner().as_str()));
}

#[tokio::test]
async fn removing_the_guard_also_deletes_an_inline_guard_of_an_earlier_version() {
    let f = Fixture::new(true, KeyStatus::Active);
    f.iam
        .0
        .lock()
        .unwrap()
        .users
        .get_mut("app")
        .unwrap()
        .inline
        .insert(GUARD_POLICY_NAME.into(), guard_policy());
    let arn = f.role(&f.plan().trust_policy, "app");
    f.item(MigrationStage::Guarded, &arn, t(-1)).await;
    let clock = crate::ports::SystemClock::Fixed(t(0));
    let (record, note) = rollback_report(&f.ports(), &policy(), "app", t(0), &clock)
        .await
        .unwrap();
    assert_eq!(record.stage, MigrationStage::RolledBack);
    assert!(note.unwrap().contains("inline guard policy"));
    assert_eq!(
        f.iam.changes(),
        [
            format!("DetachUserPolicy app {}", guard_arn()),
            format!("DeleteUserPolicy app {GUARD_POLICY_NAME}"),
        ]
    );
}

#[tokio::test]
async fn a_migration_record_written_over_a_stale_version_is_refused() {
    // GIVEN the migration of app, provisioned (version 1)
    let state = MemState::default();
    let account = AccountId::parse(ACCOUNT).unwrap();
    let store = MigrationStore::new(&state, &account);
    let record = |stage| MigrationRecord {
        user: "app".into(),
        role_arn: format!("arn:aws:iam::{ACCOUNT}:role/migrated/app-role"),
        stage,
        since: t(0),
        provisioned_at: t(0),
        adopted_at: None,
        deactivated: vec![KEY.into()],
        migrate_to: Some(runner()),
        version: 0,
    };
    let stored = store
        .replace(0, record(MigrationStage::RoleProvisioned))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 1);
    // WHEN a rollback moves it on, then a sweep that read version 1 writes too
    let rolled_back = store.replace(1, record(MigrationStage::RolledBack)).await;
    let late = store.replace(1, record(MigrationStage::Adopted)).await;
    // THEN the rollback stands and the late write changed nothing
    assert_eq!(rolled_back.unwrap().map(|r| r.version), Some(2));
    assert_eq!(late.unwrap(), None);
    let read = store.get("app").await.unwrap().unwrap();
    assert_eq!((read.stage, read.version), (MigrationStage::RolledBack, 2));
    assert_eq!(read.deactivated, [KEY.to_owned()]);
    assert_eq!(store.get("bob").await.unwrap(), None);
}
