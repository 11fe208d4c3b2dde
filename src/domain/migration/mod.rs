//! Migrating a workload from an IAM user's long-lived keys to a role with temporary
//! credentials. Pure: the workload identity named by the tag `keyrotor:migrate-to`, the role
//! keyrotor provisions for it (trust policy, permissions, limits), the client-side
//! configuration, and the stages that follow adoption:
//!
//! ```text
//! RoleProvisioned -> Adopted -> KeysIdle -> Guarded -> KeysDeactivated -> Migrated
//!                       (keys used again after Adopted: Regressed; rollback: RolledBack)
//! ```
//!
//! Whom a role may trust ([`TrustScope`]): keyrotor's own account, the organization's
//! accounts and the accounts and OIDC subjects `[migration]` lists. Anything else is a
//! problem of the plan, accepted only for one user at a time with `--allow-external`.
//!
//! One file per concern: `identity` (the tag and the client profile), `trust` (the trust
//! policy and the allow-lists), `role` (the role plan, IAM's limits, the checks that an
//! existing role is the planned one), `document` (policy documents compared as sets),
//! `guard` (the canary guard), `record` (the stage and the state-table record) and
//! `transition` (the next transition).

mod document;
mod guard;
mod identity;
mod record;
mod role;
#[cfg(test)]
mod tests;
mod transition;
mod trust;

pub use document::same_document;
pub use guard::{GUARD_POLICY_NAME, GUARD_POLICY_PATH, guard_policy, guard_policy_arn};
pub use identity::{IDENTITY_FORMS, WorkloadIdentity};
pub use record::{MigrationRecord, MigrationStage};
pub use role::{
    INLINE_POLICY_LIMIT, INLINE_POLICY_NAME, LEGACY_ROLE_PATH, MANAGED_POLICIES_LIMIT, Permissions,
    ROLE_PATH, RolePlan, RoleSeen, TRUST_POLICY_LIMIT, confirm, matches_plan, role_name, role_plan,
};
pub use transition::{MigrationChange, MigrationFacts, MigrationNext, next};
pub use trust::{TrustScope, oidc_subject_matches};
