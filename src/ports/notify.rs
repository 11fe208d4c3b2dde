//! Notifications for people: the message, the catalogue of events (documented in
//! docs/events.md), and delivery that never stops the change it reports.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PortResult;

/// A message for a person: what happened or will happen, to what, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    /// Stable event name, e.g. `certificate-expiring`.
    pub event: String,
    pub resource: String,
    pub owner: Option<String>,
    /// One line, at most 100 characters (SNS subject limit).
    pub subject: String,
    pub message: String,
    /// When it happened, or when it will happen.
    pub at: Option<DateTime<Utc>>,
    /// How to undo or postpone it (a command or a tag), when it can be.
    pub undo: Option<String>,
}

/// Every notification keyrotor sends: `(event, EventBridge detail-type, meaning)`. The event
/// name is the SNS message attribute `event` and the event's `detail.event`; the
/// detail-type is what EventBridge rules match (docs/events.md).
pub const EVENT_TYPES: [(&str, &str, &str); 13] = [
    (
        "iam-key-warning",
        "Key Deactivation Scheduled",
        "an unused IAM key will be deactivated",
    ),
    (
        "iam-key-deactivated",
        "Key Deactivated",
        "keyrotor deactivated an unused IAM key",
    ),
    (
        "iam-key-deleted",
        "Key Deleted",
        "keyrotor deleted a deactivated IAM key",
    ),
    (
        "iam-key-rotation-needed",
        "Key Rotation Needed",
        "an IAM key in use is past its maximum age",
    ),
    (
        "iam-key-rotated",
        "Key Rotated",
        "the rotation hook replaced an IAM key in its secret",
    ),
    (
        "api-key-rotated",
        "Key Rotated",
        "a new API key is the secret's current value",
    ),
    (
        "certificate-expiring",
        "Certificate Expiring",
        "a certificate reached a ladder step",
    ),
    (
        "certificate-expired",
        "Certificate Expired",
        "a certificate has expired",
    ),
    (
        "migration-step",
        "Migration Step",
        "a user's migration to a role moved on",
    ),
    (
        "migration-regressed",
        "Migration Regressed",
        "a migrating user's key was used again",
    ),
    (
        "credential-exposed",
        "Credential Exposed",
        "keyrotor responded to a leaked or compromised credential",
    ),
    (
        "action-blocked",
        "Action Blocked",
        "keyrotor stopped before a change that could break a client",
    ),
    (
        "action-failed",
        "Action Failed",
        "an action failed after its retries",
    ),
];

/// The EventBridge detail-type of a notification's event.
pub fn detail_type(event: &str) -> &'static str {
    EVENT_TYPES
        .iter()
        .find(|(e, _, _)| *e == event)
        .map_or("Notification", |(_, d, _)| d)
}

/// Delivers notifications.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification; returns the channel's message id when it has one.
    async fn notify(&self, notification: &Notification) -> PortResult<Option<String>>;
}

/// Sends `n` where a failed delivery must not stop the caller (the change it reports is
/// done and audited): the failure is logged instead.
pub async fn notify_or_log(notifier: &dyn Notifier, n: &Notification) {
    if let Err(e) = notifier.notify(n).await {
        tracing::warn!(event = %n.event, resource = %n.resource, error = %e, "notification not delivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_and_detail_type_is_documented() {
        let doc = include_str!("../../docs/events.md");
        for (event, detail, _) in EVENT_TYPES {
            assert!(
                doc.contains(&format!("| `{event}` | `{detail}` |")),
                "docs/events.md lacks the row of {event} ({detail})"
            );
            assert_eq!(detail_type(event), detail);
        }
        assert_eq!(detail_type("something-new"), "Notification");
    }
}
