//! CloudTrail: what an access key did (event history, LookupEvents by `AccessKeyId`), and
//! the regions to look in (Account Management ListRegions).
//!
//! Event history is regional and kept 90 days; LookupEvents returns at most 50 events a
//! page, newest first, and allows 2 requests per second per account and region, so every
//! page waits for that region's pacer ([`Service::CloudTrailLookup`]). Each event is read
//! from the lookup's own fields and, for the region, source IP, user agent, error code and
//! read-only flag, from the `CloudTrailEvent` record (a JSON string). A record that does not
//! parse costs only those fields, never the lookup. No request body or response element is
//! kept: nothing secret leaves this module.
//!
//! The enabled regions come from the Account API's ListRegions (`account:ListRegions`), not
//! EC2 DescribeRegions: aws-sdk-account compiles in seconds, aws-sdk-ec2 in minutes and
//! gigabytes. moto 5.2.5 does not serve ListRegions: the emulator wrapper
//! (tests/emulator/moto_world.py) does.

use async_trait::async_trait;
use aws_sdk_account::types::RegionOptStatus;
use aws_sdk_cloudtrail::types::{Event, LookupAttribute, LookupAttributeKey};
use chrono::{DateTime, Utc};

use super::{Aws, Pacer, Service, classify, to_utc};
use crate::domain::model::AccessKeyId;
use crate::ports::{ActivityEvent, ActivityLog, PortError, PortResult};

const LOOKUP: &str = "cloudtrail:LookupEvents";
/// LookupEvents' largest page.
const PAGE_SIZE: i32 = 50;

/// [`ActivityLog`] over CloudTrail event history: one client per region, each region paced
/// on its own.
pub struct CloudTrailActivity {
    aws: Aws,
}

impl CloudTrailActivity {
    pub fn new(aws: Aws) -> Self {
        Self { aws }
    }
}

#[async_trait]
impl ActivityLog for CloudTrailActivity {
    async fn enabled_regions(&self) -> PortResult<Vec<String>> {
        enabled_regions(&self.aws.account()).await
    }

    async fn key_events(
        &self,
        region: &str,
        key: &AccessKeyId,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: Option<usize>,
    ) -> PortResult<Vec<ActivityEvent>> {
        let client = self.aws.cloudtrail(region);
        let pacer = self.aws.pacer(Service::CloudTrailLookup {
            region: region.to_owned(),
        });
        key_events(&client, &pacer, region, key, start, end, limit).await
    }
}

/// The regions enabled in the caller's account (opted in, or enabled by default), sorted.
pub async fn enabled_regions(client: &aws_sdk_account::Client) -> PortResult<Vec<String>> {
    let mut pages = client
        .list_regions()
        .region_opt_status_contains(RegionOptStatus::Enabled)
        .region_opt_status_contains(RegionOptStatus::EnabledByDefault)
        .max_results(50)
        .into_paginator()
        .items()
        .send();
    let mut regions = Vec::new();
    while let Some(region) = pages.next().await {
        let region = region.map_err(|e| classify("account:ListRegions", e))?;
        // The filter asked for; a service that ignores it must not widen the search to a
        // region whose calls would all fail.
        let enabled = matches!(
            region.region_opt_status(),
            None | Some(RegionOptStatus::Enabled | RegionOptStatus::EnabledByDefault)
        );
        if let Some(name) = region.region_name().filter(|n| !n.is_empty())
            && enabled
        {
            regions.push(name.to_owned());
        }
    }
    regions.sort();
    regions.dedup();
    Ok(regions)
}

/// LookupEvents for `key` through `client` (a client of `region`), one page per `pacer`
/// slot, until the pages end or `limit` events are read. AWS returns the newest first, so a
/// limited look-up keeps the newest `limit`; the result is oldest first.
pub async fn key_events(
    client: &aws_sdk_cloudtrail::Client,
    pacer: &Pacer,
    region: &str,
    key: &AccessKeyId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    limit: Option<usize>,
) -> PortResult<Vec<ActivityEvent>> {
    let by_key = LookupAttribute::builder()
        .attribute_key(LookupAttributeKey::AccessKeyId)
        .attribute_value(key.as_str())
        .build()
        .map_err(|e| PortError::Other {
            operation: LOOKUP.into(),
            message: e.to_string(),
        })?;
    let full = |n: usize| limit.is_some_and(|l| n >= l);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    while !full(out.len()) {
        pacer.wait().await;
        let page = client
            .lookup_events()
            .lookup_attributes(by_key.clone())
            .start_time(smithy_time(start))
            .end_time(smithy_time(end))
            .max_results(PAGE_SIZE)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| classify(LOOKUP, e))?;
        for event in page.events() {
            if full(out.len()) {
                break;
            }
            match activity(event, region) {
                Some(a) => out.push(a),
                None => tracing::warn!(
                    region,
                    event_id = event.event_id().unwrap_or("unknown"),
                    "CloudTrail event without a time skipped"
                ),
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => {
                // A service (or emulator) that hands back the same token would page forever.
                if token.as_deref() == Some(next) {
                    return Err(PortError::InvalidResponse {
                        operation: LOOKUP.into(),
                        message: "the same NextToken was returned twice".into(),
                    });
                }
                token = Some(next.to_owned());
            }
            _ => break,
        }
    }
    out.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    Ok(out)
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_millis(t.timestamp_millis())
}

/// The fields keyrotor keeps from a `CloudTrailEvent` record; all absent when the record is
/// missing or does not parse.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordFields {
    pub region: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub error_code: Option<String>,
    pub read_only: Option<bool>,
    pub time: Option<DateTime<Utc>>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub source: Option<String>,
    pub user: Option<String>,
}

/// Reads a `CloudTrailEvent` record (JSON) leniently: a field of the wrong type is absent,
/// and a record that is not a JSON object yields no fields.
pub(crate) fn record_fields(record: &str) -> RecordFields {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(record)
    else {
        return RecordFields::default();
    };
    let text = |v: Option<&serde_json::Value>| {
        v.and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let read_only = match map.get("readOnly") {
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(serde_json::Value::String(s)) => flag(s),
        _ => None,
    };
    RecordFields {
        region: text(map.get("awsRegion")),
        source_ip: text(map.get("sourceIPAddress")),
        user_agent: text(map.get("userAgent")),
        error_code: text(map.get("errorCode")),
        read_only,
        time: text(map.get("eventTime"))
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        id: text(map.get("eventID")),
        name: text(map.get("eventName")),
        source: text(map.get("eventSource")),
        user: text(map.get("userIdentity").and_then(|u| u.get("userName"))),
    }
}

/// CloudTrail's `"true"` / `"false"`.
fn flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// One looked-up event as an [`ActivityEvent`]: the lookup's fields first, the record's
/// where the lookup has none, the looked-up region when neither says. `None` without a time.
pub(crate) fn activity(event: &Event, lookup_region: &str) -> Option<ActivityEvent> {
    let record = event
        .cloud_trail_event()
        .map(record_fields)
        .unwrap_or_default();
    let owned = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    Some(ActivityEvent {
        time: event.event_time().and_then(to_utc).or(record.time)?,
        id: owned(event.event_id()).or(record.id).unwrap_or_default(),
        name: owned(event.event_name())
            .or(record.name)
            .unwrap_or_default(),
        source: owned(event.event_source())
            .or(record.source)
            .unwrap_or_default(),
        region: record.region.unwrap_or_else(|| lookup_region.to_owned()),
        read_only: event.read_only().and_then(flag).or(record.read_only),
        source_ip: record.source_ip,
        user_agent: record.user_agent,
        error_code: record.error_code,
        user: owned(event.username()).or(record.user),
    })
}

#[cfg(test)]
mod tests;
