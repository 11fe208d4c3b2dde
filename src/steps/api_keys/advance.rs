//! Carrying a rotation forward: every step that is due, in order, each an audited mutation
//! (intent, the AWS calls, outcome), then the record moved on by compare-and-set (safety
//! invariants 4 and 5); and what the owner is told.

use super::Advanced;
use super::replacement::Stop;
use super::run::Run;
use crate::domain::api_rotation::{Rotation, RotationStep, TAG_ROTATION, Trigger};
use crate::domain::audit_record::{Outcome, Phase};
use crate::ports::Notification;
use crate::steps::StepError;
use crate::steps::audited::Mutation;
use crate::steps::status::Status;

impl Run<'_> {
    /// Carries out every step of `rotation` that is due now, in order, stopping at the
    /// first that fails or is not due yet.
    pub(super) async fn advance(&self, mut rotation: Rotation) -> Result<Advanced, StepError> {
        let mut steps = Vec::new();
        let result = |rotation: &Rotation,
                      steps: Vec<RotationStep>,
                      status: Status,
                      error: Option<String>| {
            let next = rotation.next(self.policy);
            Advanced {
                key: rotation.old_key.clone(),
                name: rotation.name.clone(),
                secret: Some(rotation.secret.clone()),
                trigger: Some(rotation.trigger),
                steps,
                stage: Some(rotation.stage),
                new_key: rotation.new_key.clone(),
                next: next.map(|n| n.0),
                next_at: next.map(|n| n.1),
                status,
                error,
                cause: None,
            }
        };
        while let Some((step, due)) = rotation.next(self.policy) {
            if due > self.now {
                break;
            }
            let reason = rotation.trigger.as_str();
            let id = rotation.old_key.clone();
            let mutation = Mutation::begin(
                &self.log,
                self.wall,
                self.entry(
                    &id,
                    step.as_str(),
                    reason,
                    (Phase::Intent, None),
                    self.intent(&rotation, step),
                    None,
                ),
            )
            .await?;
            let new_key = match self.step(&rotation, step).await {
                Ok(new_key) => new_key,
                Err(stop) => {
                    let (outcome, status, message, cause) = match stop {
                        Stop::Blocked(m) => (Outcome::Blocked, Status::Blocked, m, None),
                        Stop::Port(e) => (Outcome::Failed, Status::Failed, e.to_string(), Some(e)),
                    };
                    if outcome == Outcome::Blocked {
                        self.notify(self.blocked(&rotation, step, &message)).await;
                    }
                    mutation.end(outcome, message.clone(), None).await?;
                    return Ok(Advanced {
                        cause,
                        ..result(&rotation, steps, status, Some(message))
                    });
                }
            };
            let mut next = rotation.advanced(step, self.now);
            if let Some(k) = new_key {
                next.new_key = Some(k);
            }
            mutation
                .end(
                    Outcome::Succeeded,
                    format!("now {}", next.stage.as_str()),
                    Some(next.new_key.clone()),
                )
                .await?;
            let Some(next) = self.store().advance(&rotation, next).await? else {
                return Ok(result(
                    &rotation,
                    steps,
                    Status::Conflict,
                    Some(
                        "the rotation record was changed by another run; the next run re-reads it"
                            .into(),
                    ),
                ));
            };
            steps.push(step);
            rotation = next;
            if step == RotationStep::Promote {
                self.notify(self.rotated(&rotation)).await;
            }
        }
        Ok(result(&rotation, steps, Status::Done, None))
    }

    /// The owner's message when `step` of rotation `r` was blocked with `message`.
    fn blocked(&self, r: &Rotation, step: RotationStep, message: &str) -> Notification {
        let id = &r.old_key;
        Notification {
            event: "action-blocked".into(),
            resource: id.clone(),
            owner: self.policy.notifications.default_contact.clone(),
            subject: format!(
                "keyrotor: {} of API key {} ({}) was blocked",
                step.as_str(),
                r.name,
                id
            )
            .chars()
            .take(100)
            .collect(),
            message: format!(
                "{message}.\nNothing was changed by this step; the rotation stays at {} and the step is tried again by the next sweep once the cause is fixed.",
                r.stage.as_str()
            ),
            at: Some(self.now),
            undo: Some(format!(
                "fix the cause, then `keyrotor rotate api-key {id}` continues the rotation"
            )),
        }
    }

    /// The owner's message once the replacement is the secret's current value.
    fn rotated(&self, r: &Rotation) -> Notification {
        let new_key = r.new_key.as_deref().unwrap_or("the replacement");
        let retire = r.next(self.policy).map(|(_, at)| at);
        let retire_text = retire.map_or("the end of the grace period".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M UTC").to_string()
        });
        Notification {
            event: "api-key-rotated".into(),
            resource: r.old_key.clone(),
            owner: self.policy.notifications.default_contact.clone(),
            subject: format!("API key {} rotated: {new_key} is current", r.name)
                .chars()
                .take(100)
                .collect(),
            message: format!(
                "API key {} ({}) was rotated ({}). The new key {new_key} is the AWSCURRENT value of secret {} and is in every usage plan of the old key ({}).\nThe old key keeps working until {retire_text}; then keyrotor detaches and disables it, and deletes it {} days later.\nClients that read the secret pick the new value up on their next read.",
                r.name,
                r.old_key,
                r.trigger.as_str(),
                r.secret,
                r.plans.join(", "),
                self.policy.api_keys.recovery_days,
            ),
            at: retire.or(Some(self.now)),
            undo: Some(format!(
                "until {retire_text} both keys work; to go back, make the previous version of {} AWSCURRENT again (update-secret-version-stage) and keyrotor refuses to retire {}",
                r.secret, r.old_key
            )),
        }
    }

    /// Sends a notification; a failed delivery is logged and does not stop the rotation.
    async fn notify(&self, n: Notification) {
        crate::ports::notify_or_log(self.ports.notifier, &n).await;
    }

    fn intent(&self, r: &Rotation, step: RotationStep) -> String {
        let new = r.new_key.as_deref().unwrap_or("(not created yet)");
        match step {
            RotationStep::CreateReplacement => format!(
                "create {} (tag {TAG_ROTATION} = {}) and attach it to usage plans [{}]",
                r.replacement_name(),
                r.token,
                r.plans.join(", ")
            ),
            RotationStep::Publish => format!(
                "write the value of {new} to secret {} as version {} (AWSPENDING)",
                r.secret, r.token
            ),
            RotationStep::Verify => format!(
                "check {new} is enabled and in usage plans [{}], and the pending version names it",
                r.plans.join(", ")
            ),
            RotationStep::Promote => format!(
                "move AWSCURRENT of {} to version {} (the old value stays AWSPREVIOUS); both keys keep working for {} days",
                r.secret,
                r.token,
                match r.trigger {
                    Trigger::Compromised => 0,
                    _ => self.policy.api_keys.grace_days,
                }
            ),
            RotationStep::Retire => format!(
                "detach {} from usage plans [{}] and disable it ({new} serves them)",
                r.old_key,
                r.plans.join(", ")
            ),
            RotationStep::Delete => format!(
                "delete {} after {} days of recovery window",
                r.old_key, self.policy.api_keys.recovery_days
            ),
        }
    }
}
