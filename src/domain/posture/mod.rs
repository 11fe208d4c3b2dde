//! The credential posture of one account: what `keyrotor report` shows an auditor.
//!
//! [`Posture::build`] is pure: it takes what discovery, the state table and the audit table
//! returned, and computes the distributions, the funnel and the compliance summary. The HTML
//! and JSON renderings are views of this one value.
//!
//! One file per part of the report: `iam_keys`, `api_keys`, `certs`, `migration` (the
//! funnel), `audit` (recent actions) and `controls`; a new credential kind is a new file
//! here and a field of [`Posture`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::api_rotation::Rotation;
use super::audit_record::AuditRecord;
use super::credential_report::ReportRow;
use super::lifecycle::KeyRecord;
use super::model::{ApiKey, Certificate};
use super::plan::Plan;
use super::policy::Policy;

mod api_keys;
mod audit;
mod certs;
mod controls;
mod iam_keys;
mod migration;
#[cfg(test)]
mod tests;

pub use api_keys::ApiKeyLine;
pub use audit::AuditLine;
pub use certs::CertLine;
pub use controls::{Control, ControlStatus};
pub use iam_keys::{AGE_BUCKETS, IamPosture};

/// The 90-day rotation line of CIS 1.14 and Security Hub IAM.3.
pub const ROTATION_DAYS: i64 = 90;
/// The 45-day unused line of CIS 1.12 and Security Hub IAM.22.
pub const UNUSED_DAYS: i64 = 45;
/// Security Hub ACM.1's default `daysToExpiration`.
pub const CERT_DAYS: i64 = 30;

/// Everything the posture is computed from.
pub struct PostureInput<'a> {
    pub now: DateTime<Utc>,
    pub account: &'a str,
    pub region: &'a str,
    pub policy: &'a Policy,
    /// The credential report: every user and every key slot.
    pub report: &'a [ReportRow],
    pub key_records: &'a [KeyRecord],
    pub api_keys: &'a [ApiKey],
    pub rotations: &'a [Rotation],
    pub plan: &'a Plan,
    pub certificates: &'a [Certificate],
    /// Migration candidates and migrations per stage (`candidate` when none has started).
    pub migration: &'a BTreeMap<String, usize>,
    /// Audit records, any order; the newest `recent` non-dry-run ones are listed.
    pub audit: &'a [AuditRecord],
    pub recent: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub label: String,
    pub count: usize,
}

fn count(label: impl Into<String>, count: usize) -> Count {
    Count {
        label: label.into(),
        count,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Posture {
    pub generated_at: DateTime<Utc>,
    pub account: String,
    pub region: String,
    pub iam: IamPosture,
    pub api_keys: Vec<ApiKeyLine>,
    pub api_key_status: Vec<Count>,
    pub certificates: Vec<CertLine>,
    /// The notification ladder, days before expiry, farthest first.
    pub ladder_days: Vec<u32>,
    /// Users reaching each migration stage (a user counts for every stage up to its own).
    pub migration_funnel: Vec<Count>,
    /// Migrations stopped by a key used again, or rolled back.
    pub migration_setbacks: Vec<Count>,
    pub recent_actions: Vec<AuditLine>,
    pub controls: Vec<Control>,
}

fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_days()
}

impl Posture {
    /// Computes the posture from what discovery, the state table and the audit table
    /// returned.
    pub fn build(input: &PostureInput<'_>) -> Posture {
        let now = input.now;
        let (iam, active) = iam_keys::iam_posture(input);
        let (api_keys, api_key_status) = api_keys::api_key_lines(input);
        let certificates = certs::cert_lines(input);
        let (migration_funnel, migration_setbacks) = migration::funnel(input.migration);
        let recent_actions = audit::recent_actions(input);
        let controls = controls::controls(&active, &certificates, now);
        Posture {
            generated_at: now,
            account: input.account.to_owned(),
            region: input.region.to_owned(),
            iam,
            api_key_status,
            api_keys,
            certificates,
            ladder_days: input.policy.certs.ladder_days.clone(),
            migration_funnel,
            migration_setbacks,
            recent_actions,
            controls,
        }
    }

    /// Controls failed.
    pub fn failed_controls(&self) -> usize {
        self.controls
            .iter()
            .filter(|c| c.status == ControlStatus::Failed)
            .count()
    }
}
