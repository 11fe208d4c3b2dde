//! Safety invariant 4 (audit first), with in-memory ports: a notification is sent only
//! after its intent record is written, and never when that write fails.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{Duration, TimeZone};

use super::*;
use crate::domain::model::{CertType, Certificate, Tags};
use crate::ports::{CertInventory, Notification, Notifier, PortResult, SystemClock};
use crate::steps::memory::{Me, MemAudit, MemState};
use crate::steps::status::Status;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

struct OneCert;
#[async_trait]
impl CertInventory for OneCert {
    async fn certificates(
        &self,
        region: &str,
        _detail_if: &(dyn Fn(Option<DateTime<Utc>>) -> bool + Send + Sync),
    ) -> PortResult<Vec<Certificate>> {
        Ok(vec![Certificate {
            arn: "arn:aws:acm:us-east-1:123456789012:certificate/one".into(),
            domain: "one.example.com".into(),
            region: region.into(),
            status: "ISSUED".into(),
            cert_type: CertType::Imported,
            not_after: Some(now() + Duration::days(3)),
            in_use: true,
            renewal_eligibility: None,
            renewal_status: None,
            renewal_failure_reason: None,
            validation_method: None,
            key_algorithm: None,
            tags: Tags::new(),
        }])
    }
}

/// Records the number of audit records present when each notification was sent.
struct Spy<'a> {
    audit: &'a MemAudit,
    sent_after: Mutex<Vec<usize>>,
}
#[async_trait]
impl Notifier for Spy<'_> {
    async fn notify(&self, _n: &Notification) -> PortResult<Option<String>> {
        let written = self.audit.records.lock().unwrap().len();
        self.sent_after.lock().unwrap().push(written);
        Ok(Some("msg-1".into()))
    }
}

async fn run(audit: &MemAudit, state: &MemState, notifier: &Spy<'_>) -> PortResult<CertSweep> {
    let ports = SweepPorts {
        identity: &Me,
        certs: &OneCert,
        state,
        notifier,
        audit,
    };
    sweep(
        &ports,
        &Policy::default(),
        "us-east-1",
        now(),
        &SystemClock::Fixed(now()),
    )
    .await
}

#[tokio::test]
async fn no_notification_is_sent_when_its_intent_cannot_be_audited() {
    let audit = MemAudit {
        failing: true,
        ..Default::default()
    };
    let state = MemState::default();
    let spy = Spy {
        audit: &audit,
        sent_after: Mutex::new(Vec::new()),
    };
    let err = run(&audit, &state, &spy).await.unwrap_err();
    assert!(err.to_string().contains("dynamodb:PutItem"), "{err}");
    assert!(
        spy.sent_after.lock().unwrap().is_empty(),
        "notified without an intent record"
    );
    assert!(
        state.0.lock().unwrap().is_empty(),
        "state advanced without a notification"
    );
}

#[tokio::test]
async fn a_notification_is_sent_after_its_intent_and_followed_by_its_outcome() {
    let audit = MemAudit::default();
    let state = MemState::default();
    let spy = Spy {
        audit: &audit,
        sent_after: Mutex::new(Vec::new()),
    };
    let done = run(&audit, &state, &spy).await.unwrap();
    assert_eq!(done.notifications.len(), 1);
    assert_eq!(
        *spy.sent_after.lock().unwrap(),
        vec![1],
        "exactly the intent was written before sending"
    );
    let (anchors, records): (Vec<_>, Vec<_>) = audit
        .records
        .lock()
        .unwrap()
        .clone()
        .into_iter()
        .partition(|r| r.resource_id == crate::audit::ANCHOR_ID);
    let phases: Vec<_> = records
        .iter()
        .map(|r| (r.seq, r.phase, r.outcome))
        .collect();
    assert_eq!(
        phases,
        vec![
            (1, Phase::Intent, None),
            (2, Phase::Outcome, Some(Outcome::Succeeded))
        ]
    );
    assert_eq!(anchors.len(), 1, "the run anchored its records");
    assert_eq!(records[1].after.as_deref(), Some("msg-1"));

    // The same sweep again: already notified, nothing sent, nothing audited.
    let again = run(&audit, &state, &spy).await.unwrap();
    assert_eq!(again.notifications[0].status, Status::AlreadyNotified);
    assert_eq!(spy.sent_after.lock().unwrap().len(), 1);
    assert_eq!(
        audit.records.lock().unwrap().len(),
        3,
        "no new record, no new anchor"
    );
}

#[tokio::test]
async fn the_notified_ladder_step_only_moves_up_and_a_renewal_starts_over() {
    let state = MemState::default();
    let ladder = LadderStore::new(&state);
    let arn = "arn:aws:acm:us-east-1:123456789012:certificate/one";
    let not_after = now() + Duration::days(3);
    let notified = |step| LadderRecord {
        step,
        notified_at: now(),
        run_id: "run-1".into(),
    };
    assert_eq!(ladder.last_step(arn, not_after).await.unwrap(), None);
    // GIVEN the 7-day step notified
    assert!(
        ladder
            .advance(arn, not_after, &notified(LadderStep::Days(7)))
            .await
            .unwrap()
    );
    // WHEN a slow run records the 14-day step afterwards
    let late = ladder
        .advance(arn, not_after, &notified(LadderStep::Days(14)))
        .await
        .unwrap();
    // THEN the more urgent step stays
    assert!(!late);
    assert_eq!(
        ladder.last_step(arn, not_after).await.unwrap(),
        Some(LadderStep::Days(7))
    );
    // A renewed certificate (new NotAfter) has notified nothing yet.
    let renewed = not_after + Duration::days(90);
    assert_eq!(ladder.last_step(arn, renewed).await.unwrap(), None);
}
