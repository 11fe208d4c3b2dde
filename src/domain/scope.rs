//! Who keyrotor may touch: exemptions, the root user, break-glass principals and selectors.
//!
//! Safety invariant 3: anything excluded here is never acted on. Exclusion is decided before
//! any threshold is looked at, and the planner consults nothing else to decide scope.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

use super::model::{IamUser, TAG_EXEMPT, Tags};
use super::policy::Policy;

/// Why a principal or resource is left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Exclusion {
    /// The account's root user.
    RootUser,
    /// Listed in `[exemptions] break_glass`.
    BreakGlass,
    /// Tagged `keyrotor:exempt` with an expiry still ahead.
    Exempt {
        until: DateTime<Utc>,
        /// The exemption runs longer than `max_exemption_days`.
        too_long: bool,
    },
    /// Tagged `keyrotor:exempt` with a value that is not a date: left alone until fixed.
    ExemptionUnreadable { value: String },
    /// Outside the configured selectors.
    OutOfScope { why: String },
}

impl Exclusion {
    /// Machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Exclusion::RootUser => "root-user",
            Exclusion::BreakGlass => "break-glass",
            Exclusion::Exempt { .. } => "exempt",
            Exclusion::ExemptionUnreadable { .. } => "exemption-unreadable",
            Exclusion::OutOfScope { .. } => "out-of-scope",
        }
    }

    /// Human-readable explanation.
    pub fn detail(&self) -> String {
        match self {
            Exclusion::RootUser => {
                "the root user is never touched by keyrotor; remove root access keys by hand".into()
            }
            Exclusion::BreakGlass => "listed in [exemptions] break_glass".into(),
            Exclusion::Exempt { until, too_long } => {
                let mut s = format!(
                    "tag {TAG_EXEMPT} exempts it until {}",
                    until.format("%Y-%m-%d")
                );
                if *too_long {
                    s.push_str(" (longer than [exemptions] max_exemption_days: shorten it)");
                }
                s
            }
            Exclusion::ExemptionUnreadable { value } => format!(
                "tag {TAG_EXEMPT} = {value:?} is not a date (YYYY-MM-DD); left alone until it is fixed"
            ),
            Exclusion::OutOfScope { why } => why.clone(),
        }
    }
}

/// Reads an exemption tag value: `YYYY-MM-DD` (exempt through the end of that day, UTC) or
/// an RFC 3339 time.
pub fn parse_exemption(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return date
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The exemption carried by a resource's tags, if it is still in force at `now`. An expired
/// exemption no longer counts.
pub fn exemption(tags: &Tags, now: DateTime<Utc>, policy: &Policy) -> Option<Exclusion> {
    let value = tags.get(TAG_EXEMPT)?;
    match parse_exemption(value) {
        None => Some(Exclusion::ExemptionUnreadable {
            value: value.clone(),
        }),
        Some(until) if until > now => Some(Exclusion::Exempt {
            until,
            too_long: until - now > Duration::days(i64::from(policy.exemptions.max_exemption_days)),
        }),
        Some(_) => None,
    }
}

/// Whether IAM user `user` is excluded from all work at `now`, and why: the one scope check
/// of IAM users, used by every entry point (planner, IAM key sweep, rotation hook,
/// migrations). A step acting on a user by name reads the user first (its path and tags
/// as IAM has them now) and asks this.
pub fn iam_user_exclusion(
    user: &IamUser,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<Exclusion> {
    if user.is_root {
        return Some(Exclusion::RootUser);
    }
    if policy
        .exemptions
        .break_glass
        .iter()
        .any(|p| p == &user.name || p == &user.arn)
    {
        return Some(Exclusion::BreakGlass);
    }
    if let Some(e) = exemption(&user.tags, now, policy) {
        return Some(e);
    }
    let selectors = &policy.iam_keys;
    if !selectors
        .path_prefixes
        .iter()
        .any(|p| user.path.starts_with(p.as_str()))
    {
        return Some(Exclusion::OutOfScope {
            why: format!(
                "path {} is outside [iam_keys] path_prefixes {:?}",
                user.path, selectors.path_prefixes
            ),
        });
    }
    for (key, value) in &selectors.require_tags {
        if user.tags.get(key) != Some(value) {
            return Some(Exclusion::OutOfScope {
                why: format!("lacks tag {key} = {value:?} required by [iam_keys] require_tags"),
            });
        }
    }
    None
}

/// Whether API key `name` (tagged `tags`) is excluded at `now`, and why: the one scope check
/// of API keys (exemption, `[api_keys] name_prefixes`), used by the planner, every rotation
/// step that retires or deletes a key, and the rotation hook.
pub fn api_key_exclusion(
    name: &str,
    tags: &Tags,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<Exclusion> {
    if let Some(e) = exemption(tags, now, policy) {
        return Some(e);
    }
    let prefixes = &policy.api_keys.name_prefixes;
    if !prefixes.is_empty() && !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
        return Some(Exclusion::OutOfScope {
            why: format!("name {name} is outside [api_keys] name_prefixes {prefixes:?}"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn tags(value: &str) -> Tags {
        Tags::from([(TAG_EXEMPT.to_owned(), value.to_owned())])
    }

    #[test]
    fn exemption_date_counts_through_the_end_of_that_day() {
        let p = Policy::default();
        assert!(matches!(
            exemption(&tags("2026-11-25"), now(), &p),
            Some(Exclusion::Exempt { .. })
        ));
        assert_eq!(exemption(&tags("2026-11-24"), now(), &p), None);
    }

    #[test]
    fn expired_exemption_no_longer_counts() {
        assert_eq!(
            exemption(&tags("2020-01-01"), now(), &Policy::default()),
            None
        );
    }

    #[test]
    fn unreadable_exemption_leaves_the_resource_alone() {
        let e = exemption(&tags("forever"), now(), &Policy::default()).unwrap();
        assert_eq!(e.code(), "exemption-unreadable");
    }

    #[test]
    fn overlong_exemption_is_flagged() {
        let e = exemption(&tags("2030-01-01"), now(), &Policy::default()).unwrap();
        assert!(matches!(e, Exclusion::Exempt { too_long: true, .. }));
        assert!(e.detail().contains("max_exemption_days"));
    }

    #[test]
    fn rfc3339_exemption_is_read() {
        let until = parse_exemption("2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(until, Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap());
    }
}
