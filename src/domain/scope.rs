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
    /// Tagged `keyrotor:exempt` with an expiry still ahead and within
    /// `[exemptions] max_exemption_days`.
    Exempt { until: DateTime<Utc> },
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
            Exclusion::Exempt { until } => format!(
                "tag {TAG_EXEMPT} exempts it until {}",
                until.format("%Y-%m-%d")
            ),
            Exclusion::OutOfScope { why } => why.clone(),
        }
    }
}

/// An exemption tag keyrotor does not honour: the resource stays in scope, and a person
/// should hear about it (the plan lists it under its notices).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum ExemptionProblem {
    /// The value is not a date. Reading it as "exempt" would let any unparsable value
    /// exempt a resource for ever.
    Unreadable { value: String },
    /// The expiry lies further ahead than `[exemptions] max_exemption_days`: an exemption
    /// is renewed deliberately, never granted indefinitely by one far-future date.
    TooLong {
        value: String,
        /// The latest expiry honoured today.
        latest: DateTime<Utc>,
        max_days: u32,
    },
}

impl ExemptionProblem {
    /// Machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ExemptionProblem::Unreadable { .. } => "exemption-unreadable",
            ExemptionProblem::TooLong { .. } => "exemption-too-long",
        }
    }

    /// Human-readable explanation, with the fix.
    pub fn detail(&self) -> String {
        match self {
            ExemptionProblem::Unreadable { value } => format!(
                "tag {TAG_EXEMPT} = '{value}' is not a date (YYYY-MM-DD); the resource is in scope"
            ),
            ExemptionProblem::TooLong {
                value,
                latest,
                max_days,
            } => format!(
                "tag {TAG_EXEMPT} = '{value}' lies more than [exemptions] max_exemption_days ({max_days}) ahead, so it is not honoured and the resource is in scope; set a date on or before {}",
                // `latest` is the midnight that ends the last day allowed.
                (*latest - Duration::days(1)).format("%Y-%m-%d")
            ),
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

/// What a resource's exemption tag amounts to at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reading {
    /// No tag, or an expired one: it no longer counts.
    None,
    /// In force until then.
    InForce(DateTime<Utc>),
    /// Not honoured, and worth reporting.
    Problem(ExemptionProblem),
}

/// The one reading of `keyrotor:exempt`. An exemption counts until its expiry, and only when
/// that expiry is no later than the end of the day `max_exemption_days` from `now`; a later
/// one, or a value that is not a date, does not count at all.
fn read_exemption(tags: &Tags, now: DateTime<Utc>, policy: &Policy) -> Reading {
    let Some(value) = tags.get(TAG_EXEMPT) else {
        return Reading::None;
    };
    let Some(until) = parse_exemption(value) else {
        return Reading::Problem(ExemptionProblem::Unreadable {
            value: value.clone(),
        });
    };
    if until <= now {
        return Reading::None;
    }
    let max_days = policy.exemptions.max_exemption_days;
    let latest = (now + Duration::days(i64::from(max_days)))
        .date_naive()
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(now, |t| t.and_utc());
    if until > latest {
        return Reading::Problem(ExemptionProblem::TooLong {
            value: value.clone(),
            latest,
            max_days,
        });
    }
    Reading::InForce(until)
}

/// The exemption carried by a resource's tags, if it is in force at `now`. An expired
/// exemption, one that runs past `max_exemption_days`, and an unreadable one do not count
/// (see [`exemption_problem`] for the last two).
pub fn exemption(tags: &Tags, now: DateTime<Utc>, policy: &Policy) -> Option<Exclusion> {
    match read_exemption(tags, now, policy) {
        Reading::InForce(until) => Some(Exclusion::Exempt { until }),
        Reading::None | Reading::Problem(_) => None,
    }
}

/// The exemption tag of a resource that keyrotor does not honour at `now`, if any: an
/// unreadable value or an expiry past `max_exemption_days`. The resource is in scope (as
/// far as its exemption goes), and the planner reports this.
pub fn exemption_problem(
    tags: &Tags,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<ExemptionProblem> {
    match read_exemption(tags, now, policy) {
        Reading::Problem(p) => Some(p),
        Reading::None | Reading::InForce(_) => None,
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
    fn unreadable_exemption_does_not_exempt_and_is_reported() {
        let p = Policy::default();
        assert_eq!(exemption(&tags("forever"), now(), &p), None);
        let problem = exemption_problem(&tags("forever"), now(), &p).unwrap();
        assert_eq!(problem.code(), "exemption-unreadable");
        assert_eq!(
            problem.detail(),
            "tag keyrotor:exempt = 'forever' is not a date (YYYY-MM-DD); the resource is in scope"
        );
    }

    fn user(value: &str) -> IamUser {
        IamUser {
            name: "app".into(),
            arn: "arn:aws:iam::123456789012:user/app".into(),
            path: "/".into(),
            created: now(),
            tags: tags(value),
            keys: vec![],
            is_root: false,
        }
    }

    #[test]
    fn an_unreadable_exemption_leaves_users_and_api_keys_in_scope() {
        let p = Policy::default();
        assert_eq!(
            iam_user_exclusion(&user("until further notice"), now(), &p),
            None
        );
        assert_eq!(
            api_key_exclusion("svc", &tags("2026-13-01"), now(), &p),
            None
        );
    }

    #[test]
    fn exemption_up_to_max_exemption_days_counts_in_full() {
        // Default max_exemption_days = 365: the last day allowed is 2027-11-25.
        let p = Policy::default();
        let e = exemption(&tags("2027-11-25"), now(), &p).unwrap();
        assert_eq!(
            e,
            Exclusion::Exempt {
                until: Utc.with_ymd_and_hms(2027, 11, 26, 0, 0, 0).unwrap()
            }
        );
        assert_eq!(exemption_problem(&tags("2027-11-25"), now(), &p), None);
    }

    #[test]
    fn exemption_past_max_exemption_days_does_not_count_and_is_reported() {
        let p = Policy::default();
        for value in ["2027-11-26", "2099-01-01", "9999-12-31"] {
            assert_eq!(exemption(&tags(value), now(), &p), None, "{value}");
            let problem = exemption_problem(&tags(value), now(), &p).unwrap();
            assert_eq!(problem.code(), "exemption-too-long", "{value}");
            let detail = problem.detail();
            assert!(
                detail.contains("max_exemption_days (365)")
                    && detail.contains("on or before 2027-11-25")
                    && detail.contains("in scope"),
                "{detail}"
            );
        }
    }

    #[test]
    fn a_far_future_exemption_never_keeps_a_resource_out_of_scope() {
        // The bound moves with `now`, so a far-future date must not count at any time before
        // it comes within reach: one tag cannot exempt a resource for years.
        let p = Policy::from_toml("[exemptions]\nmax_exemption_days = 30\n", "t").unwrap();
        let far = tags("2099-01-01");
        for days in [0, 1, 30, 31, 365, 3650] {
            let at = now() + Duration::days(days);
            assert_eq!(exemption(&far, at, &p), None, "{at}");
        }
        // Once it is within reach it is an ordinary exemption, then it lapses.
        let near = Utc.with_ymd_and_hms(2098, 12, 15, 0, 0, 0).unwrap();
        assert!(exemption(&far, near, &p).is_some());
        let after = Utc.with_ymd_and_hms(2099, 1, 2, 0, 0, 0).unwrap();
        assert_eq!(exemption(&far, after, &p), None);
        assert_eq!(exemption_problem(&far, after, &p), None);
    }

    #[test]
    fn an_overlong_exemption_leaves_users_in_scope_and_a_short_one_does_not() {
        let p = Policy::from_toml("[exemptions]\nmax_exemption_days = 30\n", "t").unwrap();
        assert_eq!(iam_user_exclusion(&user("2027-01-01"), now(), &p), None);
        assert!(matches!(
            iam_user_exclusion(&user("2026-12-20"), now(), &p),
            Some(Exclusion::Exempt { .. })
        ));
    }

    #[test]
    fn rfc3339_exemption_is_read() {
        let until = parse_exemption("2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(until, Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap());
    }
}
