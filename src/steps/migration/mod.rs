//! Migration from IAM user keys to a role: `keyrotor migrate plan|apply|status|rollback`
//! and `keyrotor sweep --kind migration` (adoption tracking and the stages after it).
//!
//! A migration record in the state table is never enough to act on a user's keys: before
//! the guard is attached, the keys deactivated or deleted, the sweep re-reads from IAM that
//! the user still asks for the migration and that the record's role is the one keyrotor
//! provisions for it ([`crate::domain::migration::confirm`]); otherwise the step is blocked.
//!
//! Where things live: this module holds the ports, the shared types and helpers; `plan`
//! (read-only), `apply` (provision the role), `sweep` (follow every migration; the IAM
//! reads that may refuse a step are in `checks`, the changes themselves in `change`),
//! `funnel` (`migrate status`) and `rollback` are one command each; `store` is the only
//! code that reads or writes migration records.

mod apply;
mod change;
mod checks;
mod funnel;
mod plan;
mod rollback;
mod store;
mod sweep;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StepError;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::migration::{
    MigrationRecord, MigrationStage, Permissions, RolePlan, RoleSeen, TrustScope, WorkloadIdentity,
};
use crate::domain::model::{AccountId, Kind};
use crate::domain::plan::GLOBAL;
use crate::domain::policy::Policy;
use crate::ports::{
    AccountDirectory, AuditStore, Caller, IamInventory, IamKeyAdmin, IamRoles, Identity, Notifier,
    PortError, RoleInfo, StateStore,
};

pub use apply::{apply, apply_with};
pub use funnel::{Candidate, Funnel, status};
pub use plan::plan_user;
pub use rollback::{rollback, rollback_report};
pub(crate) use store::MigrationStore;
pub use sweep::{MigrationSweep, Transition, sweep};

/// Tag on a provisioned role: the user it replaces.
pub const TAG_MIGRATED_FROM: &str = "keyrotor:migrated-from";

/// The ports a migration uses.
pub struct MigrationPorts<'a> {
    pub identity: &'a dyn Identity,
    pub iam: &'a dyn IamInventory,
    pub keys: &'a dyn IamKeyAdmin,
    pub roles: &'a dyn IamRoles,
    pub state: &'a dyn StateStore,
    pub notifier: &'a dyn Notifier,
    pub audit: &'a dyn AuditStore,
    /// The organization's accounts and id, read when `[accounts] organization = true` and
    /// a role in another account is to be trusted (`None`: not wired; such a role is then
    /// refused, and its migration's destructive steps are blocked).
    pub directory: Option<&'a dyn AccountDirectory>,
}

/// How one key of the user is used.
#[derive(Debug, Clone, Serialize)]
pub struct KeyUsage {
    pub key: String,
    pub status: &'static str,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// `keyrotor migrate plan <user>`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub user: String,
    pub account: AccountId,
    /// The value of `keyrotor:migrate-to`.
    pub migrate_to: Option<String>,
    pub identity: Option<WorkloadIdentity>,
    pub keys: Vec<KeyUsage>,
    pub permissions: Permissions,
    pub role: Option<RolePlan>,
    /// The AWS config profile the workload switches to.
    pub client_profile: Option<String>,
    /// The migration in progress, if any.
    pub record: Option<MigrationRecord>,
    /// Why nothing can be created, when that is so.
    pub blocked: Option<String>,
}

fn tag_error(user: &str, e: PortError) -> StepError {
    match e {
        PortError::NotFound { .. } => StepError::InvalidInput(format!(
            "no IAM user named {user:?}; check the name (case matters)"
        )),
        e => e.into(),
    }
}

/// Every migration record of the account (a missing state table: none).
pub async fn records(
    state: &dyn StateStore,
    account: &AccountId,
) -> Result<Vec<MigrationRecord>, StepError> {
    MigrationStore::new(state, account).list().await
}

/// The users whose keys a migration owns now (the IAM key sweep leaves them alone).
pub fn owning_keys(records: &[MigrationRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.stage.owns_keys())
        .map(|r| r.user.clone())
        .collect()
}

/// Whether trusting `identity` depends on the organization (a role or trust anchor in
/// another account than keyrotor's).
fn needs_organization(identity: &WorkloadIdentity, home: &AccountId) -> bool {
    identity.account().is_some_and(|a| a != home.as_str())
}

/// Whom the run may trust: the caller's account and partition and, when `[accounts]
/// organization = true` and `needed`, the organization's accounts (ListAccounts) and id
/// (DescribeOrganization), read once.
async fn trust_scope(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    caller: &Caller,
    needed: bool,
) -> Result<TrustScope, StepError> {
    let mut scope = TrustScope::account(caller.partition(), caller.account.as_str());
    if !(needed && policy.accounts.organization) {
        return Ok(scope);
    }
    let Some(directory) = ports.directory else {
        return Err(StepError::Port(PortError::Other {
            operation: "organizations:ListAccounts".into(),
            message: "[accounts] organization = true, but this entry point cannot list the organization; trust the account through [migration] allowed_accounts instead".into(),
        }));
    };
    scope.organization_accounts = Some(
        directory
            .accounts()
            .await?
            .into_iter()
            .map(|a| a.id.as_str().to_owned())
            .collect(),
    );
    scope.organization_id = directory.organization_id().await?;
    Ok(scope)
}

/// The lease serialising every run that changes the migration of `user` (apply, sweep,
/// rollback).
fn lease_name(account: &AccountId, user: &str) -> String {
    format!("migration#{account}#{user}")
}

fn entry(
    (account, user): (&AccountId, &str),
    action: &str,
    (phase, outcome): (Phase, Option<Outcome>),
    detail: String,
    stages: (Option<MigrationStage>, Option<MigrationStage>),
    dry_run: bool,
    now: DateTime<Utc>,
) -> Entry {
    Entry {
        resource: ResourceRef {
            kind: Kind::Migration,
            account: account.to_string(),
            region: GLOBAL.to_owned(),
            id: user.to_owned(),
        },
        action: action.to_owned(),
        phase,
        outcome,
        reason: "migrate-to".into(),
        detail,
        before: stages.0.map(|s| s.as_str().to_owned()),
        after: stages.1.map(|s| s.as_str().to_owned()),
        dry_run,
        policy_time: now,
    }
}

/// What a migration compares of a role.
fn seen(role: &RoleInfo) -> RoleSeen<'_> {
    RoleSeen {
        arn: &role.arn,
        migrated_from: role.tags.get(TAG_MIGRATED_FROM).map(String::as_str),
        trust_policy: &role.trust_policy,
        permissions_boundary: role.permissions_boundary.as_deref(),
    }
}
