//! What a leaked key did: CloudTrail's event history of the key (LookupEvents by access key
//! id, not by user name) in every enabled region over the last 90 days, summarised. Runs
//! after containment, so however long the history, it never delays it.

use chrono::{DateTime, Duration, Utc};
use futures::future::join_all;

use super::{RespondPorts, Response};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::{AccessKeyId, Kind};
use crate::domain::plan::GLOBAL;
use crate::domain::respond::activity::summarize;
use crate::ports::Clock;
use crate::steps::StepError;

/// How far back CloudTrail's event history goes.
pub const LOOKBACK_DAYS: i64 = 90;
/// The most events read per region; past it the summary says it is partial.
pub const EVENTS_PER_REGION: usize = 20_000;

/// Reads the key's activity and adds its summary to `response` (and to the audit trail, as
/// a decision on the key's chain: counts and identifiers only). A region that cannot be
/// read is named in `investigation_problems`; the others are still summarised.
pub async fn investigate(
    ports: &RespondPorts<'_>,
    response: &mut Response,
    fallback_region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<(), StepError> {
    let key = AccessKeyId::parse(&response.key)
        .map_err(|e| StepError::InvalidInput(format!("response to investigate: {e}")))?;
    let mut problems = Vec::new();
    let regions = match ports.activity.enabled_regions().await {
        Ok(r) if !r.is_empty() => r,
        Ok(_) => vec![fallback_region.to_owned()],
        Err(e) => {
            problems.push(format!(
                "the enabled regions could not be listed ({e}); only {fallback_region} was searched"
            ));
            vec![fallback_region.to_owned()]
        }
    };
    let since = now - Duration::days(LOOKBACK_DAYS);
    let reads = join_all(regions.iter().map(|region| {
        let key = &key;
        async move {
            (
                region,
                ports
                    .activity
                    .key_events(region, key, since, now, Some(EVENTS_PER_REGION))
                    .await,
            )
        }
    }))
    .await;
    let mut events = Vec::new();
    let mut limit_reached = false;
    for (region, read) in reads {
        match read {
            Ok(found) => {
                limit_reached |= found.len() >= EVENTS_PER_REGION;
                events.extend(found);
            }
            Err(e) => problems.push(format!("{region}: {e}")),
        }
    }
    events.sort_by_key(|e| e.time);
    let summary = summarize(&events, since, now, limit_reached);
    let caller = ports.hook.identity.caller().await?;
    let log = AuditLog::new(ports.hook.audit, response.run_id.clone(), caller.arn);
    let entry = Entry {
        resource: ResourceRef {
            kind: Kind::IamKeys,
            account: response.account.clone(),
            region: GLOBAL.to_owned(),
            id: response.key.clone(),
        },
        action: "investigate".into(),
        phase: Phase::Decision,
        outcome: Some(if problems.is_empty() {
            Outcome::Succeeded
        } else {
            Outcome::Failed
        }),
        reason: response.reason.as_str().to_owned(),
        detail: format!(
            "CloudTrail, {} region(s), last {LOOKBACK_DAYS} days: {}{}",
            regions.len(),
            summary.headline(),
            if problems.is_empty() {
                String::new()
            } else {
                format!("; incomplete: {}", problems.join("; "))
            }
        ),
        before: None,
        after: None,
        dry_run: false,
        policy_time: now,
    };
    let appended = log.append(&entry, wall.now()).await.map(|_| ());
    log.finish(appended, wall.now()).await?;
    response.activity = Some(summary);
    response.investigation_problems = problems;
    Ok(())
}
