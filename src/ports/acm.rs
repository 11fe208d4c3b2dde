//! ACM: the certificates of one region.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PortResult;
use crate::domain::model::Certificate;

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
