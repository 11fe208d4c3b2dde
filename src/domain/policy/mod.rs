//! The policy file (`keyrotor.toml`): thresholds, selectors, exemptions and tables.
//!
//! Parsing is two-layered: serde reads a raw, span-carrying document (unknown keys and
//! wrong types fail there, with their line), then [`Policy::from_toml`] checks every value
//! and produces a [`Policy`] whose fields are already valid. Every error names the file,
//! line, key and the values that are allowed. Defaults come from the standards users are
//! audited against: CIS AWS Foundations 1.12 / Security Hub IAM.22 (credentials unused for
//! 45 days), CIS 1.14 / IAM.3 (access keys rotated every 90 days).
//!
//! One file per section of the document: it holds the validated section, its raw (serde)
//! form and the check that turns one into the other. A new section (a new credential kind)
//! is a new file here, a field in [`Policy`] and one line in [`Policy::from_toml`].
//! `source` locates errors in the text; `validate` knows the shapes of AWS names.

use std::fmt;

use serde::{Deserialize, Serialize};

mod accounts;
mod api_keys;
mod audit;
mod certs;
mod exemptions;
mod iam_keys;
mod migration;
mod notifications;
mod pacing;
mod source;
#[cfg(test)]
mod tests;
mod validate;

pub use accounts::{AccountsPolicy, EXTERNAL_ID_SECRET_ENV, ExternalId, ExternalIdSource};
pub use api_keys::ApiKeysPolicy;
pub use audit::AuditPolicy;
pub use certs::CertsPolicy;
pub use exemptions::ExemptionsPolicy;
pub use iam_keys::IamKeysPolicy;
pub use migration::MigrationPolicy;
pub use notifications::NotificationsPolicy;
pub use pacing::{PacingPolicy, Rate};

pub use source::PolicyError;

use source::{Field, Source};

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    mode: Field<Mode>,
    #[serde(default)]
    iam_keys: iam_keys::RawIamKeys,
    #[serde(default)]
    api_keys: api_keys::RawApiKeys,
    #[serde(default)]
    certs: certs::RawCerts,
    #[serde(default)]
    migration: migration::RawMigration,
    #[serde(default)]
    exemptions: exemptions::RawExemptions,
    #[serde(default)]
    accounts: accounts::RawAccounts,
    #[serde(default)]
    pacing: pacing::RawPacing,
    #[serde(default)]
    audit: audit::RawAudit,
    #[serde(default)]
    notifications: notifications::RawNotifications,
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

        // Sections are checked in the order of `Policy`'s fields; the first error is the one
        // reported, as it always was.
        Ok(Policy {
            mode,
            iam_keys: IamKeysPolicy::decode(&raw.iam_keys, &src)?,
            api_keys: ApiKeysPolicy::decode(&raw.api_keys, &src)?,
            certs: CertsPolicy::decode(&raw.certs, &src)?,
            migration: MigrationPolicy::decode(&raw.migration, &src)?,
            exemptions: ExemptionsPolicy::decode(&raw.exemptions, &src)?,
            accounts: AccountsPolicy::decode(&raw.accounts, &src)?,
            pacing: PacingPolicy::decode(&raw.pacing, &src)?,
            audit: AuditPolicy::decode(&raw.audit, &src)?,
            notifications: NotificationsPolicy::decode(&raw.notifications, &src)?,
        })
    }
}
