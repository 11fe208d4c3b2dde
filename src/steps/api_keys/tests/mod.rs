//! Invariants 1, 4 and 5 for API key rotation, with in-memory AWS: the rotation is killed
//! after every single call it makes (API Gateway, Secrets Manager, the state table, the
//! audit table) and run again. Whatever the point of the kill, the end state is one
//! replacement, the old key deleted, the secret's AWSCURRENT serving every plan at every
//! moment, and an audit chain that verifies.

mod fake;
mod store;

use std::sync::atomic::Ordering;

use chrono::Duration;

use super::*;
use crate::domain::audit_record::StoredRecord;
use crate::domain::policy::Policy;
use crate::ports::SystemClock;
use crate::steps::memory::Me;
use fake::{Fake, KAudit, KState, OLD, t};

fn enforce() -> Policy {
    Policy {
        mode: Mode::Enforce,
        ..Policy::default()
    }
}

/// The whole life of a rotation: on demand on day 100, sweeps on days 107 (retire) and 114
/// (delete). Each phase is run again after a kill, with the wall clock moved past the lease.
/// Returns the number of calls made.
async fn life(fake: &Fake) -> usize {
    let policy = enforce();
    let state = KState(fake);
    let audit = KAudit(fake);
    let ports = ApiKeyPorts {
        identity: &Me,
        keys: fake,
        secret_list: fake,
        admin: fake,
        secrets: fake,
        state: &state,
        audit: &audit,
        notifier: &fake.sent,
    };
    let mut wall = t(100);
    for (phase, day) in [(0, 100), (1, 107), (2, 114)] {
        loop {
            let clock = SystemClock::Fixed(wall);
            let run = async {
                match phase {
                    0 => rotate(
                        &ports,
                        &policy,
                        "us-east-1",
                        OLD,
                        Trigger::OnDemand,
                        t(day),
                        &clock,
                    )
                    .await
                    .map(|done| done.status),
                    _ => sweep(&ports, &policy, "us-east-1", t(day), &clock)
                        .await
                        .map(|done| {
                            if done.failed() == 0 {
                                Status::Done
                            } else {
                                Status::Failed
                            }
                        }),
                }
            };
            let mut run = Box::pin(run);
            let outcome = tokio::select! {
                out = &mut run => Some(out),
                _ = fake.killer.killed.notified() => None,
            };
            if outcome.is_none() {
                // A killed process runs no destructors: the run is leaked, not dropped (an
                // audited mutation dropped mid-way would rightly fail the test).
                std::mem::forget(run);
            }
            // A crashed run's lease expires; the operator (or the schedule) runs it again.
            wall += Duration::minutes(16);
            match outcome {
                None => continue,
                Some(Ok(Status::Done)) => break,
                Some(other) => panic!("phase {phase} on day {day}: {other:?}"),
            }
        }
        wall = wall.max(t(day + 1));
    }
    fake.killer.calls.load(Ordering::SeqCst)
}

fn assert_end_state(fake: &Fake, kill_at: usize) {
    let aws = fake.aws.lock().unwrap();
    assert_eq!(
        aws.created, 1,
        "kill at call {kill_at}: {} replacements created",
        aws.created
    );
    assert!(
        !aws.keys.contains_key(OLD),
        "kill at call {kill_at}: old key not deleted"
    );
    assert_eq!(aws.violation(), None, "kill at call {kill_at}");
    let pending = aws
        .versions
        .values()
        .filter(|(_, s)| s.iter().any(|x| x == "AWSPENDING"))
        .count();
    assert_eq!(pending, 0, "kill at call {kill_at}: AWSPENDING left behind");
    let violations = fake.violations.lock().unwrap();
    assert!(
        violations.is_empty(),
        "kill at call {kill_at}: {violations:?}"
    );
    let records: Vec<StoredRecord> = fake
        .audit
        .records
        .lock()
        .unwrap()
        .iter()
        .cloned()
        .map(Ok)
        .collect();
    let report = crate::audit::verify(records);
    assert!(report.ok(), "kill at call {kill_at}: {report:?}");
}

#[tokio::test]
async fn a_rotation_killed_after_any_call_ends_with_one_replacement() {
    let clean = Fake::new();
    let total = life(&clean).await;
    assert_end_state(&clean, 0);
    // The owner hears once that the replacement is current.
    assert_eq!(clean.sent.events(), vec!["api-key-rotated".to_owned()]);
    let sent = clean.sent.0.lock().unwrap()[0].clone();
    assert_eq!(sent.resource, OLD);
    assert!(sent.undo.is_some_and(|u| u.contains("AWSCURRENT")));
    assert!(total > 40, "the rotation makes {total} calls");
    for kill_at in 1..=total {
        let fake = Fake::new();
        fake.killer.kill_at.store(kill_at, Ordering::SeqCst);
        life(&fake).await;
        assert_end_state(&fake, kill_at);
    }
}

#[tokio::test]
async fn a_second_rotation_of_the_same_key_waits_for_the_first() {
    let fake = Fake::new();
    let account = AccountId::parse("123456789012").unwrap();
    fake.state
        .acquire_lease(
            &lease_name(&account, "us-east-1", OLD),
            "run-other",
            t(100),
            Duration::minutes(15),
        )
        .await
        .unwrap()
        .unwrap();
    let ports = ApiKeyPorts {
        identity: &Me,
        keys: &fake,
        secret_list: &fake,
        admin: &fake,
        secrets: &fake,
        state: &fake.state,
        audit: &fake.audit,
        notifier: &fake.sent,
    };
    let err = rotate(
        &ports,
        &enforce(),
        "us-east-1",
        OLD,
        Trigger::OnDemand,
        t(100),
        &SystemClock::Fixed(t(100)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StepError::InProgress(_)), "{err:?}");
    assert!(err.to_string().contains("in progress"), "{err}");
    assert_eq!(fake.aws.lock().unwrap().created, 0);
}

#[tokio::test]
async fn in_plan_mode_rotate_refuses_before_any_call() {
    // Invariant 7 is held by the step, not only by its callers (CLI, Lambda).
    let fake = Fake::new();
    let ports = ApiKeyPorts {
        identity: &Me,
        keys: &fake,
        secret_list: &fake,
        admin: &fake,
        secrets: &fake,
        state: &fake.state,
        audit: &fake.audit,
        notifier: &fake.sent,
    };
    let err = rotate(
        &ports,
        &Policy::default(),
        "us-east-1",
        OLD,
        Trigger::OnDemand,
        t(100),
        &SystemClock::Fixed(t(100)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StepError::Blocked(_)), "{err:?}");
    assert!(err.to_string().contains("mode is \"plan\""), "{err}");
    assert_eq!(fake.killer.calls.load(Ordering::SeqCst), 0);
}
