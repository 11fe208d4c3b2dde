//! What became of one unit of work (a key, a rotation, a migration step, a notification),
//! as every step reports it and every caller counts it: one definition of "failed".

use serde::{Deserialize, Serialize};

/// The status of one unit of work in a step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Carried out.
    Done,
    /// `mode = "plan"`: decided and recorded, not carried out.
    DryRun,
    /// Nothing was due.
    NoOp,
    /// Decided not to act (the reason is in the detail).
    Skipped,
    /// A notification was sent.
    Sent,
    /// The notification of this step was sent by an earlier run.
    AlreadyNotified,
    /// Tried and failed; the error is in the detail.
    Failed,
    /// Another run, or a change made by someone else, got there first.
    Conflict,
    /// Going on could break a client; a person must look.
    Blocked,
}

impl Status {
    /// The stable name used in JSON output, audit details and exit-code decisions.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::DryRun => "dry-run",
            Status::NoOp => "no-op",
            Status::Skipped => "skipped",
            Status::Sent => "sent",
            Status::AlreadyNotified => "already-notified",
            Status::Failed => "failed",
            Status::Conflict => "conflict",
            Status::Blocked => "blocked",
        }
    }

    /// Whether this unit counts as failed in a run's result (exit code 3, the Lambda's
    /// `failed` count, the multi-account total): it failed, conflicted or was blocked.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Conflict | Status::Blocked)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 9] = [
        Status::Done,
        Status::DryRun,
        Status::NoOp,
        Status::Skipped,
        Status::Sent,
        Status::AlreadyNotified,
        Status::Failed,
        Status::Conflict,
        Status::Blocked,
    ];

    #[test]
    fn serialises_as_its_stable_name() {
        for status in ALL {
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::Value::String(status.as_str().into()));
            let back: Status = serde_json::from_value(json).unwrap();
            assert_eq!(back, status);
        }
    }

    #[test]
    fn failures_are_failed_conflict_and_blocked() {
        let failures: Vec<_> = ALL.into_iter().filter(|s| s.is_failure()).collect();
        assert_eq!(
            failures,
            [Status::Failed, Status::Conflict, Status::Blocked]
        );
    }
}
