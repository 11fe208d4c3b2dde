//! API Gateway: API keys (never read with their value, except to publish it) and their
//! usage-plan membership.

use async_trait::async_trait;

use super::{PortResult, SecretValue};
use crate::domain::model::{ApiKey, Tags};

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
