//! The state table (lifecycle state and leases, written with optimistic versions) and the
//! creation of keyrotor's tables.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PortResult;

/// One state-table item with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateItem {
    pub sk: String,
    /// Incremented by every [`StateStore::put_versioned`]; 0 for items written otherwise.
    pub version: u64,
    pub attrs: BTreeMap<String, String>,
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
        attrs: &BTreeMap<String, String>,
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
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<BTreeMap<String, String>>>;
    /// Writes item (`pk`, `sk`) with `attrs` and `rank` only if it does not exist or its
    /// stored rank is lower. `Ok(false)` when another run got there first.
    async fn advance(
        &self,
        pk: &str,
        sk: &str,
        rank: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool>;
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
