//! Ports: the capabilities the steps need from the outside world, one narrow trait each.
//!
//! Adapters in [`crate::aws`] implement them over the AWS SDK; tests may implement them in
//! memory. Errors crossing a port are classified ([`PortError`]) so that callers decide on
//! retry, escalation or a clear message without looking at SDK types.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::audit_record::{AuditRecord, StoredRecord};
use crate::domain::credential_report::ReportRow;
use crate::domain::model::{
    AccessKey, AccessKeyId, AccountId, ApiKey, Certificate, IamUser, LastUsed, Secret, Tags,
};

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

/// Who keyrotor is running as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    pub arn: String,
}

impl Caller {
    /// The caller's partition (`aws`, `aws-cn`, `aws-us-gov`), from its ARN.
    pub fn partition(&self) -> &str {
        self.arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
    }
}

/// An account of an AWS Organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccount {
    pub id: AccountId,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`: only active accounts are worked in.
    pub status: String,
}

/// The accounts of the caller's AWS Organization.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Every account of the organization, every page, in any status.
    async fn accounts(&self) -> PortResult<Vec<MemberAccount>>;
    /// The organization's id (`o-…`, DescribeOrganization); `None` when the directory
    /// cannot tell.
    async fn organization_id(&self) -> PortResult<Option<String>> {
        Ok(None)
    }
}

#[async_trait]
pub trait Identity: Send + Sync {
    /// STS GetCallerIdentity.
    async fn caller(&self) -> PortResult<Caller>;
}

/// Read-only view of IAM users and their access keys.
#[async_trait]
pub trait IamInventory: Send + Sync {
    /// The credential report, regenerated only when missing or older than `max_age_hours`;
    /// waits while AWS is still generating it.
    async fn credential_report(
        &self,
        now: DateTime<Utc>,
        max_age_hours: u32,
    ) -> PortResult<Vec<ReportRow>>;
    /// ListAccessKeys for one user (every page).
    async fn access_keys(&self, user: &str) -> PortResult<Vec<AccessKey>>;
    /// ListUserTags for one user (every page).
    async fn user_tags(&self, user: &str) -> PortResult<Tags>;
    /// GetAccessKeyLastUsed; `None` when never used.
    async fn key_last_used(&self, key: &AccessKeyId) -> PortResult<Option<LastUsed>>;
    /// The user owning access key `key` now (GetAccessKeyLastUsed's UserName, whatever
    /// the user is called today); `None` when no such key exists in the account.
    async fn key_owner(&self, key: &AccessKeyId) -> PortResult<Option<String>>;
    /// GetUser and ListUserTags: the user's name, ARN, path, creation and tags as IAM has
    /// them now (no keys); `None` when no such user exists.
    async fn user(&self, name: &str) -> PortResult<Option<IamUser>>;
}

/// Changes to IAM access keys. Only a Secrets Manager rotation creates keys.
#[async_trait]
pub trait IamKeyAdmin: Send + Sync {
    /// CreateAccessKey: the new key's id and its secret access key.
    async fn create_key(&self, user: &str) -> PortResult<(AccessKeyId, SecretValue)>;
    /// UpdateAccessKey to Active (`true`) or Inactive (`false`).
    async fn set_key_active(&self, user: &str, key: &AccessKeyId, active: bool) -> PortResult<()>;
    /// DeleteAccessKey.
    async fn delete_key(&self, user: &str, key: &AccessKeyId) -> PortResult<()>;
}

/// A role as IAM reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub arn: String,
    pub last_used: Option<DateTime<Utc>>,
    /// The trust policy document (decoded JSON text).
    pub trust_policy: String,
    pub tags: Tags,
    /// The ARN of the role's permissions boundary, if it has one.
    pub permissions_boundary: Option<String>,
}

/// The IAM reads and writes a migration to a role needs.
#[async_trait]
pub trait IamRoles: Send + Sync {
    /// The managed and inline policies of a user and of its groups.
    async fn user_permissions(
        &self,
        user: &str,
    ) -> PortResult<crate::domain::migration::Permissions>;
    /// GetRole; `None` when it does not exist.
    async fn role(&self, name: &str) -> PortResult<Option<RoleInfo>>;
    /// CreateRole (tagged, with the permissions boundary when given); an existing role of
    /// that name is returned as is.
    async fn create_role(
        &self,
        name: &str,
        path: &str,
        trust_policy: &str,
        max_session_seconds: u32,
        permissions_boundary: Option<&str>,
        tags: &Tags,
    ) -> PortResult<String>;
    /// AttachRolePolicy (idempotent in IAM).
    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> PortResult<()>;
    /// PutRolePolicy (replaces a policy of the same name).
    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> PortResult<()>;
    /// GetPolicy, then GetPolicyVersion of its default version: the managed policy's
    /// document (decoded); `None` when no such policy exists.
    async fn managed_policy_document(
        &self,
        policy_arn: &str,
    ) -> PortResult<Option<serde_json::Value>>;
    /// AttachUserPolicy (idempotent in IAM).
    async fn attach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()>;
    /// DetachUserPolicy; a policy not attached (or not existing) is not an error.
    async fn detach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()>;
    /// DeleteUserPolicy of an inline policy; `false` when the user had no such policy.
    async fn delete_user_policy(&self, user: &str, name: &str) -> PortResult<bool>;
}

/// Proves that a new access key works.
#[async_trait]
pub trait KeyTester: Send + Sync {
    /// STS GetCallerIdentity signed with the key: `Ok(false)` when AWS rejects the key (for
    /// a new key, possibly not yet visible: IAM is eventually consistent).
    async fn works(&self, key: &AccessKeyId, secret: &SecretValue) -> PortResult<bool>;
}

/// Read-only view of API Gateway API keys, with their usage plans and tags.
#[async_trait]
pub trait ApiKeyInventory: Send + Sync {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>>;
}

/// One API key as API Gateway reports it (never with its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub tags: Tags,
}

/// A credential value read to be published: no `Debug` output, no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }

    /// The value, for the one call that must send it to AWS.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Changes to API Gateway API keys and their usage-plan membership (one region).
#[async_trait]
pub trait ApiKeyAdmin: Send + Sync {
    /// GetApiKey without its value; `None` when the key does not exist.
    async fn key(&self, id: &str) -> PortResult<Option<ApiKeyInfo>>;
    /// Keys whose name starts with `prefix` (GetApiKeys nameQuery, every page).
    async fn keys_named(&self, prefix: &str) -> PortResult<Vec<ApiKeyInfo>>;
    /// CreateApiKey, enabled, with `value`; returns the new key's id.
    async fn create_key(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &Tags,
        value: &SecretValue,
    ) -> PortResult<String>;
    /// GetApiKey with its value.
    async fn key_value(&self, id: &str) -> PortResult<SecretValue>;
    /// Ids of the keys in a usage plan (every page).
    async fn plan_keys(&self, plan: &str) -> PortResult<Vec<String>>;
    /// Ids of the usage plans key `id` is attached to now (GetUsagePlans with keyId, every
    /// page), sorted.
    async fn key_plans(&self, id: &str) -> PortResult<Vec<String>>;
    /// CreateUsagePlanKey; a key already in the plan is not an error.
    async fn attach(&self, plan: &str, key: &str) -> PortResult<()>;
    /// DeleteUsagePlanKey; a key not in the plan is not an error.
    async fn detach(&self, plan: &str, key: &str) -> PortResult<()>;
    /// UpdateApiKey `/enabled`.
    async fn set_enabled(&self, id: &str, enabled: bool) -> PortResult<()>;
    /// DeleteApiKey; a key already gone is not an error.
    async fn delete_key(&self, id: &str) -> PortResult<()>;
}

/// What DescribeSecret says about a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDescription {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    pub tags: Tags,
    /// Version id -> staging labels.
    pub versions: std::collections::BTreeMap<String, Vec<String>>,
}

/// Versions and staging labels of one secret, and the writes a rotation makes.
#[async_trait]
pub trait SecretVersions: Send + Sync {
    /// DescribeSecret; `None` when the secret does not exist.
    async fn describe(&self, secret: &str) -> PortResult<Option<SecretDescription>>;
    /// RotateSecret (immediately, with the configured rotation function); returns the new
    /// version id.
    async fn rotate_now(&self, secret: &str) -> PortResult<String>;
    /// Version id -> staging labels (DescribeSecret); `None` when the secret does not exist.
    async fn stages(
        &self,
        secret: &str,
    ) -> PortResult<Option<std::collections::BTreeMap<String, Vec<String>>>>;
    /// GetSecretValue of one version (by id) or stage; `None` when it has no string value.
    async fn value(
        &self,
        secret: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> PortResult<Option<SecretValue>>;
    /// PutSecretValue with `token` as ClientRequestToken, staged AWSPENDING (the label
    /// moves from any other version). Repeating it with the same token and value is a no-op.
    async fn put_pending(&self, secret: &str, token: &str, value: &SecretValue) -> PortResult<()>;
    /// UpdateSecretVersionStage: moves `stage` to `to` (from `from`, when it is elsewhere),
    /// or only removes it from `from` when `to` is `None`.
    async fn move_stage(
        &self,
        secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> PortResult<()>;
}

/// Read-only view of ACM certificates in one region.
#[async_trait]
pub trait CertInventory: Send + Sync {
    /// Every certificate of every key type and status. `detail_if` says which summaries need
    /// DescribeCertificate and tags (the rest are returned from the list call alone).
    async fn certificates(
        &self,
        region: &str,
        detail_if: &(dyn Fn(Option<DateTime<Utc>>) -> bool + Send + Sync),
    ) -> PortResult<Vec<Certificate>>;
}

/// Read-only view of Secrets Manager secrets (metadata, never values).
#[async_trait]
pub trait SecretInventory: Send + Sync {
    async fn secrets(&self) -> PortResult<Vec<Secret>>;
}

/// Outcome of an append to the audit store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// Another writer took this sequence number first: re-read and retry.
    #[error("sequence number already taken")]
    SeqTaken,
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Full resource key (`kind#account#region#id`) or just the id.
    pub resource: Option<String>,
    pub run: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// The append-only, hash-chained audit table.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// The record with the highest sequence number for `resource`.
    async fn last(&self, resource: &str) -> PortResult<Option<AuditRecord>>;
    /// Puts a record only if its (resource, seq) is free; never overwrites.
    async fn append(&self, record: &AuditRecord) -> Result<(), AppendError>;
    /// Records matching `query`, each decoded or the reason it could not be.
    async fn query(&self, query: &AuditQuery) -> PortResult<Vec<StoredRecord>>;
    /// Every record (for verification).
    async fn all(&self) -> PortResult<Vec<StoredRecord>>;
}

/// What `keyrotor init` did to a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStatus {
    Created,
    AlreadyExists,
}

/// Creates keyrotor's tables.
#[async_trait]
pub trait TableAdmin: Send + Sync {
    async fn ensure_audit_table(&self, name: &str) -> PortResult<TableStatus>;
    async fn ensure_state_table(&self, name: &str) -> PortResult<TableStatus>;
}

/// The time. Steps read it once per run; the core never reads it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, or a fixed time from `KEYROTOR_NOW` / `--at`.
#[derive(Debug, Clone, Copy)]
pub enum SystemClock {
    Real,
    Fixed(DateTime<Utc>),
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            SystemClock::Real => Utc::now(),
            SystemClock::Fixed(t) => *t,
        }
    }
}

/// One state-table item with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateItem {
    pub sk: String,
    /// Incremented by every [`StateStore::put_versioned`]; 0 for items written otherwise.
    pub version: u64,
    pub attrs: std::collections::BTreeMap<String, String>,
}

/// Who holds a lease, when another run does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
}

/// The state table: lifecycle state that must survive between runs (e.g. the last
/// certificate ladder step notified, the stage of an IAM key), and leases.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Every item of partition `pk` (every page).
    async fn list(&self, pk: &str) -> PortResult<Vec<StateItem>>;
    /// Writes item (`pk`, `sk`) with `attrs` only if its version is still `expected` (0: the
    /// item must not exist); the stored version becomes `expected + 1`. `Ok(false)` when
    /// another run changed it first.
    async fn put_versioned(
        &self,
        pk: &str,
        sk: &str,
        expected: u64,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> PortResult<bool>;
    /// Takes lease `name` for `holder` until `now + ttl`, if it is free, expired or already
    /// held by `holder`; otherwise says who holds it.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> PortResult<Result<(), LeaseHolder>>;
    /// Gives lease `name` back, if `holder` still holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()>;
    /// The attributes of item (`pk`, `sk`), if it exists.
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> PortResult<Option<std::collections::BTreeMap<String, String>>>;
    /// Writes item (`pk`, `sk`) with `attrs` and `rank` only if it does not exist or its
    /// stored rank is lower. `Ok(false)` when another run got there first.
    async fn advance(
        &self,
        pk: &str,
        sk: &str,
        rank: u64,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> PortResult<bool>;
}

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
pub const EVENT_TYPES: [(&str, &str, &str); 12] = [
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

/// A state machine execution as Step Functions reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionStatus {
    pub arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE.
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Starts and follows executions of the deployed state machines.
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// StartExecution; an execution of that name that already exists is returned, not
    /// started again.
    async fn start(&self, machine: &str, name: &str, input: &str) -> PortResult<String>;
    async fn describe(&self, execution: &str) -> PortResult<ExecutionStatus>;
}

/// Where large item lists go for a Distributed Map (S3).
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Writes `body` (a JSON array) to `key` in `bucket`.
    async fn put(&self, bucket: &str, key: &str, body: &str) -> PortResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_and_detail_type_is_documented() {
        let doc = include_str!("../docs/events.md");
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
