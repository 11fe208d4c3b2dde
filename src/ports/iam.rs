//! IAM: users and their access keys (read, and the few changes keyrotor makes to keys),
//! the roles and policies a migration needs, and the proof that a new key works.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PortResult, SecretValue};
use crate::domain::credential_report::ReportRow;
use crate::domain::model::{AccessKey, AccessKeyId, IamUser, LastUsed, Tags};

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
    /// PutUserPolicy: an inline policy of the user (replaces one of the same name).
    async fn put_user_policy(&self, user: &str, name: &str, document: &str) -> PortResult<()>;
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
