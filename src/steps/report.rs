//! `keyrotor report`: the account's credential posture (read-only).
//!
//! One plan over every kind (with the state table's lifecycles), the credential report for
//! the key age distribution, and the audit records of the last `audit_days`. Nothing is
//! written.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{PlanRequest, StepError, discover::DiscoveryPorts};
use crate::domain::lifecycle::Stage;
use crate::domain::model::{KeyStatus, Kind, TAG_MIGRATE_TO};
use crate::domain::policy::Policy;
use crate::domain::posture::{Posture, PostureInput};
use crate::ports::{AuditQuery, AuditStore, Clock, Identity, PortError, StateStore};

/// How far back the report reads the audit table for its recent actions.
pub const AUDIT_DAYS: i64 = 30;

pub struct ReportRequest<'a> {
    pub now: DateTime<Utc>,
    pub region: &'a str,
    /// Recent audited actions listed.
    pub recent: usize,
}

pub async fn posture(
    identity: &dyn Identity,
    discovery: &DiscoveryPorts<'_>,
    state: &dyn StateStore,
    audit: &dyn AuditStore,
    policy: &Policy,
    request: &ReportRequest<'_>,
    clock: &dyn Clock,
) -> Result<Posture, StepError> {
    let now = request.now;
    let outcome = super::plan(
        identity,
        discovery,
        Some(state),
        None,
        policy,
        &PlanRequest {
            kinds: &Kind::ALL,
            now,
            region: request.region,
        },
        clock,
    )
    .await?;
    // Every key of every user, for the age distribution (discovery details only the users
    // it may act on).
    let report = discovery
        .iam
        .credential_report(now, policy.iam_keys.credential_report_max_age_hours)
        .await?;
    let records = match audit
        .query(&AuditQuery {
            since: Some(now - Duration::days(AUDIT_DAYS)),
            ..AuditQuery::default()
        })
        .await
    {
        Ok(found) => found.into_iter().filter_map(Result::ok).collect(),
        // No audit table yet: nothing has been done.
        Err(PortError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let inventory = &outcome.inventory;
    let mut migration: BTreeMap<String, usize> = BTreeMap::new();
    let recs = super::migration::records(state, &outcome.caller.account).await?;
    {
        for r in &recs {
            *migration.entry(r.stage.as_str().to_owned()).or_default() += 1;
        }
        // Candidates: tagged users with an active key and no migration yet (discovery
        // details them when migration planning is on).
        let candidates = inventory
            .iam_users
            .iter()
            .filter(|u| u.tags.contains_key(TAG_MIGRATE_TO))
            .filter(|u| u.keys.iter().any(|k| k.status == KeyStatus::Active))
            .filter(|u| !recs.iter().any(|r| r.user == u.name))
            .count();
        if candidates > 0 {
            migration.insert("candidate".into(), candidates);
        }
    }
    let key_records: Vec<_> = inventory
        .key_records
        .iter()
        .filter(|r| r.stage != Stage::Deleted)
        .cloned()
        .collect();
    Ok(Posture::build(&PostureInput {
        now,
        account: outcome.caller.account.as_str(),
        region: request.region,
        policy,
        report: &report,
        key_records: &key_records,
        api_keys: &inventory.api_keys,
        rotations: &inventory.api_rotations,
        plan: &outcome.plan,
        certificates: &inventory.certificates,
        migration: &migration,
        audit: &records,
        recent: request.recent,
    }))
}
