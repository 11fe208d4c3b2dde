//! Ports: the capabilities the steps need from the outside world, one narrow trait each.
//!
//! Adapters in [`crate::aws`] implement them over the AWS SDK; tests may implement them in
//! memory. Errors crossing a port are classified ([`PortError`]) so that callers decide on
//! retry, escalation or a clear message without looking at SDK types.
//!
//! One file per outside system (`iam`, `apigateway`, `secrets`, `acm`, `account` for STS
//! and Organizations, `activity` for CloudTrail's event history, `orchestration` for Step
//! Functions and S3) or keyrotor's own stores
//! (`audit`, `state`), plus `notify` and `clock`. A new credential kind adds its traits in
//! a file of its own here and one `pub use` line.

mod account;
mod acm;
mod activity;
mod apigateway;
mod audit;
mod clock;
mod iam;
mod notify;
mod orchestration;
mod secrets;
mod state;

pub use account::{AccountDirectory, Caller, Identity, MemberAccount};
pub use acm::CertInventory;
pub use activity::{ActivityEvent, ActivityLog};
pub use apigateway::{ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory};
pub use audit::{AppendError, AuditQuery, AuditStore};
pub use clock::{Clock, SystemClock};
pub use iam::{IamInventory, IamKeyAdmin, IamRoles, KeyTester, RoleInfo};
pub use notify::{EVENT_TYPES, Notification, Notifier, detail_type, notify_or_log};
pub use orchestration::{ExecutionStatus, ItemStore, Orchestrator};
pub use secrets::{SecretDescription, SecretInventory, SecretValue, SecretVersions};
pub use state::{LeaseHolder, StateItem, StateStore, TableAdmin, TableStatus};

/// A failed call to the outside world, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error(
        "no AWS credentials found ({detail}); set --profile or AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
    )]
    NoCredentials { detail: String },
    #[error(
        "cannot reach AWS for {operation} ({detail}); check --endpoint-url, the region and the network"
    )]
    Unreachable { operation: String, detail: String },
    #[error(
        "access denied for {operation}: {message}; grant the caller permission for {operation}"
    )]
    AccessDenied { operation: String, message: String },
    #[error(
        "the AWS credentials were rejected for {operation}: {message}; refresh them or pick another --profile"
    )]
    InvalidCredentials { operation: String, message: String },
    #[error("{operation} was throttled by AWS even after retries; run again later")]
    Throttled { operation: String },
    #[error("{operation}: {what}")]
    NotFound { operation: String, what: String },
    /// A quota of the account was reached: a person must free room, retrying cannot help.
    #[error(
        "{operation}: an AWS limit was reached ({message}); free up room (for example remove an unused key) or raise the quota, then run again"
    )]
    Limit { operation: String, message: String },
    /// Not ready yet (e.g. a new IAM key not yet valid everywhere): worth retrying soon.
    #[error("{operation}: {message}")]
    NotReady { operation: String, message: String },
    #[error("{operation}: conflicting concurrent change ({message})")]
    Conflict { operation: String, message: String },
    #[error("{operation}: unexpected response: {message}")]
    InvalidResponse { operation: String, message: String },
    #[error("{operation} failed: {message}")]
    Other { operation: String, message: String },
}

impl PortError {
    /// Stable machine-readable name, used for exit codes and Step Functions Retry/Catch.
    pub fn name(&self) -> &'static str {
        match self {
            PortError::NoCredentials { .. } => "KeyRotor.NoCredentials",
            PortError::Unreachable { .. }
            | PortError::Throttled { .. }
            | PortError::NotReady { .. } => "KeyRotor.Retryable",
            PortError::AccessDenied { .. } | PortError::InvalidCredentials { .. } => {
                "KeyRotor.AccessDenied"
            }
            PortError::NotFound { .. } => "KeyRotor.NotFound",
            PortError::Limit { .. } => "KeyRotor.Blocked",
            PortError::Conflict { .. } => "KeyRotor.Conflict",
            PortError::InvalidResponse { .. } | PortError::Other { .. } => "KeyRotor.Failed",
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;
