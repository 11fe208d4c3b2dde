//! `[api_keys]`: when managed API Gateway keys are rotated, how long old and new overlap,
//! and which keys are in scope.

use serde::{Deserialize, Serialize};

use super::source::{DAYS, Field, PolicyError, Source};

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApiKeys {
    max_age_days: Field<i64>,
    grace_days: Field<i64>,
    recovery_days: Field<i64>,
    key_headroom: Field<i64>,
    name_prefixes: Field<Vec<String>>,
}

impl ApiKeysPolicy {
    /// Checks `[api_keys]`: the grace period must end before the next rotation is due.
    pub(super) fn decode(r: &RawApiKeys, src: &Source<'_>) -> Result<ApiKeysPolicy, PolicyError> {
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

        Ok(ApiKeysPolicy {
            max_age_days: api_max_age,
            grace_days,
            recovery_days,
            key_headroom,
            name_prefixes,
        })
    }
}
