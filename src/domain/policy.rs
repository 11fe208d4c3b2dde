//! The policy file (`keyrotor.toml`): thresholds, selectors, exemptions and tables.
//!
//! Parsing is two-layered: serde reads a raw, span-carrying document (unknown keys and
//! wrong types fail there, with their line), then [`Policy::from_toml`] checks every value
//! and produces a [`Policy`] whose fields are already valid. Every error names the file,
//! line, key and the values that are allowed. Defaults come from the standards users are
//! audited against: CIS AWS Foundations 1.12 / Security Hub IAM.22 (credentials unused for
//! 45 days), CIS 1.14 / IAM.3 (access keys rotated every 90 days).

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::model::{AccountId, Tags};

/// Whether destructive actions are carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan and report only (the default: safe on a fresh deployment).
    #[default]
    Plan,
    /// Carry out the planned actions.
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Plan => "plan",
            Mode::Enforce => "enforce",
        })
    }
}

/// `[iam_keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IamKeysPolicy {
    /// Active keys older than this are due for rotation (CIS 1.14: 90).
    pub max_age_days: u32,
    /// Keys unused (or never used) for this long are warned, then deactivated (CIS 1.12: 45).
    pub unused_days: u32,
    /// Days between the warning and the deactivation.
    pub warn_days: u32,
    /// Days an inactive key must stay unused before it is deleted.
    pub delete_after_days: u32,
    /// Only users whose IAM path starts with one of these are in scope.
    pub path_prefixes: Vec<String>,
    /// Only users carrying all of these tags (key = value) are in scope.
    pub require_tags: Tags,
    /// A credential report younger than this is reused instead of regenerated.
    pub credential_report_max_age_hours: u32,
    /// After a Secrets Manager rotation, the previous key is deactivated this many days
    /// later (unless it is still in use).
    pub rotation_grace_days: u32,
    /// How far behind IAM's last-used data may be. A key created more recently than this is
    /// never treated as never used, and an inactive key last used more recently than this is
    /// never removed.
    pub last_used_lag_hours: u32,
}

/// `[api_keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeysPolicy {
    /// Managed API keys older than this are rotated.
    pub max_age_days: u32,
    /// Old and new key both work for this long after the new one is promoted.
    pub grace_days: u32,
    /// A retired (disabled) key waits this long before it is deleted.
    pub recovery_days: u32,
    /// Refuse to create a replacement when the region has this many API keys or fewer
    /// left under API Gateway's quota of 10,000.
    pub key_headroom: u32,
    /// Only keys whose name starts with one of these are in scope (empty: all).
    pub name_prefixes: Vec<String>,
}

/// `[certs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertsPolicy {
    /// Escalation ladder, days before expiry, sorted from the farthest to the nearest.
    pub ladder_days: Vec<u32>,
    /// Regions to check (empty: the region keyrotor runs in). CloudFront uses us-east-1.
    pub regions: Vec<String>,
}

/// `[migration]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrationPolicy {
    /// Plan migrations for users tagged `keyrotor:migrate-to` (costs one tag lookup per
    /// user with an active key).
    pub enabled: bool,
    /// Keys must stay unused this many days after the role is adopted before retirement.
    pub idle_days: u32,
    /// Maximum session duration of the roles keyrotor provisions.
    pub max_session_hours: u32,
    /// Attach the canary guard (deny long-term-key calls) before deactivating the keys.
    pub guard: bool,
    /// Days the guard stays before the keys are deactivated.
    pub guard_days: u32,
    /// Accounts whose roles and Roles Anywhere trust anchors a migrated role may trust,
    /// besides keyrotor's own account and (with `[accounts] organization = true`) the
    /// organization's accounts. Anything else needs `migrate apply --allow-external`.
    pub allowed_accounts: Vec<AccountId>,
    /// OIDC subjects a migrated role may trust: an entry is the exact subject, or a prefix
    /// ending in `*` (`repo:acme/*`). Empty (the default): no OIDC subject is trusted
    /// without `--allow-external`.
    pub allowed_oidc_subjects: Vec<String>,
    /// Managed policy ARN set as the PermissionsBoundary of every migrated role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
}

/// `[exemptions]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExemptionsPolicy {
    /// Principals never touched: IAM user names or ARNs.
    pub break_glass: Vec<String>,
    /// An exemption tag counts only when its expiry lies at most this many days ahead; a
    /// later one (or a value that is not a date) is not honoured and is reported.
    pub max_exemption_days: u32,
}

/// `[accounts]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountsPolicy {
    /// List the accounts of the AWS Organization and work in each.
    pub organization: bool,
    /// Explicit member accounts (empty: the caller's account only).
    pub ids: Vec<AccountId>,
    /// Role assumed in each member account.
    pub member_role_name: String,
    /// IAM path of that role (`/keyrotor/` in infra/member-role.yaml).
    pub member_role_path: String,
    /// The `sts:ExternalId` the member role's trust policy requires, written in the policy
    /// (for CLI use; never printed). None: not passed, or read from `external_id_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    /// A Secrets Manager secret (name or ARN, in the caller's account) whose SecretString
    /// is the external id: keeps it out of the policy text, hence out of every function's
    /// environment. `KEYROTOR_EXTERNAL_ID_SECRET` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_secret: Option<String>,
    /// Accounts processed at once.
    pub concurrency: u32,
}

/// The member role's `sts:ExternalId`: a shared secret between the central account and
/// the member role's trust policy. It has no printable form: `Debug`, `Display` and
/// `Serialize` (hence `keyrotor policy check`, text and JSON) show `<redacted, N chars>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    /// STS's ExternalId pattern `[\w+=,.@:/-]{2,1224}`, or `None`.
    pub fn parse(value: &str) -> Option<ExternalId> {
        is_external_id(value).then(|| ExternalId(value.to_owned()))
    }

    /// The value, for the one call that must send it to AWS (sts:AssumeRole).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is shown instead of the value.
    pub fn redacted(&self) -> String {
        format!("<redacted, {} chars>", self.0.chars().count())
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalId({})", self.redacted())
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ExternalId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Where the member role's external id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalIdSource {
    /// No external id is passed.
    None,
    /// `[accounts] external_id`.
    Inline(ExternalId),
    /// A Secrets Manager secret; `from` names the setting that chose it, for messages
    /// (`[accounts] external_id_secret` or `KEYROTOR_EXTERNAL_ID_SECRET`).
    Secret { id: String, from: &'static str },
}

/// The environment variable that overrides `[accounts] external_id_secret`.
pub const EXTERNAL_ID_SECRET_ENV: &str = "KEYROTOR_EXTERNAL_ID_SECRET";

impl AccountsPolicy {
    /// Where the external id comes from: `env_secret` (the value of
    /// [`EXTERNAL_ID_SECRET_ENV`], blank counts as unset) wins over `external_id_secret`;
    /// either, together with an inline `external_id`, is an error naming both.
    pub fn external_id_source(&self, env_secret: Option<&str>) -> Result<ExternalIdSource, String> {
        let env_secret = env_secret.map(str::trim).filter(|s| !s.is_empty());
        let secret = match env_secret {
            Some(id) if !is_secret_id(id) => {
                return Err(format!(
                    "{EXTERNAL_ID_SECRET_ENV} = {id:?} is not a Secrets Manager secret name or ARN: 1 to 2048 letters, digits and /_+=.@:-"
                ));
            }
            Some(id) => Some((id.to_owned(), EXTERNAL_ID_SECRET_ENV)),
            None => self
                .external_id_secret
                .clone()
                .map(|id| (id, "[accounts] external_id_secret")),
        };
        match (secret, &self.external_id) {
            (Some((_, from)), Some(_)) => Err(format!(
                "{from} and [accounts] external_id are both set: keep the external id in the secret and remove [accounts] external_id from the policy"
            )),
            (Some((id, from)), None) => Ok(ExternalIdSource::Secret { id, from }),
            (None, Some(inline)) => Ok(ExternalIdSource::Inline(inline.clone())),
            (None, None) => Ok(ExternalIdSource::None),
        }
    }

    /// Whether keyrotor works in other accounts than the caller's.
    pub fn is_multi_account(&self) -> bool {
        self.organization || !self.ids.is_empty()
    }

    /// The member role's ARN in `account` (partition `aws` unless given).
    pub fn member_role_arn(&self, partition: &str, account: &AccountId) -> String {
        format!(
            "arn:{partition}:iam::{}:role{}{}",
            account.as_str(),
            self.member_role_path,
            self.member_role_name
        )
    }
}

/// Client-side pacing of one service: `per_second` calls started per second, after at most
/// `burst` started back to back. The default burst is 1: calls evenly spaced, which leaves
/// AWS's own burst capacity as headroom for jitter, retries and other callers in the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// `[pacing]`: per service, for each account (and, for ACM, each region). The defaults are
/// the published quotas (IAM publishes none: 10/s is the rate AWS support quotes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacingPolicy {
    /// IAM: shared by every caller in the account, unpublished.
    pub iam: Rate,
    /// API Gateway management calls: 10/s per account, CreateApiKey 5/s; the stricter is kept.
    pub apigateway: Rate,
    /// Secrets Manager writes: 50/s (reads allow far more).
    pub secretsmanager: Rate,
    /// ACM DescribeCertificate / ListTagsForCertificate: 10/s per region.
    pub acm: Rate,
    /// STS AssumeRole: 600/s per account and region.
    pub sts: Rate,
    /// Organizations: unpublished; ListAccounts is paced like IAM.
    pub organizations: Rate,
}

impl PacingPolicy {
    pub const DEFAULT: PacingPolicy = PacingPolicy {
        iam: Rate {
            per_second: 10,
            burst: 1,
        },
        apigateway: Rate {
            per_second: 5,
            burst: 1,
        },
        secretsmanager: Rate {
            per_second: 50,
            burst: 1,
        },
        acm: Rate {
            per_second: 10,
            burst: 1,
        },
        sts: Rate {
            per_second: 600,
            burst: 1,
        },
        organizations: Rate {
            per_second: 10,
            burst: 1,
        },
    };
}

impl Default for PacingPolicy {
    fn default() -> Self {
        PacingPolicy::DEFAULT
    }
}

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPolicy {
    /// DynamoDB table holding the hash-chained audit records.
    pub table: String,
    /// DynamoDB table holding lifecycle state and leases.
    pub state_table: String,
}

/// `[notifications]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationsPolicy {
    /// SNS topic that receives every notification (empty: notifications are only printed
    /// and audited).
    pub sns_topic_arn: Option<String>,
    /// EventBridge bus (name or ARN) that receives every notification as an event with
    /// `source = "keyrotor"` (empty: no events).
    pub event_bus: Option<String>,
    /// Who to tell when a resource has no `owner` tag.
    pub default_contact: Option<String>,
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub mode: Mode,
    pub iam_keys: IamKeysPolicy,
    pub api_keys: ApiKeysPolicy,
    pub certs: CertsPolicy,
    pub migration: MigrationPolicy,
    pub exemptions: ExemptionsPolicy,
    pub accounts: AccountsPolicy,
    pub pacing: PacingPolicy,
    pub audit: AuditPolicy,
    pub notifications: NotificationsPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        // An empty document takes every default; this cannot fail.
        match Policy::from_toml("", "<defaults>") {
            Ok(policy) => policy,
            Err(e) => unreachable!("the built-in defaults are invalid: {e}"),
        }
    }
}

/// A policy file that cannot be used, located to the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key, e.g. `iam_keys.max_age_days` (empty when the document itself is broken).
    pub key: String,
    pub message: String,
    /// The offending line of the file, for context.
    pub source_line: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.trim().is_empty() {
            write!(f, "\n  {:>4} | {}", self.line, self.source_line)?;
        }
        Ok(())
    }
}

type Field<T> = Option<Spanned<T>>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    mode: Field<Mode>,
    #[serde(default)]
    iam_keys: RawIamKeys,
    #[serde(default)]
    api_keys: RawApiKeys,
    #[serde(default)]
    certs: RawCerts,
    #[serde(default)]
    migration: RawMigration,
    #[serde(default)]
    exemptions: RawExemptions,
    #[serde(default)]
    accounts: RawAccounts,
    #[serde(default)]
    pacing: RawPacing,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    notifications: RawNotifications,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotifications {
    sns_topic_arn: Field<String>,
    event_bus: Field<String>,
    default_contact: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIamKeys {
    max_age_days: Field<i64>,
    unused_days: Field<i64>,
    warn_days: Field<i64>,
    delete_after_days: Field<i64>,
    path_prefixes: Field<Vec<String>>,
    require_tags: Field<Tags>,
    credential_report_max_age_hours: Field<i64>,
    rotation_grace_days: Field<i64>,
    last_used_lag_hours: Field<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApiKeys {
    max_age_days: Field<i64>,
    grace_days: Field<i64>,
    recovery_days: Field<i64>,
    key_headroom: Field<i64>,
    name_prefixes: Field<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCerts {
    ladder_days: Field<Vec<i64>>,
    regions: Field<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMigration {
    enabled: Field<bool>,
    idle_days: Field<i64>,
    max_session_hours: Field<i64>,
    guard: Field<bool>,
    guard_days: Field<i64>,
    allowed_accounts: Field<Vec<String>>,
    allowed_oidc_subjects: Field<Vec<String>>,
    permissions_boundary: Field<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExemptions {
    break_glass: Field<Vec<String>>,
    max_exemption_days: Field<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    organization: Field<bool>,
    ids: Field<Vec<String>>,
    member_role_name: Field<String>,
    member_role_path: Field<String>,
    external_id: Field<String>,
    external_id_secret: Field<String>,
    concurrency: Field<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPacing {
    iam: Field<RawRate>,
    apigateway: Field<RawRate>,
    secretsmanager: Field<RawRate>,
    acm: Field<RawRate>,
    sts: Field<RawRate>,
    organizations: Field<RawRate>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRate {
    per_second: Field<i64>,
    burst: Field<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    table: Field<String>,
    state_table: Field<String>,
}

/// Locates spans in the source text.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error_at(&self, offset: usize, key: &str, message: impl Into<String>) -> PolicyError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        let source_line = self.text[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
            source_line,
        }
    }

    fn error<T>(&self, field: &Spanned<T>, key: &str, message: impl Into<String>) -> PolicyError {
        self.error_at(field.span().start, key, message)
    }

    /// A whole number within `range`, or `default` when absent.
    fn number(
        &self,
        field: &Field<i64>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
        unit: &str,
    ) -> Result<u32, PolicyError> {
        let Some(value) = field else {
            return Ok(default);
        };
        let n = *value.get_ref();
        match u32::try_from(n) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(self.error(
                value,
                key,
                format!(
                    "{n} is out of range: allowed values are {} to {} {unit}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

const DAYS: RangeInclusive<u32> = 1..=3650;

fn is_region(value: &str) -> bool {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-north-1
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| (1..=20).contains(&n))
}

fn is_role_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// An IAM path: `/`, or `/` segments `/`.
fn is_iam_path(value: &str) -> bool {
    (1..=512).contains(&value.len())
        && value.starts_with('/')
        && value.ends_with('/')
        && !value.contains("//")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+=,.@_-".contains(c))
}

/// STS's ExternalId pattern: `[\w+=,.@:\/-]{2,1224}`.
fn is_external_id(value: &str) -> bool {
    (2..=1224).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

/// A Secrets Manager secret name (`[A-Za-z0-9/_+=.@-]{1,512}`) or ARN.
fn is_secret_id(value: &str) -> bool {
    (1..=2048).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@:-".contains(c))
}

/// An event bus name (`default`, `[A-Za-z0-9._-/]{1,256}`) or an event bus ARN.
fn is_event_bus(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "events"
            && is_region(parts[2])
            && AccountId::parse(parts[3]).is_ok()
            && parts[4]
                .strip_prefix("event-bus/")
                .is_some_and(is_event_bus);
    }
    (1..=256).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

fn is_sns_topic_arn(value: &str) -> bool {
    // arn:<partition>:sns:<region>:<12-digit account>:<topic name>
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && is_region(parts[3])
        && AccountId::parse(parts[4]).is_ok()
        && (1..=256).contains(&parts[5].len())
        && parts[5]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// An entry of `[migration] allowed_oidc_subjects`: not empty, no blank, `*` only as the
/// last character and not alone.
fn is_oidc_subject_entry(value: &str) -> bool {
    let body = value.strip_suffix('*').unwrap_or(value);
    !body.is_empty() && !body.contains('*') && !value.chars().any(char::is_whitespace)
}

/// A managed policy ARN: `arn:<partition>:iam::<account or aws>:policy/<path/><name>`.
fn is_managed_policy_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws" || AccountId::parse(parts[4]).is_ok())
        && parts[5].strip_prefix("policy/").is_some_and(|rest| {
            let name = rest.rsplit('/').next().unwrap_or_default();
            (1..=128).contains(&name.len())
                && !rest.contains("//")
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/+=,.@_-".contains(c))
        })
}

fn is_table_name(value: &str) -> bool {
    (3..=255).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Policy {
    /// Parses and validates a policy document. `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Policy, PolicyError> {
        let src = Source { file, text };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let mut err = src.error_at(offset, "", e.message().trim().to_owned());
            // Name the key when the error sits on a `key = value` line.
            if let Some((key, _)) = err.source_line.split_once('=') {
                let key = key.trim();
                if !key.is_empty() && !key.starts_with('[') {
                    err.key = key.to_owned();
                }
            }
            err
        })?;

        let mode = raw.mode.map(|m| m.into_inner()).unwrap_or_default();

        let r = &raw.iam_keys;
        let max_age_days =
            src.number(&r.max_age_days, "iam_keys.max_age_days", 90, DAYS, "days")?;
        let unused_days = src.number(&r.unused_days, "iam_keys.unused_days", 45, DAYS, "days")?;
        let warn_days = src.number(&r.warn_days, "iam_keys.warn_days", 7, 0..=365, "days")?;
        let delete_after_days = src.number(
            &r.delete_after_days,
            "iam_keys.delete_after_days",
            30,
            1..=3650,
            "days",
        )?;
        let path_prefixes = match &r.path_prefixes {
            None => vec!["/".to_owned()],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(src.error(
                        list,
                        "iam_keys.path_prefixes",
                        "must list at least one IAM path such as \"/\" (every user) or \"/apps/\"",
                    ));
                }
                for p in list.get_ref() {
                    if !(p.starts_with('/') && p.ends_with('/')) {
                        return Err(src.error(
                            list,
                            "iam_keys.path_prefixes",
                            format!("{p:?} is not an IAM path: paths start and end with '/', e.g. \"/apps/\""),
                        ));
                    }
                }
                list.get_ref().clone()
            }
        };
        let require_tags = r
            .require_tags
            .as_ref()
            .map(|t| t.get_ref().clone())
            .unwrap_or_default();
        let rotation_grace_days = src.number(
            &r.rotation_grace_days,
            "iam_keys.rotation_grace_days",
            7,
            0..=365,
            "days",
        )?;
        let credential_report_max_age_hours = src.number(
            &r.credential_report_max_age_hours,
            "iam_keys.credential_report_max_age_hours",
            4,
            0..=168,
            "hours",
        )?;
        let last_used_lag_hours = src.number(
            &r.last_used_lag_hours,
            "iam_keys.last_used_lag_hours",
            4,
            1..=168,
            "hours",
        )?;
        if let Some(field) = &r.unused_days
            && unused_days > max_age_days
        {
            // An unused key would never be warned before it is rotated for age.
            return Err(src.error(
                field,
                "iam_keys.unused_days",
                format!("{unused_days} is longer than iam_keys.max_age_days ({max_age_days}): allowed values are 1 to {max_age_days} days"),
            ));
        }

        let r = &raw.api_keys;
        let api_max_age = src.number(&r.max_age_days, "api_keys.max_age_days", 90, DAYS, "days")?;
        let grace_days = src.number(&r.grace_days, "api_keys.grace_days", 7, 0..=3650, "days")?;
        let recovery_days = src.number(
            &r.recovery_days,
            "api_keys.recovery_days",
            7,
            0..=3650,
            "days",
        )?;
        let key_headroom = src.number(
            &r.key_headroom,
            "api_keys.key_headroom",
            100,
            0..=9999,
            "keys",
        )?;
        if grace_days >= api_max_age {
            let at = r.grace_days.as_ref().or(r.max_age_days.as_ref());
            let offset = at.map_or(0, |f| f.span().start);
            return Err(src.error_at(
                offset,
                "api_keys.grace_days",
                format!(
                    "{grace_days} is not shorter than api_keys.max_age_days ({api_max_age}): two rotations would overlap; allowed values are 0 to {} days",
                    api_max_age - 1
                ),
            ));
        }
        let name_prefixes = r
            .name_prefixes
            .as_ref()
            .map(|p| p.get_ref().clone())
            .unwrap_or_default();

        let r = &raw.certs;
        let ladder_days = match &r.ladder_days {
            None => vec![45, 30, 14, 7],
            Some(list) => {
                let mut out = Vec::new();
                if list.get_ref().is_empty() {
                    return Err(src.error(
                        list,
                        "certs.ladder_days",
                        "must list at least one step, e.g. [45, 30, 14, 7]",
                    ));
                }
                for &n in list.get_ref() {
                    match u32::try_from(n) {
                        Ok(v) if (1..=365).contains(&v) && !out.contains(&v) => out.push(v),
                        Ok(v) if out.contains(&v) => {
                            return Err(src.error(
                                list,
                                "certs.ladder_days",
                                format!("{v} is listed twice: each step must be distinct"),
                            ));
                        }
                        _ => {
                            return Err(src.error(
                                list,
                                "certs.ladder_days",
                                format!("{n} is out of range: allowed values are 1 to 365 days"),
                            ));
                        }
                    }
                }
                out.sort_unstable_by(|a, b| b.cmp(a));
                out
            }
        };
        let regions = match &r.regions {
            None => Vec::new(),
            Some(list) => {
                for region in list.get_ref() {
                    if !is_region(region) {
                        return Err(src.error(
                            list,
                            "certs.regions",
                            format!("{region:?} is not an AWS region name such as \"us-east-1\""),
                        ));
                    }
                }
                list.get_ref().clone()
            }
        };

        let r = &raw.migration;
        let migration = MigrationPolicy {
            enabled: r.enabled.as_ref().is_some_and(|b| *b.get_ref()),
            idle_days: src.number(&r.idle_days, "migration.idle_days", 30, DAYS, "days")?,
            max_session_hours: src.number(
                &r.max_session_hours,
                "migration.max_session_hours",
                1,
                1..=12,
                "hours",
            )?,
            guard: r.guard.as_ref().is_none_or(|b| *b.get_ref()),
            guard_days: src.number(&r.guard_days, "migration.guard_days", 7, 0..=365, "days")?,
            allowed_accounts: match &r.allowed_accounts {
                None => Vec::new(),
                Some(list) => list
                    .get_ref()
                    .iter()
                    .map(|id| {
                        AccountId::parse(id.trim()).map_err(|e| {
                            src.error(
                                list,
                                "migration.allowed_accounts",
                                format!("{e}: list 12-digit account ids, e.g. [\"123456789012\"]"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
            allowed_oidc_subjects: match &r.allowed_oidc_subjects {
                None => Vec::new(),
                Some(list) => {
                    if let Some(bad) = list.get_ref().iter().find(|e| !is_oidc_subject_entry(e)) {
                        return Err(src.error(
                            list,
                            "migration.allowed_oidc_subjects",
                            format!(
                                "{bad:?} is not an OIDC subject entry: write the exact subject (\"repo:acme/app:ref:refs/heads/main\") or a prefix ending in * (\"repo:acme/*\"); * only at the end, and never alone (it would trust every token of the provider)"
                            ),
                        ));
                    }
                    list.get_ref().clone()
                }
            },
            permissions_boundary: match &r.permissions_boundary {
                None => None,
                Some(arn) if is_managed_policy_arn(arn.get_ref()) => Some(arn.get_ref().clone()),
                Some(arn) => {
                    return Err(src.error(
                        arn,
                        "migration.permissions_boundary",
                        format!(
                            "{:?} is not a managed policy ARN: write arn:aws:iam::<12-digit account>:policy/<name> (or arn:aws:iam::aws:policy/<name>), or remove the key",
                            arn.get_ref()
                        ),
                    ));
                }
            },
        };

        let r = &raw.exemptions;
        let break_glass = match &r.break_glass {
            None => Vec::new(),
            Some(list) => {
                if list.get_ref().iter().any(|p| p.trim().is_empty()) {
                    return Err(src.error(
                        list,
                        "exemptions.break_glass",
                        "contains an empty entry: list IAM user names or ARNs",
                    ));
                }
                list.get_ref().clone()
            }
        };
        let exemptions = ExemptionsPolicy {
            break_glass,
            max_exemption_days: src.number(
                &r.max_exemption_days,
                "exemptions.max_exemption_days",
                365,
                DAYS,
                "days",
            )?,
        };

        let r = &raw.accounts;
        let mut ids = Vec::new();
        if let Some(list) = &r.ids {
            for id in list.get_ref() {
                ids.push(AccountId::parse(id).map_err(|e| {
                    src.error(
                        list,
                        "accounts.ids",
                        format!("{e}: list 12-digit account ids"),
                    )
                })?);
            }
        }
        let member_role_name = match &r.member_role_name {
            None => "KeyRotorMember".to_owned(),
            Some(name) if is_role_name(name.get_ref()) => name.get_ref().clone(),
            Some(name) => {
                return Err(src.error(
                    name,
                    "accounts.member_role_name",
                    format!(
                        "{:?} is not an IAM role name: 1 to 64 letters, digits and +=,.@_-",
                        name.get_ref()
                    ),
                ));
            }
        };
        let member_role_path = match &r.member_role_path {
            None => "/keyrotor/".to_owned(),
            Some(path) if is_iam_path(path.get_ref()) => path.get_ref().clone(),
            Some(path) => {
                return Err(src.error(
                    path,
                    "accounts.member_role_path",
                    format!(
                        "{:?} is not an IAM path: it starts and ends with '/', e.g. \"/keyrotor/\" or \"/\"",
                        path.get_ref()
                    ),
                ));
            }
        };
        let external_id = match &r.external_id {
            None => None,
            Some(id) => Some(ExternalId::parse(id.get_ref()).ok_or_else(|| {
                // Neither the message nor the quoted line shows the value: even a
                // malformed one may be a near miss of the shared secret.
                let mut err = src.error(
                    id,
                    "accounts.external_id",
                    "must be 2 to 1224 letters, digits and +=,.@:/- (the ExternalId parameter of infra/member-role.yaml)",
                );
                err.source_line = "external_id = <redacted>".into();
                err
            })?),
        };
        let external_id_secret = match &r.external_id_secret {
            None => None,
            Some(id) if !is_secret_id(id.get_ref()) => {
                return Err(src.error(
                    id,
                    "accounts.external_id_secret",
                    format!(
                        "{:?} is not a Secrets Manager secret name or ARN: 1 to 2048 letters, digits and /_+=.@:-",
                        id.get_ref()
                    ),
                ));
            }
            Some(id) if external_id.is_some() => {
                return Err(src.error(
                    id,
                    "accounts.external_id_secret",
                    "accounts.external_id and accounts.external_id_secret are both set: keep the external id in the secret and remove accounts.external_id",
                ));
            }
            Some(id) => Some(id.get_ref().clone()),
        };
        let accounts = AccountsPolicy {
            organization: r.organization.as_ref().is_some_and(|b| *b.get_ref()),
            ids,
            member_role_name,
            member_role_path,
            external_id,
            external_id_secret,
            concurrency: src.number(
                &r.concurrency,
                "accounts.concurrency",
                4,
                1..=64,
                "accounts",
            )?,
        };

        let rate =
            |field: &Field<RawRate>, service: &str, default: Rate| -> Result<Rate, PolicyError> {
                let Some(raw) = field else {
                    return Ok(default);
                };
                let raw = raw.get_ref();
                let per_second = src.number(
                    &raw.per_second,
                    &format!("pacing.{service}.per_second"),
                    default.per_second,
                    1..=10_000,
                    "calls per second",
                )?;
                let burst = src.number(
                    &raw.burst,
                    &format!("pacing.{service}.burst"),
                    default.burst,
                    1..=10_000,
                    "calls",
                )?;
                Ok(Rate { per_second, burst })
            };
        let r = &raw.pacing;
        let d = PacingPolicy::DEFAULT;
        let pacing = PacingPolicy {
            iam: rate(&r.iam, "iam", d.iam)?,
            apigateway: rate(&r.apigateway, "apigateway", d.apigateway)?,
            secretsmanager: rate(&r.secretsmanager, "secretsmanager", d.secretsmanager)?,
            acm: rate(&r.acm, "acm", d.acm)?,
            sts: rate(&r.sts, "sts", d.sts)?,
            organizations: rate(&r.organizations, "organizations", d.organizations)?,
        };

        let r = &raw.audit;
        let table_name = |field: &Field<String>, key: &str, default: &str| match field {
            None => Ok(default.to_owned()),
            Some(name) if is_table_name(name.get_ref()) => Ok(name.get_ref().clone()),
            Some(name) => Err(src.error(
                name,
                key,
                format!(
                    "{:?} is not a DynamoDB table name: 3 to 255 letters, digits and _.-",
                    name.get_ref()
                ),
            )),
        };
        let audit = AuditPolicy {
            table: table_name(&r.table, "audit.table", "keyrotor-audit")?,
            state_table: table_name(&r.state_table, "audit.state_table", "keyrotor-state")?,
        };
        if audit.table == audit.state_table {
            let offset = r.state_table.as_ref().map_or(0, |f| f.span().start);
            return Err(src.error_at(
                offset,
                "audit.state_table",
                "must differ from audit.table: the audit table is append-only",
            ));
        }

        let r = &raw.notifications;
        let sns_topic_arn = match &r.sns_topic_arn {
            Some(arn) if arn.get_ref().is_empty() => None,
            Some(arn) if is_sns_topic_arn(arn.get_ref()) => Some(arn.get_ref().clone()),
            Some(arn) => {
                return Err(src.error(
                    arn,
                    "notifications.sns_topic_arn",
                    format!(
                        "{:?} is not an SNS topic ARN such as \"arn:aws:sns:us-east-1:123456789012:keyrotor\"",
                        arn.get_ref()
                    ),
                ));
            }
            None => None,
        };
        let event_bus = match &r.event_bus {
            Some(bus) if bus.get_ref().is_empty() => None,
            Some(bus) if is_event_bus(bus.get_ref()) => Some(bus.get_ref().clone()),
            Some(bus) => {
                return Err(src.error(
                    bus,
                    "notifications.event_bus",
                    format!(
                        "{:?} is not an event bus name (\"default\", letters, digits, . _ - /) or ARN such as \"arn:aws:events:us-east-1:123456789012:event-bus/keyrotor\"",
                        bus.get_ref()
                    ),
                ));
            }
            None => None,
        };
        let notifications = NotificationsPolicy {
            sns_topic_arn,
            event_bus,
            default_contact: r
                .default_contact
                .as_ref()
                .map(|c| c.get_ref().trim().to_owned())
                .filter(|c| !c.is_empty()),
        };

        Ok(Policy {
            mode,
            iam_keys: IamKeysPolicy {
                max_age_days,
                unused_days,
                warn_days,
                delete_after_days,
                path_prefixes,
                require_tags,
                credential_report_max_age_hours,
                rotation_grace_days,
                last_used_lag_hours,
            },
            api_keys: ApiKeysPolicy {
                max_age_days: api_max_age,
                grace_days,
                recovery_days,
                key_headroom,
                name_prefixes,
            },
            certs: CertsPolicy {
                ladder_days,
                regions,
            },
            migration,
            exemptions,
            accounts,
            pacing,
            audit,
            notifications,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::from_toml(text, "keyrotor.toml")
    }

    #[test]
    fn empty_file_takes_the_audited_standards_as_defaults() {
        let p = parse("").unwrap();
        assert_eq!(p.mode, Mode::Plan);
        assert_eq!(p.iam_keys.max_age_days, 90);
        assert_eq!(p.iam_keys.unused_days, 45);
        assert_eq!(p.certs.ladder_days, vec![45, 30, 14, 7]);
        assert_eq!(p.audit.table, "keyrotor-audit");
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn example_policy_file_is_valid() {
        let text = include_str!("../../examples/keyrotor.toml");
        let p = parse(text).unwrap();
        assert_eq!(p.mode, Mode::Plan);
    }

    #[test]
    fn unknown_key_is_rejected_with_line_and_allowed_keys() {
        let err = parse("mode = \"plan\"\n[iam_keys]\nmax_age = 30\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(err.key, "max_age");
        assert!(err.message.contains("unknown field"), "{err}");
        assert!(err.message.contains("max_age_days"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected_with_line() {
        let err = parse("[iam_keys]\nmax_age_days = \"ninety\"\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(err.key, "max_age_days");
        assert!(err.to_string().starts_with("keyrotor.toml:2:"), "{err}");
    }

    #[test]
    fn event_bus_takes_a_name_or_an_arn_and_rejects_anything_else() {
        for bus in [
            "default",
            "keyrotor-events",
            "arn:aws:events:eu-west-1:123456789012:event-bus/keyrotor",
        ] {
            let p = parse(&format!("[notifications]\nevent_bus = \"{bus}\"\n")).unwrap();
            assert_eq!(p.notifications.event_bus.as_deref(), Some(bus));
        }
        assert_eq!(
            parse("[notifications]\nevent_bus = \"\"\n")
                .unwrap()
                .notifications
                .event_bus,
            None
        );
        for bad in [
            "has space",
            "arn:aws:sns:eu-west-1:123456789012:event-bus/x",
            "arn:aws:events:eu-west-1:123:event-bus/x",
        ] {
            let err = parse(&format!("[notifications]\nevent_bus = \"{bad}\"\n")).unwrap_err();
            assert_eq!(
                (err.line, err.key.as_str()),
                (2, "notifications.event_bus"),
                "{err}"
            );
            assert!(err.message.contains("event bus"), "{err}");
        }
    }

    #[test]
    fn unknown_mode_lists_allowed_values() {
        let err = parse("mode = \"yolo\"\n").unwrap_err();
        assert!(
            err.message.contains("plan") && err.message.contains("enforce"),
            "{err}"
        );
    }

    #[test]
    fn negative_days_are_rejected_with_the_allowed_range() {
        let err = parse("\n[iam_keys]\nunused_days = -5\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (3, "iam_keys.unused_days"));
        assert!(err.message.contains("1 to 3650"), "{err}");
    }

    #[test]
    fn grace_not_shorter_than_max_age_is_rejected() {
        let err = parse("[api_keys]\nmax_age_days = 30\ngrace_days = 45\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (3, "api_keys.grace_days"));
        assert!(err.message.contains("0 to 29"), "{err}");
    }

    #[test]
    fn unused_days_longer_than_max_age_is_rejected() {
        let err = parse("[iam_keys]\nmax_age_days = 30\nunused_days = 60\n").unwrap_err();
        assert_eq!(err.key, "iam_keys.unused_days");
    }

    #[test]
    fn ladder_is_sorted_and_duplicates_rejected() {
        let p = parse("[certs]\nladder_days = [7, 45, 14]\n").unwrap();
        assert_eq!(p.certs.ladder_days, vec![45, 14, 7]);
        let err = parse("[certs]\nladder_days = [7, 7]\n").unwrap_err();
        assert!(err.message.contains("twice"), "{err}");
        let err = parse("[certs]\nladder_days = [0]\n").unwrap_err();
        assert!(err.message.contains("1 to 365"), "{err}");
    }

    #[test]
    fn bad_region_path_table_and_account_are_rejected() {
        for (doc, key) in [
            ("[certs]\nregions = [\"mars-1\"]\n", "certs.regions"),
            (
                "[iam_keys]\npath_prefixes = [\"apps\"]\n",
                "iam_keys.path_prefixes",
            ),
            ("[audit]\ntable = \"a b\"\n", "audit.table"),
            (
                "[audit]\nstate_table = \"keyrotor-audit\"\n",
                "audit.state_table",
            ),
            ("[accounts]\nids = [\"12\"]\n", "accounts.ids"),
            (
                "[accounts]\nmember_role_name = \"a/b\"\n",
                "accounts.member_role_name",
            ),
            (
                "[accounts]\nmember_role_path = \"keyrotor\"\n",
                "accounts.member_role_path",
            ),
            (
                "[accounts]\nexternal_id = \"has space\"\n",
                "accounts.external_id",
            ),
        ] {
            let err = parse(doc).unwrap_err();
            assert_eq!(err.key, key, "{doc}: {err}");
            assert_eq!(err.line, 2, "{doc}: {err}");
        }
    }

    #[test]
    fn pacing_defaults_to_the_published_quotas_evenly_spaced() {
        let p = parse("").unwrap().pacing;
        assert_eq!(p, PacingPolicy::DEFAULT);
        assert_eq!((p.iam.per_second, p.iam.burst), (10, 1));
        assert_eq!(p.apigateway.per_second, 5);
        assert_eq!(p.secretsmanager.per_second, 50);
        let p = parse("[pacing]\niam = { per_second = 4, burst = 2 }\nacm = { per_second = 3 }\n")
            .unwrap()
            .pacing;
        assert_eq!((p.iam.per_second, p.iam.burst), (4, 2));
        assert_eq!((p.acm.per_second, p.acm.burst), (3, 1));
        assert_eq!(p.sts, PacingPolicy::DEFAULT.sts);
    }

    #[test]
    fn bad_pacing_names_the_service_and_the_allowed_values() {
        let err = parse("[pacing]\niam = { per_second = 0 }\n").unwrap_err();
        assert_eq!(err.key, "pacing.iam.per_second", "{err}");
        assert!(err.message.contains("1 to 10000"), "{err}");
        let err = parse("[pacing]\napigateway = { per_second = 5, burst = -1 }\n").unwrap_err();
        assert_eq!(err.key, "pacing.apigateway.burst", "{err}");
        let err = parse("[pacing]\nlambda = { per_second = 5 }\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("lambda"), "{err}");
    }

    #[test]
    fn member_role_arn_follows_the_template_path() {
        let accounts = parse("[accounts]\nids = [\"222233334444\"]\nexternal_id = \"abc-123\"\n")
            .unwrap()
            .accounts;
        assert!(accounts.is_multi_account());
        assert_eq!(
            accounts.external_id.as_ref().map(ExternalId::expose),
            Some("abc-123")
        );
        assert_eq!(
            accounts.member_role_arn("aws", &accounts.ids[0]),
            "arn:aws:iam::222233334444:role/keyrotor/KeyRotorMember"
        );
        assert!(!parse("").unwrap().accounts.is_multi_account());
    }

    #[test]
    fn the_external_id_is_never_printed_by_debug_display_toml_or_json() {
        let p = parse("[accounts]\nids = [\"222233334444\"]\nexternal_id = \"s3cr3t-ext-id\"\n")
            .unwrap();
        let shown = [
            format!("{p:?}"),
            format!("{}", p.accounts.external_id.as_ref().unwrap()),
            toml::to_string_pretty(&p).unwrap(),
            serde_json::to_string(&p).unwrap(),
        ];
        for text in &shown {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("<redacted, 13 chars>"), "{text}");
        }
        let err = parse("[accounts]\nexternal_id = \"s3cr3t with space\"\n").unwrap_err();
        assert_eq!((err.line, err.key.as_str()), (2, "accounts.external_id"));
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
    }

    #[test]
    fn external_id_secret_names_a_secret_and_excludes_an_inline_external_id() {
        let a = parse(
            "[accounts]\norganization = true\nexternal_id_secret = \"keyrotor/external-id\"\n",
        )
        .unwrap()
        .accounts;
        assert_eq!(
            a.external_id_secret.as_deref(),
            Some("keyrotor/external-id")
        );
        let arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:keyrotor/ext-AbCdEf";
        let a = parse(&format!("[accounts]\nexternal_id_secret = \"{arn}\"\n"))
            .unwrap()
            .accounts;
        assert_eq!(a.external_id_secret.as_deref(), Some(arn));

        let err = parse("[accounts]\nexternal_id_secret = \"has space\"\n").unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (2, "accounts.external_id_secret")
        );
        let err = parse(
            "[accounts]\nexternal_id = \"abc-123\"\nexternal_id_secret = \"keyrotor/external-id\"\n",
        )
        .unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (3, "accounts.external_id_secret")
        );
        assert!(
            err.message
                .contains("accounts.external_id and accounts.external_id_secret"),
            "{err}"
        );
    }

    #[test]
    fn the_environment_names_the_external_id_secret_over_the_policy() {
        let from_policy = parse("[accounts]\nexternal_id_secret = \"from-policy\"\n")
            .unwrap()
            .accounts;
        assert_eq!(
            from_policy.external_id_source(None),
            Ok(ExternalIdSource::Secret {
                id: "from-policy".into(),
                from: "[accounts] external_id_secret"
            })
        );
        assert_eq!(
            from_policy.external_id_source(Some(" from-env ")),
            Ok(ExternalIdSource::Secret {
                id: "from-env".into(),
                from: EXTERNAL_ID_SECRET_ENV
            })
        );
        // Blank counts as unset.
        assert!(matches!(
            from_policy.external_id_source(Some("  ")),
            Ok(ExternalIdSource::Secret {
                from: "[accounts] external_id_secret",
                ..
            })
        ));
        let e = from_policy
            .external_id_source(Some("bad name"))
            .unwrap_err();
        assert!(e.contains(EXTERNAL_ID_SECRET_ENV), "{e}");

        let inline = parse("[accounts]\nexternal_id = \"abc-123\"\n")
            .unwrap()
            .accounts;
        assert!(matches!(
            inline.external_id_source(None),
            Ok(ExternalIdSource::Inline(id)) if id.expose() == "abc-123"
        ));
        let e = inline.external_id_source(Some("from-env")).unwrap_err();
        assert!(
            e.contains(EXTERNAL_ID_SECRET_ENV) && e.contains("[accounts] external_id"),
            "{e}"
        );
        assert!(!e.contains("abc-123"), "{e}");
        assert_eq!(
            parse("").unwrap().accounts.external_id_source(None),
            Ok(ExternalIdSource::None)
        );
    }

    #[test]
    fn regions_accept_real_region_names() {
        for region in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
        ] {
            assert!(is_region(region), "{region}");
        }
        for region in ["us-east", "US-EAST-1", "useast1", "us-east-0"] {
            assert!(!is_region(region), "{region}");
        }
    }

    #[test]
    fn error_display_shows_file_line_key_and_source() {
        let err = parse("[iam_keys]\nwarn_days = 999\n").unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.starts_with("keyrotor.toml:2:13: iam_keys.warn_days: 999 is out of range"),
            "{shown}"
        );
        assert!(shown.contains("warn_days = 999"), "{shown}");
    }

    #[test]
    fn malformed_toml_is_rejected_not_panicked() {
        for doc in [
            "[iam_keys",
            "mode = ",
            "= 3",
            "[iam_keys]\n[iam_keys]\n",
            "\u{0}",
        ] {
            assert!(parse(doc).is_err(), "{doc:?}");
        }
    }
}
