//! Stale IAM access keys: the sweep that moves each key through its lifecycle (warn,
//! deactivate, delete; reset when a key is used again; escalate old keys in use) and the
//! undo, `keyrotor reactivate iam-key`.
//!
//! Every transition is: intent record, effect (an IAM change and/or a notification), outcome
//! record, then the key's lifecycle record in the state table (compare-and-set). A run that
//! stops anywhere in between converges on the next run: a repeated warning is sent again
//! (at-least-once), a deactivation or deletion already done is found and recorded. One run
//! per account at a time (lease in the state table).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::guard::{self, Removal};
use super::{StepError, discover, new_run_id, with_lease};
use crate::audit::AuditLog;
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::inventory::Inventory;
use crate::domain::lifecycle::{self, KeyRecord, Stage};
use crate::domain::model::{AccessKeyId, AccountId, KeyStatus, Kind};
use crate::domain::plan::{self, GLOBAL, Plan, key_facts};
use crate::domain::policy::{Mode, Policy};
use crate::ports::{
    AuditStore, Caller, Clock, IamInventory, IamKeyAdmin, Identity, Notification, Notifier,
    PortError, SecretVersions, StateStore,
};

/// The ports the IAM key steps use.
pub struct IamKeyPorts<'a> {
    pub identity: &'a dyn Identity,
    pub iam: &'a dyn IamInventory,
    /// Read before a superseded key is deactivated (was AWSCURRENT moved back to it?).
    pub secrets: &'a dyn SecretVersions,
    pub admin: &'a dyn IamKeyAdmin,
    pub state: &'a dyn StateStore,
    pub notifier: &'a dyn Notifier,
    pub audit: &'a dyn AuditStore,
}

/// What the sweep did with one planned action.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub key: String,
    pub user: String,
    pub action: ActionType,
    pub reason: Reason,
    /// `done`, `dry-run` (mode = plan), `conflict` (changed by another run), `blocked` (a
    /// guard refused, nothing changed) or `failed`.
    pub status: &'static str,
    /// The lifecycle stage after this run.
    pub stage: Stage,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The sweep's result.
#[derive(Debug, Clone, Serialize)]
pub struct IamSweep {
    pub run_id: String,
    pub mode: Mode,
    pub plan: Plan,
    pub applied: Vec<Applied>,
}

impl IamSweep {
    pub fn failed(&self) -> usize {
        self.applied
            .iter()
            .filter(|a| matches!(a.status, "failed" | "blocked"))
            .count()
    }
}

/// The lease name serialising IAM key runs in one account.
pub fn lease_name(account: &AccountId) -> String {
    format!("iam-keys#{account}")
}

/// Reads keyrotor's lifecycle records of `account`; an item that cannot be read stops the
/// run (acting without it could repeat or skip a step).
pub async fn key_records(
    state: &dyn StateStore,
    account: &AccountId,
) -> Result<Vec<KeyRecord>, StepError> {
    super::read_records(
        state,
        &KeyRecord::partition(account.as_str()),
        KeyRecord::from_item,
        "fix the item or delete it (keyrotor then treats the key as active)",
    )
    .await
}

/// Plans and carries out what is due for IAM access keys. In `mode = "plan"` every due
/// action is recorded as a dry-run decision and nothing else happens.
pub async fn sweep(
    ports: &IamKeyPorts<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<IamSweep, StepError> {
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    with_lease(
        ports.state,
        &lease_name(&caller.account),
        &format!("the IAM keys of account {}", caller.account),
        &run_id,
        wall,
        sweep_locked(ports, policy, now, wall, &caller, &run_id),
    )
    .await
}

async fn sweep_locked(
    ports: &IamKeyPorts<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
    wall: &dyn Clock,
    caller: &Caller,
    run_id: &str,
) -> Result<IamSweep, StepError> {
    let records = key_records(ports.state, &caller.account).await?;
    let (users, root_active_keys) = discover::iam_users(ports.iam, now, policy, &records).await?;
    let mut inventory = Inventory::empty(caller.account.clone(), GLOBAL);
    inventory.iam_users = users;
    inventory.root_active_keys = root_active_keys;
    inventory.key_records = records;
    inventory.migration_owned = super::migration::owning_keys(
        &super::migration::records(ports.state, &caller.account).await?,
    );
    let plan = plan::plan(&inventory, now, policy, &[Kind::IamKeys]);
    let records: HashMap<&str, &KeyRecord> = inventory
        .key_records
        .iter()
        .map(|r| (r.key.as_str(), r))
        .collect();
    let run = Run {
        ports,
        policy,
        now,
        wall,
        log: AuditLog::new(ports.audit, run_id.to_owned(), caller.arn.clone()),
        account: caller.account.clone(),
    };
    let mut applied = Vec::with_capacity(plan.actions.len());
    let lease = lease_name(&caller.account);
    let progress = crate::progress::Phase::start("IAM keys", plan.actions.len());
    let acted = async {
    for action in &plan.actions {
        progress.step();
        // Renew the lease before every action: a long run never acts once another run
        // may have taken over.
        if let Err(holder) = ports
            .state
            .acquire_lease(
                &lease,
                run_id,
                wall.now(),
                Duration::minutes(super::LEASE_TTL_MINUTES),
            )
            .await?
        {
            return Err(StepError::InProgress(format!(
                "in progress: the lease {lease} was taken over by {} while this run was working; it stopped before acting on {}",
                holder.holder, action.resource
            )));
        }
        let record = records.get(action.resource.as_str()).copied();
        applied.push(run.apply(action, record).await?);
    }
    Ok(())
    }
    .await;
    run.log.finish(acted, wall.now()).await?;
    Ok(IamSweep {
        run_id: run_id.to_owned(),
        mode: policy.mode,
        plan,
        applied,
    })
}

/// One sweep's context.
struct Run<'a> {
    ports: &'a IamKeyPorts<'a>,
    policy: &'a Policy,
    now: DateTime<Utc>,
    wall: &'a dyn Clock,
    log: AuditLog<'a>,
    account: AccountId,
}

/// The effect of a transition on AWS, besides the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    None,
    Deactivate,
    Delete,
}

impl Run<'_> {
    fn entry(
        &self,
        key: &str,
        action: ActionType,
        reason: &str,
        (phase, outcome): (Phase, Option<Outcome>),
        detail: String,
        stages: (Stage, Stage),
    ) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: self.account.to_string(),
                region: GLOBAL.to_owned(),
                id: key.to_owned(),
            },
            action: action.as_str().to_owned(),
            phase,
            outcome,
            reason: reason.to_owned(),
            detail,
            before: Some(stages.0.as_str().to_owned()),
            after: Some(stages.1.as_str().to_owned()),
            dry_run: self.policy.mode == Mode::Plan,
            policy_time: self.now,
        }
    }

    async fn apply(
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
        let done = |status: &'static str, stage: Stage, error: Option<String>| Applied {
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
            return Ok(done("dry-run", from, None));
        }
        let notification = self.notification(&action, &key, &user);
        let intent_detail = match &notification {
            Some(n) => format!("{}; notify {}", action.detail, recipient(n)),
            None => action.detail.clone(),
        };
        self.log
            .append(
                &self.entry(
                    key.as_str(),
                    action.action,
                    reason,
                    (Phase::Intent, None),
                    intent_detail,
                    (from, to),
                ),
                self.wall.now(),
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
            self.log
                .append(
                    &self.entry(
                        key.as_str(),
                        action.action,
                        reason,
                        (Phase::Outcome, Some(Outcome::Failed)),
                        e.to_string(),
                        (from, from),
                    ),
                    self.wall.now(),
                )
                .await?;
            if let PortError::NoCredentials { .. } = e {
                return Err(e.into());
            }
            return Ok(done("failed", from, Some(e.to_string())));
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
        self.log
            .append(
                &self.entry(
                    key.as_str(),
                    action.action,
                    reason,
                    (Phase::Outcome, Some(Outcome::Succeeded)),
                    outcome_detail,
                    (from, to),
                ),
                self.wall.now(),
            )
            .await?;
        let next = KeyRecord {
            key: key.clone(),
            user: user.clone(),
            stage: to,
            since: self.now,
            version: 0,
            secret: None,
        };
        let expected = record.map_or(0, |r| r.version);
        let pk = KeyRecord::partition(self.account.as_str());
        if !self
            .ports
            .state
            .put_versioned(&pk, key.as_str(), expected, &next.attrs())
            .await?
        {
            return Ok(done(
                "conflict",
                to,
                Some("the key's lifecycle record was changed by another run; the next sweep re-reads it".into()),
            ));
        }
        Ok(done("done", to, None))
    }

    /// Reads again, right before a destructive step, what it depends on, and turns the
    /// action into what the facts now call for: a key used since the warning is reset, a
    /// superseded key still in use or rolled back to is kept, a key found active again is
    /// not deleted, a key missing from the credential report is confirmed gone with IAM.
    /// `Err(why)` when the step must not go on (a guard refused, or could not read).
    async fn recheck(
        &self,
        action: &mut Action,
        key: &AccessKeyId,
        user: &str,
        record: Option<&KeyRecord>,
    ) -> Result<(), String> {
        let cannot = |what: &str, e: PortError| {
            format!("cannot {what} right before acting, so nothing was changed: {e}")
        };
        // Scope as IAM has the user now: an exemption, break-glass tag or path change made
        // since discovery stops a deactivation or deletion here.
        if matches!(action.action, ActionType::Deactivate | ActionType::Delete) {
            // A user deleted meanwhile has no keys left to protect: the step finds the key gone.
            if let Some(found) = self
                .ports
                .iam
                .user(user)
                .await
                .map_err(|e| cannot("read the user", e))?
                && let Some(e) =
                    crate::domain::scope::iam_user_exclusion(&found, self.now, self.policy)
            {
                return Err(format!(
                    "IAM user {user} is out of keyrotor's scope now ({}): {}; nothing was changed",
                    e.code(),
                    e.detail()
                ));
            }
        }
        match (action.action, action.reason) {
            (ActionType::Deactivate, _) => {
                let used = self
                    .ports
                    .iam
                    .key_last_used(key)
                    .await
                    .map_err(|e| cannot("read the key's last use", e))?;
                if let (Some(since), Some(used)) = (record.map(|r| r.since), used) {
                    let service = used.service.as_deref().unwrap_or("service unknown");
                    if action.reason == Reason::StillUnused && used.at > since {
                        action.action = ActionType::Reset;
                        action.reason = Reason::UsedAfterWarning;
                        action.detail = format!(
                            "warned on {}, then used on {} ({service}): in use, so back to active; no deactivation",
                            since.format("%Y-%m-%d"),
                            used.at.format("%Y-%m-%d"),
                        );
                        return Ok(());
                    }
                    if action.reason == Reason::Superseded
                        && used.at > action.due_at - Duration::days(1)
                    {
                        action.action = ActionType::Rotate;
                        action.reason = Reason::SupersededInUse;
                        action.detail = format!(
                            "replaced by a Secrets Manager rotation on {}, but still used on {} ({service}): a client has not picked up the new secret; not deactivated, owner escalated",
                            since.format("%Y-%m-%d"),
                            used.at.format("%Y-%m-%d"),
                        );
                        return Ok(());
                    }
                }
                if action.reason == Reason::Superseded {
                    self.recheck_secret(action, key, user, record).await?;
                }
                Ok(())
            }
            (ActionType::Delete, _) => {
                match guard::removable(self.ports.iam, user, key, record, self.now, self.policy)
                    .await
                    .map_err(|e| cannot("read the key", e))?
                {
                    // An active key is never deleted by the lifecycle, even one the removal
                    // guard would allow (never used, older than the lag): it was reactivated.
                    Removal::Allowed(found) | Removal::Refused(found, _)
                        if found.status == KeyStatus::Active =>
                    {
                        action.action = ActionType::Reset;
                        action.reason = Reason::ReactivatedOutside;
                        action.detail = "found active again right before deletion (reactivated outside keyrotor); back to active, not deleted".into();
                        Ok(())
                    }
                    Removal::Allowed(_) | Removal::Gone => Ok(()),
                    Removal::Refused(_, why) => Err(format!("not deleted: {why}")),
                }
            }
            (ActionType::Reconcile, Reason::KeyGone) => {
                // Absence from a credential report hours old proves nothing: a user
                // created or renamed since is not in it. Ask IAM for the key itself.
                match self
                    .ports
                    .iam
                    .key_owner(key)
                    .await
                    .map_err(|e| cannot("confirm the key is gone", e))?
                {
                    None => Ok(()),
                    Some(owner) => Err(format!(
                        "key {key} still exists (user {owner}{}); it is missing only from the credential report, which can be hours old; its lifecycle goes on once the report shows it",
                        if owner == user {
                            String::new()
                        } else {
                            format!(", was {user}")
                        }
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    /// A superseded key is deactivated only while its secret still hands out another key:
    /// an owner who moved AWSCURRENT back to it (the rotation notice tells them how) keeps
    /// it. No secret on the record, or a secret that cannot be read: blocked.
    async fn recheck_secret(
        &self,
        action: &mut Action,
        key: &AccessKeyId,
        owner: &str,
        record: Option<&KeyRecord>,
    ) -> Result<(), String> {
        let Some(secret) = record.and_then(|r| r.secret.as_deref()) else {
            return Err(format!(
                "the lifecycle record of {key} does not name the secret that superseded it, so keyrotor cannot check that AWSCURRENT was not moved back to it; deactivate it by hand once no client uses it, or run `keyrotor rotate secret` again"
            ));
        };
        let current = self
            .ports
            .secrets
            .value(secret, None, Some("AWSCURRENT"))
            .await
            .map_err(|e| format!("cannot read AWSCURRENT of secret {secret} right before deactivating {key}, so nothing was changed: {e}"))?
            .ok_or_else(|| format!("secret {secret} has no AWSCURRENT value; not deactivating {key} until it does"))?;
        // The record is state-table content: the secret it names must hold this user's key
        // and the user must name that secret (both ways, read now), or nothing is done.
        let user = record.map(|r| r.user.as_str()).unwrap_or_default();
        if user != owner {
            return Err(format!(
                "the lifecycle record of {key} names user {user}, but IAM shows the key belongs to {owner}; the record does not match AWS, so nothing was changed"
            ));
        }
        let held = serde_json::from_str::<serde_json::Value>(current.expose())
            .ok()
            .and_then(|v| {
                let field = |f: &str| v.get(f).and_then(|k| k.as_str()).map(str::to_owned);
                Some((field("userName")?, field("accessKeyId")?))
            });
        let Some((holder, held_key)) = held else {
            return Err(format!(
                "the AWSCURRENT value of secret {secret} is not {{\"userName\", \"accessKeyId\", ...}}, so keyrotor cannot tell whether it was moved back to {key}; not deactivating it until the secret is fixed"
            ));
        };
        if holder != user {
            return Err(format!(
                "secret {secret} holds a key of {holder}, but {key} belongs to {user}; the lifecycle record does not match the secret, so nothing was changed"
            ));
        }
        match super::guard::user_bound(self.ports.iam, user, secret).await {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => return Err(format!("{why}; not deactivating {key}")),
            Err(e) => {
                return Err(format!(
                    "cannot read IAM user {user} right before deactivating {key}, so nothing was changed: {e}"
                ));
            }
        }
        if held_key == key.as_str() {
            action.action = ActionType::Reset;
            action.reason = Reason::RolledBack;
            action.detail = format!(
                "superseded by a rotation of secret {secret}, but AWSCURRENT names {key} again (moved back): in use, back to active; not deactivated"
            );
        }
        Ok(())
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
            status: "blocked",
            stage: from,
            detail: action.detail.clone(),
            error: Some(why),
        })
    }

    /// The message for the owner, for the transitions people must hear about.
    fn notification(&self, action: &Action, key: &AccessKeyId, user: &str) -> Option<Notification> {
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

fn recipient(n: &Notification) -> String {
    n.owner
        .clone()
        .unwrap_or_else(|| "nobody (no owner tag, no default_contact)".into())
}

fn stage_text(stage: Stage) -> String {
    format!("now {}", stage.as_str())
}

/// What `keyrotor reactivate iam-key` did.
#[derive(Debug, Clone, Serialize)]
pub struct Reactivated {
    pub run_id: String,
    pub key: String,
    pub user: String,
    /// When keyrotor will look at the key again (a fresh unused window).
    pub reconsidered_at: Option<DateTime<Utc>>,
}

/// Reactivates a key keyrotor deactivated (audited), giving it a fresh unused window.
pub async fn reactivate(
    ports: &IamKeyPorts<'_>,
    policy: &Policy,
    key_text: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Reactivated, StepError> {
    let key = AccessKeyId::parse(key_text.trim()).map_err(|e| {
        StepError::InvalidInput(format!(
            "access key id {key_text:?}: {e}; pass the id shown by `keyrotor plan --kind iam-keys` or `keyrotor audit list`"
        ))
    })?;
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let work = async {
        let records = key_records(ports.state, &caller.account).await?;
        let record = records.iter().find(|r| r.key == key);
        let Some(record) = record.filter(|r| r.stage == Stage::Deactivated) else {
            return Err(StepError::InvalidInput(format!(
                "keyrotor did not deactivate {key} (its lifecycle stage in account {} is {}); it only reactivates keys it deactivated. To reactivate another key: aws iam update-access-key --access-key-id {key} --status Active --user-name <user>",
                caller.account,
                record.map_or("none", |r| r.stage.as_str())
            )));
        };
        let keys = ports
            .iam
            .access_keys(&record.user)
            .await
            .map_err(|e| match e {
                PortError::NotFound { .. } => StepError::InvalidInput(format!(
                    "user {} of key {key} no longer exists; nothing to reactivate",
                    record.user
                )),
                e => e.into(),
            })?;
        let Some(current) = keys.iter().find(|k| k.id == key) else {
            return Err(StepError::InvalidInput(format!(
                "key {key} of {} no longer exists (deleted); nothing to reactivate",
                record.user
            )));
        };
        let run = Run {
            ports,
            policy,
            now,
            wall,
            log: AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone()),
            account: caller.account.clone(),
        };
        let done = async {
        let stages = (Stage::Deactivated, Stage::Reactivated);
        let detail = format!(
            "reactivated on request by {}; reconsidered after a fresh {}-day unused window",
            caller.arn, policy.iam_keys.unused_days
        );
        let entry = |at: (Phase, Option<Outcome>), detail: String, stages| {
            let mut e = run.entry(
                key.as_str(),
                ActionType::Reset,
                "reactivated-on-request",
                at,
                detail,
                stages,
            );
            e.action = "reactivate".into();
            e.dry_run = false;
            e
        };
        run.log
            .append(
                &entry((Phase::Intent, None), detail.clone(), stages),
                wall.now(),
            )
            .await?;
        if current.status != KeyStatus::Active
            && let Err(e) = ports.admin.set_key_active(&record.user, &key, true).await
        {
            run.log
                .append(
                    &entry(
                        (Phase::Outcome, Some(Outcome::Failed)),
                        e.to_string(),
                        (Stage::Deactivated, Stage::Deactivated),
                    ),
                    wall.now(),
                )
                .await?;
            return Err(e.into());
        }
        run.log
            .append(
                &entry((Phase::Outcome, Some(Outcome::Succeeded)), detail, stages),
                wall.now(),
            )
            .await?;
        let next = KeyRecord {
            key: key.clone(),
            user: record.user.clone(),
            stage: Stage::Reactivated,
            since: now,
            version: 0,
            secret: None,
        };
        let pk = KeyRecord::partition(caller.account.as_str());
        if !ports
            .state
            .put_versioned(&pk, key.as_str(), record.version, &next.attrs())
            .await?
        {
            return Err(StepError::InProgress(format!(
                "the lifecycle record of {key} changed while it was reactivated; run the command again"
            )));
        }
        let mut facts = key_facts(current);
        facts.active = true;
        let reconsidered_at = lifecycle::next(facts, Some(&next), now, policy).map(|n| n.at);
        Ok(Reactivated {
            run_id: run_id.clone(),
            key: key.to_string(),
            user: record.user.clone(),
            reconsidered_at,
        })
        }
        .await;
        run.log.finish(done, wall.now()).await
    };
    with_lease(
        ports.state,
        &lease_name(&caller.account),
        &format!("the IAM keys of account {}", caller.account),
        &run_id,
        wall,
        work,
    )
    .await
}

#[cfg(test)]
mod tests {
    //! Invariants 4 and 5 with in-memory ports: no IAM change without its intent record; a
    //! run that stops after any AWS call converges on the next run; one run at a time; a
    //! report that cannot be read changes nothing.

    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::credential_report::{ReportKey, ReportRow};
    use crate::domain::model::{AccessKey, LastUsed, Tags};
    use crate::ports::{PortResult, SystemClock};
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

    fn actions(done: &IamSweep) -> Vec<(ActionType, &'static str)> {
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
        assert_eq!(actions(&done), vec![(ActionType::Deactivate, "done")]);
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
        assert_eq!(actions(&done), vec![(ActionType::Reconcile, "done")]);
        assert_eq!(stage(&state).as_deref(), Some("deactivated"));
        assert!(iam.calls.lock().unwrap().is_empty());
        // Deleted in IAM before the record was written: recorded as deleted, once.
        iam.delete_key("bob", &AccessKeyId::parse(KEY).unwrap())
            .await
            .unwrap();
        let done = sweep_at(&iam, &state, &audit, 100).await.unwrap();
        assert_eq!(actions(&done), vec![(ActionType::Reconcile, "done")]);
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
        assert_eq!(actions(&done), vec![(ActionType::Warn, "done")]);
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
        assert_eq!(actions(&done), vec![(ActionType::Delete, "blocked")]);
        assert_eq!(done.failed(), 1);
        assert!(iam.calls.lock().unwrap().is_empty(), "nothing deleted");
        assert_eq!(iam.status(), Some(KeyStatus::Inactive));
        assert_eq!(stage(&state).as_deref(), Some("deactivated"));
        iam.fail_list_from = None;
        let done = sweep_at(&iam, &state, &audit, 101).await.unwrap();
        assert_eq!(actions(&done), vec![(ActionType::Delete, "done")]);
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
        assert_eq!(actions(&done), vec![(ActionType::Reconcile, "blocked")]);
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
        assert_eq!(actions(&done), vec![(ActionType::Deactivate, "blocked")]);
        assert!(iam.calls.lock().unwrap().is_empty(), "not deactivated");
        assert_eq!(stage(&state).as_deref(), Some("warned"));
    }
}
