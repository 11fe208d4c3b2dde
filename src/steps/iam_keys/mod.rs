//! Stale IAM access keys: the sweep that moves each key through its lifecycle (warn,
//! deactivate, delete; reset when a key is used again; escalate old keys in use) and the
//! undo, `keyrotor reactivate iam-key`.
//!
//! Every transition is: intent record, effect (an IAM change and/or a notification), outcome
//! record, then the key's lifecycle record in the state table (compare-and-set). A run that
//! stops anywhere in between converges on the next run: a repeated warning is sent again
//! (at-least-once), a deactivation or deletion already done is found and recorded. One run
//! per account at a time (lease in the state table).
//!
//! Where things live: this module holds the public API ([`sweep`], [`reactivate`], their
//! ports and results) and the sweep's loop; `apply` carries out one planned action, after
//! `recheck` has read again what it depends on (safety invariant 8); `notice` words what
//! the owner is told; `store` is the only code that reads or writes the keys' lifecycle
//! records.

mod apply;
mod notice;
mod reactivate;
mod recheck;
mod store;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::status::Status;
use super::{StepError, discover, new_run_id, with_lease};
use crate::audit::AuditLog;
use crate::domain::action::{ActionType, Reason};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::inventory::Inventory;
use crate::domain::lifecycle::{KeyRecord, Stage};
use crate::domain::model::{AccountId, Kind};
use crate::domain::plan::{self, GLOBAL, Plan};
use crate::domain::policy::{Mode, Policy};
use crate::ports::{
    AuditStore, Caller, Clock, IamInventory, IamKeyAdmin, Identity, Notifier, SecretVersions,
    StateStore,
};

pub use reactivate::{Reactivated, reactivate};
pub(crate) use store::KeyRecordStore;

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
    pub status: Status,
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
    /// Actions that did not happen and are work left: failed, conflict or blocked
    /// ([`Status::is_failure`]).
    pub fn failed(&self) -> usize {
        self.applied
            .iter()
            .filter(|a| a.status.is_failure())
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
    KeyRecordStore::new(state, account).list().await
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
    let store = KeyRecordStore::new(ports.state, &caller.account);
    let records = store.list().await?;
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
        store,
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
    /// The account's key lifecycle records.
    store: KeyRecordStore<'a>,
}

impl Run<'_> {
    /// The audit entry of a transition of `key` between `stages` (before, after).
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
}
