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
    /// The regions to investigate: every region enabled in the account (opted in or
    /// enabled by default), sorted.
    async fn enabled_regions(&self) -> PortResult<Vec<String>>;
    /// LookupEvents with `AccessKeyId` = `key` in `region` between `start` and `end`, every
    /// page, paced under CloudTrail's quota (2 requests per second per region); oldest
    /// first. `limit` bounds how many events are read: AWS pages newest first, so a limited
    /// look-up keeps the newest `limit` events, and exactly `limit` events may mean there
    /// were more (ask for one more than needed to tell). `None` reads all.
    async fn key_events(
        &self,
        region: &str,
        key: &AccessKeyId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
    ) -> PortResult<Vec<ActivityEvent>>;
}
