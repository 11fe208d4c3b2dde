//! Secrets Manager: secret metadata, versions and staging labels, and the one type that
//! carries a credential value ([`SecretValue`], which has no printable form).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::PortResult;
use crate::domain::model::{Secret, Tags};

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

/// What DescribeSecret says about a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDescription {
    pub arn: String,
    pub name: String,
    pub rotation_enabled: bool,
    pub tags: Tags,
    /// Version id -> staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
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
    async fn stages(&self, secret: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>>;
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

/// Read-only view of Secrets Manager secrets (metadata, never values).
#[async_trait]
pub trait SecretInventory: Send + Sync {
    async fn secrets(&self) -> PortResult<Vec<Secret>>;
}
