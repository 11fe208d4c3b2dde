//! Responding to a leaked or compromised credential: what the exposure is (decoded from an
//! AWS Health, GuardDuty or CloudTrail event, or named on the command line) and what the
//! key's activity shows (the investigation summary). Pure: no I/O, no clock reads.

pub mod activity;
pub mod event;

use serde::{Deserialize, Serialize};

use crate::domain::model::AccessKeyId;

/// Why a credential is being responded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Seen in public (AWS Health `AWS_RISK_CREDENTIALS_EXPOSED`, `_EXPOSURE_SUSPECTED`,
    /// `AWS_RISK_IAM_QUARANTINE`), or named exposed by a person.
    Exposed,
    /// Used by someone else (AWS Health `_COMPROMISED`, `_COMPROMISE_SUSPECTED`, a
    /// GuardDuty finding), or named compromised by a person.
    Compromised,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Exposed => "exposed",
            Reason::Compromised => "compromised",
        }
    }
}

/// Who told keyrotor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// An AWS Health event (`source` = `aws.health`).
    Health,
    /// A GuardDuty finding (`source` = `aws.guardduty`).
    #[serde(rename = "guardduty")]
    GuardDuty,
    /// A CloudTrail event of AWS attaching its quarantine policy (`AttachUserPolicy`).
    #[serde(rename = "cloudtrail")]
    CloudTrail,
    /// A person, with `keyrotor respond iam-key`.
    Cli,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Health => "health",
            Trigger::GuardDuty => "guardduty",
            Trigger::CloudTrail => "cloudtrail",
            Trigger::Cli => "cli",
        }
    }
}

/// What the exposure names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "id")]
pub enum Target {
    /// One access key (Health, GuardDuty, the command line).
    Key(AccessKeyId),
    /// A user, when the event names no key (CloudTrail's AttachUserPolicy of the
    /// quarantine policy): keyrotor acts only when the user has exactly one active key.
    User(String),
}

/// A decoded exposure: what to respond to, why, and the event that said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    pub target: Target,
    pub reason: Reason,
    pub trigger: Trigger,
    /// The event's own id (Health event ARN, GuardDuty finding id, CloudTrail event id),
    /// or `cli` for a person's request: the idempotency key of the response together with
    /// the access key id.
    pub event_id: String,
    /// The event type as AWS names it (`AWS_RISK_CREDENTIALS_EXPOSED`, the GuardDuty
    /// finding type, `AttachUserPolicy`), or `cli`.
    pub event_type: String,
    /// The account the event is about, when it says.
    pub account: Option<String>,
    /// The IAM user the event names, when it names one (GuardDuty's
    /// `accessKeyDetails.userName`, CloudTrail's `requestParameters.userName`, an AWS Health
    /// entity's user ARN). Informational: the responder still looks up who owns the key.
    pub user: Option<String>,
}

/// The inline policy keyrotor puts on the user of a leaked key: it denies every request
/// made with temporary credentials issued before the response (sessions from
/// GetSessionToken or GetFederationToken, which outlive the key's deactivation). Requests
/// signed with an access key carry no `aws:TokenIssueTime`, so the replacement key is not
/// affected.
pub const REVOKE_POLICY: &str = "keyrotor-revoke-sessions";

/// The document of [`REVOKE_POLICY`]: deny everything to sessions issued before `before`.
pub fn revoke_sessions_policy(before: chrono::DateTime<chrono::Utc>) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeyrotorRevokeOlderSessions",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "DateLessThan": {
                    "aws:TokenIssueTime": before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                }
            }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_serialise_as_their_names() {
        for t in [
            Trigger::Health,
            Trigger::GuardDuty,
            Trigger::CloudTrail,
            Trigger::Cli,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }

    #[test]
    fn the_revocation_denies_only_sessions_issued_before_the_response() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let doc: serde_json::Value = serde_json::from_str(&revoke_sessions_policy(at)).unwrap();
        let statement = &doc["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Action"], "*");
        assert_eq!(
            statement["Condition"]["DateLessThan"]["aws:TokenIssueTime"],
            "2026-12-04T10:00:00Z"
        );
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 1);
    }
}
