//! The audit table: append-only and hash-chained, so a writer can only add the next record
//! of a resource, never change one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PortError, PortResult};
use crate::domain::audit_record::{AuditRecord, StoredRecord};

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
