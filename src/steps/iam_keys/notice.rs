//! What the owner of an IAM key is told, for the transitions people must hear about
//! (warning, deactivation, deletion, escalation), and how the audit trail names it.

use chrono::{DateTime, Duration, Utc};

use super::Run;
use crate::domain::action::{Action, ActionType};
use crate::domain::lifecycle::Stage;
use crate::domain::model::AccessKeyId;
use crate::ports::Notification;

impl Run<'_> {
    /// The message for the owner, for the transitions people must hear about.
    pub(super) fn notification(
        &self,
        action: &Action,
        key: &AccessKeyId,
        user: &str,
    ) -> Option<Notification> {
        let p = &self.policy.iam_keys;
        let owner = action
            .owner
            .clone()
            .or_else(|| self.policy.notifications.default_contact.clone());
        let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
        let exempt = format!("tag the user {user} keyrotor:exempt = YYYY-MM-DD");
        let (event, subject, body, at, undo) = match action.action {
            ActionType::Warn => {
                let off = self.now + Duration::days(i64::from(p.warn_days));
                (
                    "iam-key-warning",
                    format!(
                        "IAM access key {key} of {user} will be deactivated on {}",
                        day(off)
                    ),
                    format!(
                        "{}.\nkeyrotor will deactivate it on {} unless it is used before then, and delete it {} days after that.\nTo keep the key: use it, or tag the user keyrotor:exempt = YYYY-MM-DD.\nA deactivation can be undone with: keyrotor reactivate iam-key {key}",
                        action.detail,
                        day(off),
                        p.delete_after_days
                    ),
                    off,
                    format!("use the key before {}, or {exempt}", day(off)),
                )
            }
            ActionType::Deactivate => (
                "iam-key-deactivated",
                format!("IAM access key {key} of {user} was deactivated"),
                format!(
                    "{}.\nkeyrotor deactivated it on {}; it will be deleted on {} if it stays unused.\nUndo: keyrotor reactivate iam-key {key}",
                    action.detail,
                    day(self.now),
                    day(self.now + Duration::days(i64::from(p.delete_after_days)))
                ),
                self.now,
                format!("keyrotor reactivate iam-key {key}"),
            ),
            ActionType::Delete => (
                "iam-key-deleted",
                format!("IAM access key {key} of {user} was deleted"),
                format!(
                    "{}.\nkeyrotor deleted it on {}.",
                    action.detail,
                    day(self.now)
                ),
                self.now,
                "a deleted key cannot be restored: create a new key for the user".to_owned(),
            ),
            ActionType::Rotate => (
                "iam-key-rotation-needed",
                format!("IAM access key {key} of {user} is past its maximum age"),
                format!(
                    "{}.{}\nkeyrotor does not deactivate a key in use. Rotate it (a user whose key is stored in Secrets Manager: keyrotor rotate secret <id>) or move the workload to a role (tag the user keyrotor:migrate-to).",
                    action.detail,
                    action
                        .blocked
                        .as_deref()
                        .map(|b| format!("\nBlocked: {b}"))
                        .unwrap_or_default()
                ),
                self.now,
                format!("to postpone the reminders, {exempt}"),
            ),
            _ => return None,
        };
        let subject: String = subject.chars().take(100).collect();
        Some(Notification {
            event: event.into(),
            resource: key.to_string(),
            owner: owner.clone(),
            subject,
            message: format!(
                "{body}\nOwner: {}",
                owner
                    .as_deref()
                    .unwrap_or("unknown (tag the user with owner)")
            ),
            at: Some(at),
            undo: Some(undo),
        })
    }
}

/// Who the notification goes to, as the intent record says it.
pub(super) fn recipient(n: &Notification) -> String {
    n.owner
        .clone()
        .unwrap_or_else(|| "nobody (no owner tag, no default_contact)".into())
}

/// The outcome detail for the stage a key moved to.
pub(super) fn stage_text(stage: Stage) -> String {
    format!("now {}", stage.as_str())
}
