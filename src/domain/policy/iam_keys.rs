//! `[iam_keys]`: when IAM access keys are warned, deactivated, deleted and rotated, and which
//! users are in scope.

use serde::{Deserialize, Serialize};

use super::source::{DAYS, Field, PolicyError, Source};
use crate::domain::model::Tags;

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIamKeys {
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

impl IamKeysPolicy {
    /// Checks `[iam_keys]`; an absent key takes its default (CIS 1.14 / 1.12).
    pub(super) fn decode(r: &RawIamKeys, src: &Source<'_>) -> Result<IamKeysPolicy, PolicyError> {
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
        Ok(IamKeysPolicy {
            max_age_days,
            unused_days,
            warn_days,
            delete_after_days,
            path_prefixes,
            require_tags,
            credential_report_max_age_hours,
            rotation_grace_days,
            last_used_lag_hours,
        })
    }
}
