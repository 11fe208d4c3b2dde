//! The credential model: what keyrotor knows about an account's credentials.
//!
//! Identifiers are newtypes built through parse functions ("parse, don't validate"), so an
//! `AccessKeyId` or `AccountId` in the core has already been checked. Nothing here holds a
//! secret value: identifiers and metadata only. What one account holds is gathered in
//! [`Inventory`](super::inventory::Inventory).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Tag whose value is the expiry date of an exemption (`YYYY-MM-DD` or RFC 3339).
pub const TAG_EXEMPT: &str = "keyrotor:exempt";
/// Tag on an API key naming the Secrets Manager secret its consumers read.
pub const TAG_SECRET: &str = "keyrotor:secret";
/// Tag on an IAM user naming the workload identity that will replace its keys.
pub const TAG_MIGRATE_TO: &str = "keyrotor:migrate-to";
/// Tag on a secret saying what kind of credential it holds.
pub const TAG_TYPE: &str = "keyrotor:type";
/// Tag naming the owner to notify.
pub const TAG_OWNER: &str = "owner";

/// An input that failed to parse into a domain identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is not valid: {expected}")]
pub struct ParseIdError {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(value: &str) -> Result<Self, ParseIdError> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(ParseIdError {
                what: "account id",
                value: value.to_owned(),
                expected: "12 digits",
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = ParseIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<AccountId> for String {
    fn from(value: AccountId) -> Self {
        value.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An IAM access key id (`AKIA…` for long-lived keys), 16 to 128 upper-case alphanumerics.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccessKeyId(String);

impl AccessKeyId {
    pub fn parse(value: &str) -> Result<Self, ParseIdError> {
        let ok = (16..=128).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(ParseIdError {
                what: "access key id",
                value: value.to_owned(),
                expected: "16 to 128 upper-case letters and digits, such as AKIAIOSFODNN7EXAMPLE",
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for AccessKeyId {
    type Error = ParseIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<AccessKeyId> for String {
    fn from(value: AccessKeyId) -> Self {
        value.0
    }
}
impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of work keyrotor plans; also the values of `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    ApiKeys,
    IamKeys,
    Migration,
    Certs,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::ApiKeys, Kind::IamKeys, Kind::Migration, Kind::Certs];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ApiKeys => "api-keys",
            Kind::IamKeys => "iam-keys",
            Kind::Migration => "migration",
            Kind::Certs => "certs",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tags as AWS returns them.
pub type Tags = BTreeMap<String, String>;

/// Status of an IAM access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

/// When and where a credential was last used, as far as AWS knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastUsed {
    pub at: DateTime<Utc>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// One IAM access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: AccessKeyId,
    pub status: KeyStatus,
    pub created: DateTime<Utc>,
    /// `None` when the key has never been used.
    pub last_used: Option<LastUsed>,
}

/// An IAM user and its access keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamUser {
    pub name: String,
    pub arn: String,
    /// IAM path, e.g. `/apps/`.
    pub path: String,
    pub created: DateTime<Utc>,
    pub tags: Tags,
    pub keys: Vec<AccessKey>,
    /// The account's root user (the credential report's `<root_account>` row).
    pub is_root: bool,
}

/// An API Gateway API key (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub created: DateTime<Utc>,
    pub last_updated: Option<DateTime<Utc>>,
    pub tags: Tags,
    /// Ids of every usage plan the key is attached to.
    pub usage_plans: Vec<String>,
}

impl ApiKey {
    /// The secret named by `keyrotor:secret`, when the key is managed.
    pub fn bound_secret(&self) -> Option<&str> {
        self.tags
            .get(TAG_SECRET)
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }
}

/// How ACM got the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertType {
    AmazonIssued,
    Imported,
    Private,
    Unknown,
}

/// An ACM certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub arn: String,
    pub domain: String,
    pub region: String,
    pub status: String,
    pub cert_type: CertType,
    /// `None` for a certificate that was never issued (pending validation, failed).
    pub not_after: Option<DateTime<Utc>>,
    pub in_use: bool,
    /// `ELIGIBLE` / `INELIGIBLE` as ACM reports it.
    pub renewal_eligibility: Option<String>,
    /// Managed renewal status (`PENDING_AUTO_RENEWAL`, `PENDING_VALIDATION`, `SUCCESS`, `FAILED`).
    pub renewal_status: Option<String>,
    pub renewal_failure_reason: Option<String>,
    /// `DNS`, `EMAIL` or `HTTP` for Amazon-issued certificates.
    pub validation_method: Option<String>,
    pub key_algorithm: Option<String>,
    pub tags: Tags,
}

/// A Secrets Manager secret (metadata only, never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub arn: String,
    pub name: String,
    pub tags: Tags,
    pub rotation_enabled: bool,
    pub last_rotated: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_accepts_twelve_digits_only() {
        assert!(AccountId::parse("123456789012").is_ok());
        assert!(AccountId::parse("12345678901").is_err());
        assert!(AccountId::parse("12345678901a").is_err());
    }

    #[test]
    fn access_key_id_rejects_lower_case_and_short_values() {
        assert!(AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").is_ok());
        assert!(AccessKeyId::parse("akiaiosfodnn7example").is_err());
        assert!(AccessKeyId::parse("AKIA").is_err());
        let err = AccessKeyId::parse("nope").unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("AKIA"), "{err}");
    }

    #[test]
    fn api_key_is_managed_only_with_a_non_empty_secret_tag() {
        let mut key = ApiKey {
            id: "k".into(),
            name: "n".into(),
            enabled: true,
            created: Utc::now(),
            last_updated: None,
            tags: Tags::new(),
            usage_plans: vec![],
        };
        assert_eq!(key.bound_secret(), None);
        key.tags.insert(TAG_SECRET.into(), " ".into());
        assert_eq!(key.bound_secret(), None);
        key.tags.insert(TAG_SECRET.into(), "s".into());
        assert_eq!(key.bound_secret(), Some("s"));
    }
}
