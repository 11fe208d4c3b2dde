//! CloudTrail: what an access key did (LookupEvents by access key id), and the regions to
//! look in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PortResult;
use crate::domain::model::AccessKeyId;
pub use crate::domain::respond::activity::ActivityEvent;

/// CloudTrail event history of one account.
#[async_trait]
pub trait ActivityLog: Send + Sync {
    /// The regions to investigate: every region enabled in the account.
    async fn enabled_regions(&self) -> PortResult<Vec<String>>;
    /// LookupEvents with `AccessKeyId` = `key` in `region` between `start` and `end`, every
    /// page, paced under CloudTrail's quota (2 requests per second per region); oldest
    /// first. `limit` bounds how many events are returned (the rest are counted by the
    /// caller as "more"); `None` reads all.
    async fn key_events(
        &self,
        region: &str,
        key: &AccessKeyId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
    ) -> PortResult<Vec<ActivityEvent>>;
}
