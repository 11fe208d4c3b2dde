use chrono::{Duration, TimeZone};
use proptest::prelude::*;

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, 0).unwrap()
}

fn event(i: i64, name: &str, read_only: Option<bool>) -> ActivityEvent {
    ActivityEvent {
        id: format!("ev-{i}"),
        name: name.to_owned(),
        source: "iam.amazonaws.com".to_owned(),
        time: t0() + Duration::minutes(i),
        region: "us-east-1".to_owned(),
        read_only,
        source_ip: Some("198.51.100.7".to_owned()),
        user_agent: Some("aws-cli/2.15.0".to_owned()),
        error_code: None,
        user: Some("ci".to_owned()),
    }
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    (t0() - Duration::days(90), t0() + Duration::days(1))
}

#[test]
fn no_events_say_so_with_the_window() {
    let (since, until) = window();
    let s = summarize(&[], since, until, false);
    assert_eq!(s.event_count, 0);
    assert_eq!(s.first_use, None);
    assert_eq!(
        s.headline(),
        "no calls between 2026-08-22 08:00 UTC and 2026-11-21 08:00 UTC"
    );
    assert_eq!(s.describe(), s.headline());
}

#[test]
fn headline_counts_calls_ips_regions_and_names_the_check_first_changes() {
    // GIVEN reads from two IPs in two regions, one CreateUser and one other change
    let mut events = vec![
        event(0, "ListUsers", Some(true)),
        event(1, "GetCallerIdentity", Some(true)),
        event(2, "CreateUser", Some(false)),
        event(3, "TagUser", Some(false)),
    ];
    events[1].source_ip = Some("203.0.113.9".to_owned());
    events[3].region = "eu-west-1".to_owned();
    let (since, until) = window();

    // WHEN summarised
    let s = summarize(&events, since, until, false);

    // THEN the headline says it in one line
    assert_eq!(
        s.headline(),
        "4 calls from 2 IPs in 2 regions, 2 changes including CreateUser; \
         first 2026-11-20 08:00 UTC, last 2026-11-20 08:03 UTC"
    );
    assert_eq!(s.regions.get("us-east-1"), Some(&3));
    assert_eq!(s.regions.get("eu-west-1"), Some(&1));
}

#[test]
fn calls_without_a_source_ip_say_so() {
    let mut events = vec![event(0, "ListUsers", Some(true))];
    events[0].source_ip = None;
    let (since, until) = window();
    let s = summarize(&events, since, until, false);
    assert!(
        s.headline()
            .starts_with("1 call from unknown IPs in 1 region, 0 changes;"),
        "{}",
        s.headline()
    );
    assert_eq!(s.source_ips.unknown, 1);
}

#[test]
fn a_truncated_lookup_is_reported_as_a_lower_bound() {
    let (since, until) = window();
    let s = summarize(&[event(0, "ListUsers", Some(true))], since, until, true);
    assert!(s.limit_reached);
    assert!(
        s.headline().starts_with("at least 1 call from 1 IP"),
        "{}",
        s.headline()
    );
}

#[test]
fn check_first_changes_come_first_successes_before_failures() {
    // GIVEN an ordinary change, a denied CreateAccessKey and a successful AttachUserPolicy
    let mut events = vec![
        event(0, "TagUser", Some(false)),
        event(1, "CreateAccessKey", Some(false)),
        event(2, "AttachUserPolicy", Some(false)),
    ];
    events[1].error_code = Some("AccessDenied".to_owned());
    let (since, until) = window();

    // WHEN summarised
    let s = summarize(&events, since, until, false);

    // THEN the successful check-first change leads, then the failed one, then the rest
    let names: Vec<&str> = s.changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["AttachUserPolicy", "CreateAccessKey", "TagUser"]);
    assert_eq!(s.check_first_count, 2);
    assert_eq!(s.failed_calls, 1);
}

#[test]
fn calls_not_known_to_be_read_only_count_as_changes() {
    // GIVEN a call CloudTrail marks neither way (ConsoleLogin has no readOnly)
    let events = [
        event(0, "ConsoleLogin", None),
        event(1, "ListUsers", Some(true)),
    ];
    let (since, until) = window();
    let s = summarize(&events, since, until, false);
    assert_eq!(s.change_count, 1);
    assert_eq!(s.changes[0].name, "ConsoleLogin");
}

#[test]
fn read_only_calls_that_outlive_the_key_are_still_listed() {
    // GIVEN a session token made from the key: read-only for CloudTrail, alive after it
    let events = [event(0, "GetSessionToken", Some(true))];
    let (since, until) = window();
    let s = summarize(&events, since, until, false);
    assert_eq!(s.change_count, 1);
    assert!(s.changes[0].check_first);
}

#[test]
fn versioned_lambda_event_names_match_the_check_first_list() {
    assert_eq!(
        base_name("UpdateFunctionCode20150331v2"),
        "UpdateFunctionCode"
    );
    assert_eq!(base_name("CreateFunction20150331"), "CreateFunction");
    assert_eq!(base_name("DeactivateMFADevice"), "DeactivateMFADevice");
    assert_eq!(base_name("v2"), "v2");
    assert_eq!(base_name("Get12345678"), "Get");
    assert!(is_check_first("AddPermission20150331v2"));
    assert!(!is_check_first("ListFunctions20150331"));
}

#[test]
fn describe_lists_the_first_changes_and_strips_control_characters() {
    // GIVEN a user agent chosen by whoever holds the key, with a terminal escape in it
    let mut events = vec![event(0, "CreateUser", Some(false))];
    events[0].user_agent = Some("evil\u{1b}[2Jagent\nline".to_owned());
    let (since, until) = window();
    let text = summarize(&events, since, until, false).describe();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains("User agents: evil [2Jagent line (1)"),
        "{text}"
    );
    assert!(
        text.contains(
            "2026-11-20 08:00 UTC CreateUser iam.amazonaws.com in us-east-1 from 198.51.100.7"
        ),
        "{text}"
    );
}

#[test]
fn top_values_rank_by_count_then_value() {
    let t = TopValues::of([Some("b"), Some("a"), Some("b"), None, Some("c")].into_iter());
    assert_eq!(t.distinct, 3);
    assert_eq!(
        t.top[0],
        Counted {
            value: "b".into(),
            count: 2
        }
    );
    assert_eq!(t.top[1].value, "a");
    assert_eq!((t.others, t.unknown), (0, 1));
}

#[test]
fn the_summary_serialises_with_snake_case_fields() {
    let (since, until) = window();
    let s = summarize(&[event(0, "CreateUser", Some(false))], since, until, false);
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["event_count"], 1);
    assert_eq!(v["changes"][0]["check_first"], true);
    assert_eq!(v["source_ips"]["top"][0]["value"], "198.51.100.7");
}

const NAMES: &[&str] = &[
    "CreateUser",
    "ListUsers",
    "GetSessionToken",
    "RunInstances",
    "DescribeInstances",
    "PutObjectAcl",
    "UpdateFunctionCode20150331v2",
];

fn arb_event() -> impl Strategy<Value = ActivityEvent> {
    (
        0i64..100_000,
        proptest::sample::select(NAMES),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0u8..60),
        proptest::option::of(0u8..40),
        proptest::option::of(proptest::sample::select(
            &["AccessDenied", "Throttling"][..],
        )),
        0usize..4,
    )
        .prop_map(|(minute, name, read_only, ip, agent, error, region)| {
            let mut e = event(minute, name, read_only);
            e.source_ip = ip.map(|i| format!("192.0.2.{i}"));
            e.user_agent = agent.map(|a| format!("agent/{a}"));
            e.error_code = error.map(str::to_owned);
            e.region = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"][region].to_owned();
            e
        })
}

proptest! {
    /// Whatever the events, every list stays within its bound and every count adds up.
    #[test]
    fn bounds_hold_and_counts_add_up(events in proptest::collection::vec(arb_event(), 0..400)) {
        let (since, until) = window();
        let s = summarize(&events, since, until, false);
        prop_assert_eq!(s.event_count, events.len());
        prop_assert_eq!(s.regions.values().sum::<usize>(), events.len());
        for t in [&s.source_ips, &s.user_agents] {
            prop_assert!(t.top.len() <= TOP_VALUES);
            prop_assert_eq!(
                t.top.iter().map(|c| c.count).sum::<usize>() + t.others + t.unknown,
                events.len()
            );
            prop_assert!(t.top.windows(2).all(|w| w[0].count >= w[1].count));
        }
        prop_assert!(s.changes.len() <= MAX_CHANGES);
        prop_assert_eq!(s.changes.len() + s.changes_omitted, s.change_count);
        prop_assert!(s.check_first_count <= s.change_count);
        let not_read_only = events.iter().filter(|e| e.read_only != Some(true)).count();
        prop_assert!(s.change_count >= not_read_only);
        prop_assert_eq!(
            s.failed_calls,
            events.iter().filter(|e| e.error_code.is_some()).count()
        );
        // Check-first changes are never pushed out by ordinary ones.
        let listed_first = s.changes.iter().take_while(|c| c.check_first).count();
        prop_assert_eq!(listed_first, s.check_first_count.min(MAX_CHANGES));
        prop_assert!(s.first_use <= s.last_use);
        prop_assert!(s.headline().lines().count() <= 1);
    }
}
