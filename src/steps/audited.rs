//! Audited mutations by construction (safety invariant: every mutation is audited, the
//! intent before the effect, the outcome after it).
//!
//! [`Mutation::begin`] writes the intent record; only a begun mutation can record an
//! outcome, and it records exactly one, because [`Mutation::end`] consumes it. If the
//! intent cannot be written, the caller never gets a `Mutation` and so never reaches the
//! effect. [`mutate`] does the whole intent → effect → outcome sequence in one call for the
//! common case. The state-table update that follows a success stays with the caller: what
//! it writes differs per lifecycle.
//!
//! In debug builds (tests), dropping a begun mutation without ending it panics, so a code
//! path that leaves an intent without its outcome fails the test that reaches it.

use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase};
use crate::ports::{Clock, PortResult};

/// A mutation whose intent is recorded and whose outcome is still due.
#[must_use = "a begun mutation must record its outcome with end()"]
pub(crate) struct Mutation<'a> {
    log: &'a AuditLog<'a>,
    wall: &'a dyn Clock,
    intent: Entry,
    ended: bool,
}

impl<'a> Mutation<'a> {
    /// Writes `intent` (its phase is set to intent, its outcome cleared). An error means
    /// nothing may be changed.
    pub(crate) async fn begin(
        log: &'a AuditLog<'a>,
        wall: &'a dyn Clock,
        mut intent: Entry,
    ) -> PortResult<Mutation<'a>> {
        intent.phase = Phase::Intent;
        intent.outcome = None;
        log.append(&intent, wall.now()).await?;
        Ok(Mutation {
            log,
            wall,
            intent,
            ended: false,
        })
    }

    /// The intent as written, for callers that derive their outcome from it.
    pub(crate) fn intent(&self) -> &Entry {
        &self.intent
    }

    /// Records the outcome: the intent's record with `outcome`, `detail` and, when given,
    /// a new `after` (otherwise the intent's).
    pub(crate) async fn end(
        mut self,
        outcome: Outcome,
        detail: impl Into<String>,
        after: Option<Option<String>>,
    ) -> PortResult<()> {
        self.ended = true;
        let mut entry = self.intent.clone();
        entry.phase = Phase::Outcome;
        entry.outcome = Some(outcome);
        entry.detail = detail.into();
        if let Some(after) = after {
            entry.after = after;
        }
        self.log.append(&entry, self.wall.now()).await.map(|_| ())
    }

    /// Records a failure: the error's text, and `after` = `before` (nothing changed).
    pub(crate) async fn failed(self, error: &dyn std::fmt::Display) -> PortResult<()> {
        let before = self.intent.before.clone();
        self.end(Outcome::Failed, error.to_string(), Some(before))
            .await
    }

    /// Records a success with `detail`, keeping the intent's `after`.
    pub(crate) async fn succeeded(self, detail: impl Into<String>) -> PortResult<()> {
        self.end(Outcome::Succeeded, detail, None).await
    }
}

impl Drop for Mutation<'_> {
    fn drop(&mut self) {
        if !self.ended && !std::thread::panicking() {
            debug_assert!(
                false,
                "audited mutation {} of {} dropped without an outcome record",
                self.intent.action, self.intent.resource.id
            );
        }
    }
}

/// Intent → `effect` → outcome. The outer result is the audit log's (an error there means
/// the intent was not written and `effect` did not run, or the outcome could not be
/// written); the inner one is the effect's. On success the outcome's detail is
/// `success(&value)`; on failure it is the error's text.
pub(crate) async fn mutate<'a, T, E, F>(
    log: &'a AuditLog<'a>,
    wall: &'a dyn Clock,
    intent: Entry,
    effect: F,
    success: impl FnOnce(&T) -> String,
) -> PortResult<Result<T, E>>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let mutation = Mutation::begin(log, wall, intent).await?;
    match effect.await {
        Ok(value) => {
            mutation.succeeded(success(&value)).await?;
            Ok(Ok(value))
        }
        Err(e) => {
            mutation.failed(&e).await?;
            Ok(Err(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_record::ResourceRef;
    use crate::domain::model::Kind;
    use crate::ports::{PortError, SystemClock};
    use crate::steps::memory::MemAudit;

    fn intent() -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: "111111111111".into(),
                region: "global".into(),
                id: "AKIAEXAMPLE".into(),
            },
            action: "deactivate".into(),
            phase: Phase::Decision,
            outcome: Some(Outcome::Planned),
            reason: "stale".into(),
            detail: "deactivate the key".into(),
            before: Some("warned".into()),
            after: Some("deactivated".into()),
            dry_run: false,
            policy_time: chrono::Utc::now(),
        }
    }

    fn phases(store: &MemAudit) -> Vec<(String, Option<String>, String, Option<String>)> {
        store
            .resource_records()
            .iter()
            .map(|r| {
                (
                    r.phase.as_str().to_owned(),
                    r.outcome.map(|o| o.as_str().to_owned()),
                    r.detail.clone(),
                    r.after.clone(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn a_success_writes_intent_then_outcome() {
        let store = MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "me");
        let done = mutate(
            &log,
            &SystemClock::Real,
            intent(),
            async { Ok::<_, PortError>(7) },
            |v| format!("did {v}"),
        )
        .await
        .unwrap();
        assert_eq!(done, Ok(7));
        assert_eq!(
            phases(&store),
            [
                (
                    "intent".into(),
                    None,
                    "deactivate the key".into(),
                    Some("deactivated".into())
                ),
                (
                    "outcome".into(),
                    Some("succeeded".into()),
                    "did 7".into(),
                    Some("deactivated".into())
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_failure_records_the_error_and_no_change() {
        let store = MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "me");
        let done = mutate(
            &log,
            &SystemClock::Real,
            intent(),
            async { Err::<(), _>("AccessDenied") },
            |_| unreachable!(),
        )
        .await
        .unwrap();
        assert_eq!(done, Err("AccessDenied"));
        let written = phases(&store);
        assert_eq!(written.len(), 2);
        assert_eq!(
            written[1],
            (
                "outcome".into(),
                Some("failed".into()),
                "AccessDenied".into(),
                Some("warned".into())
            )
        );
    }

    #[tokio::test]
    async fn no_intent_no_effect() {
        let store = MemAudit {
            failing: true,
            ..MemAudit::default()
        };
        let log = AuditLog::new(&store, "run-1", "me");
        let ran = std::sync::atomic::AtomicBool::new(false);
        let result = mutate(
            &log,
            &SystemClock::Real,
            intent(),
            async {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<_, PortError>(())
            },
            |_| String::new(),
        )
        .await;
        assert!(result.is_err());
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    #[should_panic(expected = "dropped without an outcome record")]
    async fn a_begun_mutation_left_without_outcome_fails_in_tests() {
        let store = MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "me");
        let mutation = Mutation::begin(&log, &SystemClock::Real, intent())
            .await
            .unwrap();
        drop(mutation);
    }
}
