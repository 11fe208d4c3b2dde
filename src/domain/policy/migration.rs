//! `[migration]`: moving IAM users to roles, and whom a migrated role may trust without
//! `--allow-external`.

use serde::{Deserialize, Serialize};

use super::source::{DAYS, Field, PolicyError, Source};
use super::validate::{is_managed_policy_arn, is_oidc_subject_entry};
use crate::domain::model::AccountId;

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMigration {
    enabled: Field<bool>,
    idle_days: Field<i64>,
    max_session_hours: Field<i64>,
    guard: Field<bool>,
    guard_days: Field<i64>,
    allowed_accounts: Field<Vec<String>>,
    allowed_oidc_subjects: Field<Vec<String>>,
    permissions_boundary: Field<String>,
}

impl MigrationPolicy {
    /// Checks `[migration]`: the allow-lists are what keeps a migrated role from trusting
    /// a stranger, so every entry must be exact (or a prefix with a trailing `*`).
    pub(super) fn decode(
        r: &RawMigration,
        src: &Source<'_>,
    ) -> Result<MigrationPolicy, PolicyError> {
        Ok(MigrationPolicy {
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
        })
    }
}
