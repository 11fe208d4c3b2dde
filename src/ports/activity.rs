//! CloudTrail: what an access key did (LookupEvents by access key id), and the regions to
//! look in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::PortResult;
use crate::domain::model::AccessKeyId;

/// One CloudTrail management event made with an access key. Identifiers and metadata only:
/// never a request body or a credential value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActivityEvent {
    /// CloudTrail's EventId.
    pub id: String,
    /// The API call, e.g. `CreateUser`.
    pub name: String,
    /// The service, e.g. `iam.amazonaws.com`.
    pub source: String,
    pub time: DateTime<Utc>,
    /// The region the call was made in (`awsRegion`).
    pub region: String,
    /// CloudTrail's `readOnly`, when it says.
    pub read_only: Option<bool>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The call's error code when it failed (`AccessDenied`, ...).
    pub error_code: Option<String>,
    /// The IAM user name CloudTrail records.
    pub user: Option<String>,
}

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
