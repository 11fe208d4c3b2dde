//! Actions: what keyrotor will do to a credential, and why.
//!
//! The vocabulary shared by the lifecycles (which decide the next step of one credential)
//! and the planner (which lists the steps due in one account). Plain data, no decisions.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{AccountId, Kind};

/// What keyrotor will do to a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionType {
    /// Tell the owner the key will be deactivated, and when.
    Warn,
    /// Deactivate an IAM key (reversible).
    Deactivate,
    /// Delete an inactive IAM key.
    Delete,
    /// Create, publish and verify a replacement, then retire the old credential.
    Rotate,
    /// Provision the role that replaces a user's long-lived keys.
    ProvisionRole,
    /// End a lifecycle: the key is in use again (no AWS change).
    Reset,
    /// Record what was found (a key already inactive or gone; no AWS change).
    Reconcile,
    /// Detach a rotated API key from its usage plans and disable it.
    Retire,
    /// Notify the owner of a certificate that needs attention.
    Notify,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionType::Warn => "warn",
            ActionType::Deactivate => "deactivate",
            ActionType::Delete => "delete",
            ActionType::Rotate => "rotate",
            ActionType::ProvisionRole => "provision-role",
            ActionType::Reset => "reset",
            ActionType::Reconcile => "reconcile",
            ActionType::Retire => "retire",
            ActionType::Notify => "notify",
        }
    }
}

/// Why an action is planned (machine-readable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// An active key not used for `unused_days`.
    Unused,
    /// An active key never used in `unused_days` since creation.
    NeverUsed,
    /// Older than `max_age_days` and still in use.
    MaxAgeExceeded,
    /// An inactive key that stayed unused through its quiet period.
    InactiveUnused,
    /// Warned, and still unused when the warning period ended.
    StillUnused,
    /// Used again after the owner was warned.
    UsedAfterWarning,
    /// Deactivated by keyrotor, then reactivated outside keyrotor.
    ReactivatedOutside,
    /// Warned, then found inactive.
    FoundInactive,
    /// The key (or its user) no longer exists.
    KeyGone,
    /// An API key rotation has a step due now (create, publish, verify, promote).
    RotationInProgress,
    /// The grace period after promoting the replacement is over.
    GraceOver,
    /// The recovery period after retiring the old key is over.
    RecoveryOver,
    /// Replaced by a Secrets Manager rotation and its grace period is over.
    Superseded,
    /// Replaced by a Secrets Manager rotation but still in use.
    SupersededInUse,
    /// Replaced by a Secrets Manager rotation, then the secret's AWSCURRENT was moved back
    /// to it.
    RolledBack,
    /// The user is tagged `keyrotor:migrate-to`.
    MigrateTo,
    /// A certificate reached a step of the escalation ladder.
    Expiring,
    /// A certificate is past its NotAfter.
    Expired,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unused => "unused",
            Reason::NeverUsed => "never-used",
            Reason::MaxAgeExceeded => "max-age-exceeded",
            Reason::InactiveUnused => "inactive-unused",
            Reason::StillUnused => "still-unused",
            Reason::UsedAfterWarning => "used-after-warning",
            Reason::ReactivatedOutside => "reactivated-outside",
            Reason::FoundInactive => "found-inactive",
            Reason::KeyGone => "key-gone",
            Reason::RotationInProgress => "rotation-in-progress",
            Reason::GraceOver => "grace-over",
            Reason::RecoveryOver => "recovery-over",
            Reason::Superseded => "superseded",
            Reason::SupersededInUse => "superseded-in-use",
            Reason::RolledBack => "rolled-back",
            Reason::MigrateTo => "migrate-to",
            Reason::Expiring => "expiring",
            Reason::Expired => "expired",
        }
    }
}

/// One planned action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: Kind,
    /// The credential: access key id, API key id, certificate ARN, or user name (migration).
    pub resource: String,
    /// The IAM user owning the key, or the API key's name; absent for certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub account: AccountId,
    pub region: String,
    pub action: ActionType,
    pub reason: Reason,
    /// What was seen and what will happen, for people.
    pub detail: String,
    /// When the action became due (never after the plan's time).
    pub due_at: DateTime<Utc>,
    /// Who to tell (`owner` tag), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Set when the action cannot proceed as is, with the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}
