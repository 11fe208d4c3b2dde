//! The CloudTrail adapter over mocked responses (aws-smithy-mocks): record parsing, paging,
//! the limit, pacing in virtual time, and error classification.

use aws_config::SdkConfig;
use aws_sdk_account::operation::list_regions::ListRegionsOutput;
use aws_sdk_account::types::Region as AccountRegion;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsError, LookupEventsOutput};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use aws_smithy_types::DateTime as SmithyTime;
use aws_smithy_types::error::ErrorMetadata;
use chrono::TimeZone;

use super::*;

const KEY: &str = "AKIAEXPOSED000000001";
/// 2026-11-25T00:00:00Z
const T: i64 = 1_795_564_800;

fn key() -> AccessKeyId {
    AccessKeyId::parse(KEY).unwrap()
}

fn window() -> (DateTime<Utc>, DateTime<Utc>) {
    let end = Utc.timestamp_opt(T, 0).unwrap();
    (end - chrono::Duration::days(90), end)
}

fn record(n: i64) -> String {
    serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": "ci", "accessKeyId": KEY},
        "eventTime": "2026-11-24T10:00:00Z",
        "eventSource": "iam.amazonaws.com",
        "eventName": "CreateUser",
        "awsRegion": "us-east-1",
        "sourceIPAddress": format!("198.51.100.{n}"),
        "userAgent": "aws-cli/2.15.0",
        "errorCode": "AccessDenied",
        "readOnly": false,
        "eventID": format!("ev-{n}"),
    })
    .to_string()
}

/// Event `n`: `n` seconds before T (so a page of higher `n` is older, as AWS pages).
fn event(n: i64) -> Event {
    Event::builder()
        .event_id(format!("ev-{n}"))
        .event_name("CreateUser")
        .event_source("iam.amazonaws.com")
        .event_time(SmithyTime::from_secs(T - n))
        .read_only("false")
        .username("ci")
        .access_key_id(KEY)
        .cloud_trail_event(record(n))
        .build()
}

/// Page `p` of 50 events, newest first, with a token to the next page unless it is `last`.
fn page(p: i64, last: bool) -> LookupEventsOutput {
    let token = (!last).then(|| format!("page-{}", p + 1));
    page_with_token(p, token)
}

fn page_with_token(p: i64, token: Option<String>) -> LookupEventsOutput {
    let mut out = LookupEventsOutput::builder().set_next_token(token);
    for n in p * 50..(p + 1) * 50 {
        out = out.events(event(n));
    }
    out.build()
}

fn pacer() -> std::sync::Arc<Pacer> {
    Aws::from_config(SdkConfig::builder().build()).pacer(Service::CloudTrailLookup {
        region: "us-east-1".into(),
    })
}

#[test]
fn a_record_gives_region_ip_agent_error_and_read_only() {
    let f = record_fields(&record(7));
    assert_eq!(f.region.as_deref(), Some("us-east-1"));
    assert_eq!(f.source_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(f.user_agent.as_deref(), Some("aws-cli/2.15.0"));
    assert_eq!(f.error_code.as_deref(), Some("AccessDenied"));
    assert_eq!(f.read_only, Some(false));
    assert_eq!(f.user.as_deref(), Some("ci"));
    assert_eq!(
        f.time,
        Some(Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap())
    );
}

#[test]
fn a_malformed_record_keeps_the_lookup_fields() {
    // GIVEN an event whose CloudTrailEvent is not JSON, and one that is JSON but not a record
    for bad in [
        "{not json",
        "[1,2]",
        "",
        "{\"awsRegion\": 5, \"readOnly\": \"maybe\"}",
    ] {
        let e = Event::builder()
            .event_id("ev-1")
            .event_name("RunInstances")
            .event_source("ec2.amazonaws.com")
            .event_time(SmithyTime::from_secs(T))
            .read_only("false")
            .username("ci")
            .cloud_trail_event(bad)
            .build();

        // WHEN it is read
        let a = activity(&e, "eu-west-1").expect("an event with a time is kept");

        // THEN the lookup's own fields are kept and the region is the one looked in
        assert_eq!(a.id, "ev-1", "{bad}");
        assert_eq!(a.name, "RunInstances");
        assert_eq!(a.source, "ec2.amazonaws.com");
        assert_eq!(a.region, "eu-west-1");
        assert_eq!(a.read_only, Some(false));
        assert_eq!(a.user.as_deref(), Some("ci"));
        assert_eq!(
            (a.source_ip, a.user_agent, a.error_code),
            (None, None, None)
        );
    }
}

#[test]
fn the_record_fills_what_the_lookup_leaves_out() {
    let e = Event::builder().cloud_trail_event(record(3)).build();
    let a = activity(&e, "eu-west-1").unwrap();
    assert_eq!(a.id, "ev-3");
    assert_eq!(a.name, "CreateUser");
    assert_eq!(a.region, "us-east-1");
    assert_eq!(a.read_only, Some(false));
    assert!(activity(&Event::builder().build(), "eu-west-1").is_none());
}

#[tokio::test]
async fn every_page_is_read_by_key_and_returned_oldest_first() {
    // GIVEN three pages of events made with the key
    let first = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| {
            let by = r.lookup_attributes();
            r.next_token().is_none()
                && r.max_results() == Some(50)
                && by.len() == 1
                && by[0].attribute_key() == &LookupAttributeKey::AccessKeyId
                && by[0].attribute_value() == KEY
                && r.start_time().is_some()
                && r.end_time() == Some(&SmithyTime::from_secs(T))
        })
        .then_output(|| page(0, false));
    let second = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| r.next_token() == Some("page-1"))
        .then_output(|| page(1, false));
    let third = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| page(2, true));
    let client = mock_client!(
        aws_sdk_cloudtrail,
        RuleMode::Sequential,
        [&first, &second, &third]
    );
    let (start, end) = window();

    // WHEN the adapter looks the key up without a limit
    let events = key_events(&client, &pacer(), "us-east-1", &key(), start, end, None)
        .await
        .unwrap();

    // THEN it read all three pages once each, and the oldest event comes first
    assert_eq!(
        (first.num_calls(), second.num_calls(), third.num_calls()),
        (1, 1, 1)
    );
    assert_eq!(events.len(), 150);
    assert_eq!(events[0].id, "ev-149");
    assert_eq!(events[149].id, "ev-0");
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    assert_eq!(events[0].source_ip.as_deref(), Some("198.51.100.149"));
}

#[tokio::test]
async fn the_limit_stops_paging_and_keeps_the_newest_events() {
    // GIVEN more pages than the limit needs
    let pages = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .output(|| page(0, false))
        .output(|| page(1, false))
        .output(|| page(2, true))
        .build();
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&pages]);
    let (start, end) = window();

    // WHEN 60 events are asked for
    let events = key_events(&client, &pacer(), "us-east-1", &key(), start, end, Some(60))
        .await
        .unwrap();

    // THEN two pages were read and the 60 newest are returned, oldest first
    assert_eq!(pages.num_calls(), 2);
    assert_eq!(events.len(), 60);
    assert_eq!(events[0].id, "ev-59");
    assert_eq!(events[59].id, "ev-0");
}

#[tokio::test]
async fn a_limit_of_zero_makes_no_call() {
    let pages = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_output(|| page(0, true));
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&pages]);
    let (start, end) = window();
    let events = key_events(&client, &pacer(), "us-east-1", &key(), start, end, Some(0))
        .await
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(pages.num_calls(), 0);
}

// Virtual time: the test measures the pacer's schedule, not the machine.
#[tokio::test(start_paused = true)]
async fn pages_of_one_region_are_paced_at_two_per_second() {
    // GIVEN N pages in one region
    const N: i64 = 5;
    let mut seq = mock!(aws_sdk_cloudtrail::Client::lookup_events).sequence();
    for p in 0..N {
        seq = seq.output(move || page(p, p == N - 1));
    }
    let pages = seq.build();
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&pages]);
    let aws = Aws::from_config(SdkConfig::builder().build());
    let pacer = aws.pacer(Service::CloudTrailLookup {
        region: "us-east-1".into(),
    });
    let (start, end) = window();

    // WHEN they are read
    let began = tokio::time::Instant::now();
    let events = key_events(&client, &pacer, "us-east-1", &key(), start, end, None)
        .await
        .unwrap();

    // THEN N requests took at least (N - 1) / 2 seconds
    assert_eq!(pages.num_calls(), N as usize);
    assert_eq!(events.len(), (N * 50) as usize);
    let took = tokio::time::Instant::now() - began;
    assert!(
        took >= std::time::Duration::from_millis((N as u64 - 1) * 500),
        "{took:?}"
    );

    // AND another region has a budget of its own: its first page does not wait
    let before = tokio::time::Instant::now();
    aws.pacer(Service::CloudTrailLookup {
        region: "eu-west-1".into(),
    })
    .wait()
    .await;
    assert_eq!(
        tokio::time::Instant::now() - before,
        std::time::Duration::ZERO
    );
}

#[tokio::test]
async fn access_denied_is_classified_and_names_the_operation() {
    let denied = mock!(aws_sdk_cloudtrail::Client::lookup_events).then_error(|| {
        LookupEventsError::generic(
            ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform: cloudtrail:LookupEvents")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&denied]);
    let (start, end) = window();
    let err = key_events(&client, &pacer(), "us-east-1", &key(), start, end, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("cloudtrail:LookupEvents"), "{err}");
}

#[tokio::test]
async fn a_token_handed_back_twice_is_an_error_not_an_endless_loop() {
    let same = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .output(|| page(0, false))
        .output(|| page_with_token(1, Some("page-1".into())))
        .build();
    let client = mock_client!(aws_sdk_cloudtrail, RuleMode::Sequential, [&same]);
    let (start, end) = window();
    let err = key_events(&client, &pacer(), "us-east-1", &key(), start, end, None)
        .await
        .unwrap_err();
    assert!(matches!(err, PortError::InvalidResponse { .. }), "{err:?}");
}

fn region(name: &str, status: RegionOptStatus) -> AccountRegion {
    AccountRegion::builder()
        .region_name(name)
        .region_opt_status(status)
        .build()
}

#[tokio::test]
async fn enabled_regions_are_asked_for_read_across_pages_and_sorted() {
    // GIVEN two pages of regions, one of them (wrongly) disabled
    let asked = |r: &aws_sdk_account::operation::list_regions::ListRegionsInput| {
        let wanted = r.region_opt_status_contains();
        wanted.contains(&RegionOptStatus::Enabled)
            && wanted.contains(&RegionOptStatus::EnabledByDefault)
            && wanted.len() == 2
    };
    let first = mock!(aws_sdk_account::Client::list_regions)
        .match_requests(move |r| asked(r) && r.next_token().is_none())
        .then_output(|| {
            ListRegionsOutput::builder()
                .regions(region("us-east-1", RegionOptStatus::EnabledByDefault))
                .regions(region("ap-east-1", RegionOptStatus::Enabled))
                .next_token("more")
                .build()
        });
    let second = mock!(aws_sdk_account::Client::list_regions)
        .match_requests(move |r| asked(r) && r.next_token() == Some("more"))
        .then_output(|| {
            ListRegionsOutput::builder()
                .regions(region("eu-west-1", RegionOptStatus::EnabledByDefault))
                .regions(region("me-south-1", RegionOptStatus::Disabled))
                .build()
        });
    let client = mock_client!(aws_sdk_account, RuleMode::Sequential, [&first, &second]);

    // WHEN the enabled regions are listed
    let regions = enabled_regions(&client).await.unwrap();

    // THEN both pages were read, the disabled region is left out, and the list is sorted
    assert_eq!(regions, ["ap-east-1", "eu-west-1", "us-east-1"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}
