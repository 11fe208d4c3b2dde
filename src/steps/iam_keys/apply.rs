//! One planned IAM key action carried out: warn, deactivate, delete, escalate, reset or
//! reconcile. The guards of `recheck` run first (enforce mode); then the action is either
//! recorded as a dry-run decision (plan mode) or made as an audited mutation (safety
//! invariant 4: intent, IAM change and/or notification, outcome), and the key's lifecycle
//! record follows by compare-and-set.

use super::notice::{recipient, stage_text};
use super::{Applied, Run};
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::audit_record::{Outcome, Phase};
use crate::domain::lifecycle::{KeyRecord, Stage};
use crate::domain::model::AccessKeyId;
use crate::domain::policy::Mode;
use crate::ports::PortError;
use crate::steps::StepError;
use crate::steps::audited::Mutation;
use crate::steps::status::Status;

/// The effect of a transition on AWS, besides the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Deactivate,
    Delete,
}

impl Run<'_> {
    /// Carries out one planned action: re-checks it (enforce mode), then records it as a
    /// dry-run decision (plan mode) or makes it an audited mutation followed by the key's
    /// lifecycle record.
    pub(super) async fn apply(
        &self,
        action: &Action,
        record: Option<&KeyRecord>,
    ) -> Result<Applied, StepError> {
        let key = AccessKeyId::parse(&action.resource).map_err(|e| {
            StepError::Port(PortError::InvalidResponse {
                operation: "plan".into(),
                message: e.to_string(),
            })
        })?;
        let user = action.principal.clone().unwrap_or_default();
        let from = record.map_or(Stage::Active, |r| r.stage);
        let mut action = action.clone();
        // The world may have changed since the plan was made: the guards below read again
        // what each destructive step depends on, and one that cannot read blocks.
        if self.policy.mode == Mode::Enforce
            && let Err(why) = self.recheck(&mut action, &key, &user, record).await
        {
            return self.refuse(&action, &key, &user, from, why).await;
        }
        let (to, change) = match (action.action, action.reason) {
            (ActionType::Warn, _) => (Stage::Warned, Change::None),
            (ActionType::Deactivate, _) => (Stage::Deactivated, Change::Deactivate),
            (ActionType::Delete, _) => (Stage::Deleted, Change::Delete),
            (ActionType::Rotate, _) => (Stage::Escalated, Change::None),
            (ActionType::Reset, _) => (Stage::Active, Change::None),
            (ActionType::Reconcile, Reason::KeyGone) => (Stage::Deleted, Change::None),
            (ActionType::Reconcile, _) => (Stage::Deactivated, Change::None),
            (other, _) => {
                return Err(StepError::Port(PortError::Other {
                    operation: "sweep".into(),
                    message: format!("{} is not an IAM key action", other.as_str()),
                }));
            }
        };
        let done = |status: Status, stage: Stage, error: Option<String>| Applied {
            key: key.to_string(),
            user: user.clone(),
            action: action.action,
            reason: action.reason,
            status,
            stage,
            detail: action.detail.clone(),
            error,
        };
        let reason = action.reason.as_str();
        if self.policy.mode == Mode::Plan {
            let entry = self.entry(
                key.as_str(),
                action.action,
                reason,
                (Phase::Decision, Some(Outcome::Planned)),
                format!("mode = plan, not carried out: {}", action.detail),
                (from, to),
            );
            self.log.append(&entry, self.wall.now()).await?;
            return Ok(done(Status::DryRun, from, None));
        }
        let notification = self.notification(&action, &key, &user);
        let intent_detail = match &notification {
            Some(n) => format!("{}; notify {}", action.detail, recipient(n)),
            None => action.detail.clone(),
        };
        // A notification sits between the effect and the outcome, so the mutation is begun
        // and ended here rather than through `mutate`.
        let mutation = Mutation::begin(
            &self.log,
            self.wall,
            self.entry(
                key.as_str(),
                action.action,
                reason,
                (Phase::Intent, None),
                intent_detail,
                (from, to),
            ),
        )
        .await?;
        let effect = match change {
            Change::None => Ok(()),
            Change::Deactivate => self.ports.admin.set_key_active(&user, &key, false).await,
            Change::Delete => self.ports.admin.delete_key(&user, &key).await,
        };
        let effect = match effect {
            // Already gone: the deletion (or the user's) happened; record it as done.
            Err(PortError::NotFound { .. }) if change == Change::Delete => Ok(()),
            other => other,
        };
        let sent = match (&effect, &notification) {
            (Ok(()), Some(n)) => Some(self.ports.notifier.notify(n).await),
            _ => None,
        };
        let failure = match (&effect, &sent) {
            (Err(e), _) => Some(e.clone()),
            // Only a warning or an escalation *is* the notification; after an IAM change
            // a failed notification is reported but the change stands.
            (Ok(()), Some(Err(e))) if change == Change::None => Some(e.clone()),
            _ => None,
        };
        if let Some(e) = failure {
            // Nothing changed: the outcome's `after` is the stage the key stays in.
            mutation.failed(&e).await?;
            if let PortError::NoCredentials { .. } = e {
                return Err(e.into());
            }
            return Ok(done(Status::Failed, from, Some(e.to_string())));
        }
        let outcome_detail = match &sent {
            Some(Ok(Some(id))) => format!("{}; notification sent (message {id})", stage_text(to)),
            Some(Ok(None)) => format!(
                "{}; no sns_topic_arn configured, notification reported only",
                stage_text(to)
            ),
            Some(Err(e)) => format!("{}; notification failed: {e}", stage_text(to)),
            None => stage_text(to),
        };
        mutation.succeeded(outcome_detail).await?;
        let next = KeyRecord {
            key: key.clone(),
            user: user.clone(),
            stage: to,
            since: self.now,
            version: 0,
            secret: None,
        };
        let expected = record.map_or(0, |r| r.version);
        if self.store.replace(expected, next).await?.is_none() {
            return Ok(done(
                Status::Conflict,
                to,
                Some("the key's lifecycle record was changed by another run; the next sweep re-reads it".into()),
            ));
        }
        Ok(done(Status::Done, to, None))
    }

    /// Records a step a guard refused (blocked, nothing changed) and reports it.
    async fn refuse(
        &self,
        action: &Action,
        key: &AccessKeyId,
        user: &str,
        from: Stage,
        why: String,
    ) -> Result<Applied, StepError> {
        self.log
            .append(
                &self.entry(
                    key.as_str(),
                    action.action,
                    action.reason.as_str(),
                    (Phase::Decision, Some(Outcome::Blocked)),
                    why.clone(),
                    (from, from),
                ),
                self.wall.now(),
            )
            .await?;
        Ok(Applied {
            key: key.to_string(),
            user: user.to_owned(),
            action: action.action,
            reason: action.reason,
            status: Status::Blocked,
            stage: from,
            detail: action.detail.clone(),
            error: Some(why),
        })
    }
}
