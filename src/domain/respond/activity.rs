//! The investigation summary of an exposed key's activity (filled in with the CloudTrail
//! adapter).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One CloudTrail management event made with an access key. Identifiers and metadata only:
/// never a request body or a credential value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
