//! EventBridge schedule expressions: `cron(min hour day-of-month month day-of-week year)` and
//! `rate(n unit)`, validated with AWS's rules and evaluated with the `cron` crate (after
//! translation: a seconds field is added; `L`, `W` and `#`, which the crate does not know,
//! are evaluated here on top of its schedule).

use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

/// The schedule the SAM template uses by default.
pub const DEFAULT_SCHEDULE: &str = "cron(0 6 * * ? *)";

/// A day rule the `cron` crate cannot express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayRule {
    /// `L` in day-of-month: the last day of the month.
    LastDay,
    /// `LW`: the last weekday (Monday to Friday) of the month.
    LastWeekday,
    /// `15W`: the weekday nearest the 15th, within the month.
    NearestWeekday(u32),
    /// `6L` in day-of-week: the last Friday of the month (1 = Sunday).
    LastOfWeekday(u32),
    /// `3#2`: the second Tuesday of the month.
    NthWeekday(u32, u32),
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct EventSchedule {
    /// The expression as EventBridge takes it, e.g. `cron(0 6 * * ? *)`.
    pub expression: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Rate(Duration),
    Cron {
        schedule: Box<cron::Schedule>,
        day: Option<DayRule>,
    },
}

fn weekday_number(name: &str) -> Option<u32> {
    let n = match name.to_ascii_uppercase().as_str() {
        "SUN" => 1,
        "MON" => 2,
        "TUE" => 3,
        "WED" => 4,
        "THU" => 5,
        "FRI" => 6,
        "SAT" => 7,
        other => other.parse().ok().filter(|n| (1..=7).contains(n))?,
    };
    Some(n)
}

fn day_rule(field: &str, value: &str) -> Result<Option<DayRule>, String> {
    let bad = |why: &str| Err(format!("{field} {value:?}: {why}"));
    if field == "day-of-month" {
        if value == "L" {
            return Ok(Some(DayRule::LastDay));
        }
        if value == "LW" {
            return Ok(Some(DayRule::LastWeekday));
        }
        if let Some(n) = value.strip_suffix('W') {
            return match n.parse::<u32>() {
                Ok(n) if (1..=31).contains(&n) => Ok(Some(DayRule::NearestWeekday(n))),
                _ => bad("W needs a day of the month 1-31 before it, e.g. 15W"),
            };
        }
        if value.contains('L') || value.contains('W') || value.contains('#') {
            return bad("L, LW and nW are the only special forms of day-of-month");
        }
        return Ok(None);
    }
    if let Some(day) = value.strip_suffix('L') {
        return match weekday_number(day) {
            Some(d) => Ok(Some(DayRule::LastOfWeekday(d))),
            None => bad("L needs a day of the week before it, e.g. 6L or FRIL"),
        };
    }
    if let Some((day, nth)) = value.split_once('#') {
        return match (weekday_number(day), nth.parse::<u32>()) {
            (Some(d), Ok(n)) if (1..=5).contains(&n) => Ok(Some(DayRule::NthWeekday(d, n))),
            _ => bad("# needs a day of the week and an occurrence 1-5, e.g. 3#2"),
        };
    }
    if value.to_ascii_uppercase().contains('L') {
        // No day name contains an L: this one is misplaced.
        return bad("L must follow a day of the week, e.g. 6L");
    }
    Ok(None)
}

fn last_day(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl DayRule {
    fn matches(self, d: NaiveDate) -> bool {
        let last = last_day(d.year(), d.month());
        let from_sunday = d.weekday().number_from_sunday();
        match self {
            DayRule::LastDay => d.day() == last,
            DayRule::LastWeekday => {
                let mut day = last;
                while let Some(c) = NaiveDate::from_ymd_opt(d.year(), d.month(), day) {
                    if !is_weekend(c) {
                        break;
                    }
                    day -= 1;
                }
                d.day() == day
            }
            DayRule::NearestWeekday(n) => {
                let Some(target) = NaiveDate::from_ymd_opt(d.year(), d.month(), n.min(last)) else {
                    return false;
                };
                let nearest = match target.weekday() {
                    Weekday::Sat if target.day() == 1 => target + Duration::days(2),
                    Weekday::Sat => target - Duration::days(1),
                    Weekday::Sun if target.day() == last => target - Duration::days(2),
                    Weekday::Sun => target + Duration::days(1),
                    _ => target,
                };
                d == nearest
            }
            DayRule::LastOfWeekday(w) => from_sunday == w && d.day() + 7 > last,
            DayRule::NthWeekday(w, n) => from_sunday == w && (d.day() - 1) / 7 + 1 == n,
        }
    }
}

impl EventSchedule {
    /// Parses `cron(...)`, `rate(...)` or the six bare cron fields; the error names the
    /// field and the rule.
    pub fn parse(text: &str) -> Result<EventSchedule, String> {
        let text = text.trim();
        if let Some(inner) = text.strip_prefix("rate(").and_then(|t| t.strip_suffix(')')) {
            return Self::rate(inner.trim());
        }
        let inner = text
            .strip_prefix("cron(")
            .and_then(|t| t.strip_suffix(')'))
            .unwrap_or(text)
            .trim();
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minute, hour, dom, month, dow, year] = fields[..] else {
            return Err(format!(
                "{inner:?} has {} fields; EventBridge cron takes 6: minutes hours day-of-month month day-of-week year, e.g. cron(0 6 * * ? *)",
                fields.len()
            ));
        };
        for (name, value) in [
            ("minutes", minute),
            ("hours", hour),
            ("month", month),
            ("year", year),
        ] {
            if value.contains('?') {
                return Err(format!(
                    "{name} {value:?}: ? is allowed in day-of-month or day-of-week only"
                ));
            }
        }
        match (dom == "?", dow == "?") {
            (true, true) => {
                return Err(
                    "day-of-month and day-of-week are both ?: one of them must say which days"
                        .into(),
                );
            }
            (false, false) => {
                return Err(format!(
                    "day-of-month {dom:?} and day-of-week {dow:?}: EventBridge needs ? in one of them"
                ));
            }
            _ => {}
        }
        let day = match (
            day_rule("day-of-month", dom)?,
            day_rule("day-of-week", dow)?,
        ) {
            (Some(r), _) | (None, Some(r)) => Some(r),
            (None, None) => None,
        };
        let (crate_dom, crate_dow) = match day {
            Some(_) => ("*", "*"),
            None => (dom, dow),
        };
        let expression = format!("0 {minute} {hour} {crate_dom} {month} {crate_dow} {year}");
        let schedule =
            cron::Schedule::from_str(&expression).map_err(|e| format!("cron({inner}): {e}"))?;
        Ok(EventSchedule {
            expression: format!("cron({})", fields.join(" ")),
            kind: Kind::Cron {
                schedule: Box::new(schedule),
                day,
            },
        })
    }

    fn rate(inner: &str) -> Result<EventSchedule, String> {
        let bad = || {
            Err(format!(
                "rate({inner}): expected rate(<n> minute|minutes|hour|hours|day|days) with n >= 1 (singular for 1)"
            ))
        };
        let Some((n, unit)) = inner.split_once(' ') else {
            return bad();
        };
        let Ok(n) = n.parse::<i64>() else {
            return bad();
        };
        let step = match (n, unit.trim()) {
            (1, "minute") | (2.., "minutes") => Duration::try_minutes(n),
            (1, "hour") | (2.., "hours") => Duration::try_hours(n),
            (1, "day") | (2.., "days") => Duration::try_days(n),
            _ => None,
        };
        match step {
            Some(step) => Ok(EventSchedule {
                expression: format!("rate({inner})"),
                kind: Kind::Rate(step),
            }),
            None => bad(),
        }
    }

    /// The next `n` times the schedule fires after `after` (UTC, as EventBridge evaluates).
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        match &self.kind {
            // A rate so long that its next times lie past chrono's range ends the list
            // there (found by the fuzzer: `rate(2888888888 hours)`).
            Kind::Rate(step) => (1..=i32::try_from(n).unwrap_or(i32::MAX))
                .map_while(|i| {
                    step.checked_mul(i)
                        .and_then(|d| after.checked_add_signed(d))
                })
                .collect(),
            Kind::Cron { schedule, day } => schedule
                .after(&after)
                .filter(|t| day.is_none_or(|rule| rule.matches(t.date_naive())))
                .take(n)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_rate_beyond_chronos_range_lists_what_fits_and_never_panics() {
        let after = Utc.with_ymd_and_hms(2026, 12, 4, 0, 0, 0).unwrap();
        let s = EventSchedule::parse("rate(2888888888 hours)").unwrap();
        let times = s.upcoming(after, 5);
        assert!(times.len() < 5, "{times:?}");
        assert!(times.iter().all(|t| *t > after));
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn next(expr: &str, n: usize) -> Vec<String> {
        EventSchedule::parse(expr)
            .unwrap()
            .upcoming(t0(), n)
            .iter()
            .map(|t| t.format("%Y-%m-%d %H:%M %a").to_string())
            .collect()
    }

    #[test]
    fn daily_weekly_and_rate_schedules() {
        assert_eq!(
            next(DEFAULT_SCHEDULE, 2),
            ["2026-11-26 06:00 Thu", "2026-11-27 06:00 Fri"]
        );
        assert_eq!(
            next("cron(15 10 ? * MON-FRI *)", 2),
            ["2026-11-26 10:15 Thu", "2026-11-27 10:15 Fri"]
        );
        assert_eq!(
            next("rate(6 hours)", 2),
            ["2026-11-25 18:00 Wed", "2026-11-26 00:00 Thu"]
        );
    }

    #[test]
    fn l_w_and_hash_are_evaluated() {
        assert_eq!(
            next("cron(0 6 L * ? *)", 2),
            ["2026-11-30 06:00 Mon", "2026-12-31 06:00 Thu"]
        );
        // The last weekday of January 2027 is Friday the 29th (the 31st is a Sunday).
        assert_eq!(next("cron(0 6 LW * ? *)", 3)[2], "2027-01-29 06:00 Fri");
        // 15 November 2026 is a Sunday: the nearest weekday is Monday the 16th; December
        // 15th is a Tuesday.
        assert_eq!(next("cron(0 6 15W * ? *)", 1), ["2026-12-15 06:00 Tue"]);
        // The second Tuesday of December 2026 is the 8th; the last Friday is the 25th.
        assert_eq!(next("cron(0 6 ? * 3#2 *)", 1), ["2026-12-08 06:00 Tue"]);
        assert_eq!(next("cron(0 6 ? * 6L *)", 1), ["2026-11-27 06:00 Fri"]);
    }

    #[test]
    fn aws_rules_are_enforced_with_the_field_named() {
        for (bad, says) in [
            ("cron(0 6 * * *)", "5 fields"),
            ("cron(0 6 * * * *)", "needs ? in one of them"),
            ("cron(0 6 ? * ? *)", "both ?"),
            ("cron(? 6 * * ? *)", "minutes"),
            ("cron(0 25 * * ? *)", "cron(0 25"),
            ("cron(0 6 32W * ? *)", "day-of-month"),
            ("cron(0 6 ? * 3#9 *)", "day-of-week"),
            ("rate(1 hours)", "singular"),
            ("rate(0 minutes)", "n >= 1"),
        ] {
            let e = EventSchedule::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let past = EventSchedule::parse("cron(0 6 * * ? 2001)").unwrap();
        assert!(
            past.upcoming(t0(), 1).is_empty(),
            "a schedule in the past never fires"
        );
    }
}
