//! ACM certificates in the posture: expiry, ladder step and why ACM will not renew them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PostureInput;
use crate::domain::cert::{self, Diagnosis};

#[derive(Debug, Clone, Serialize)]
pub struct CertLine {
    pub domain: String,
    pub arn: String,
    pub region: String,
    pub not_after: Option<DateTime<Utc>>,
    pub days_left: Option<i64>,
    /// The ladder step reached (`45d`, ..., `expired`), if any.
    pub step: Option<String>,
    pub diagnosis: Diagnosis,
    pub explanation: String,
    pub owner: Option<String>,
}

/// Every certificate, the nearest expiry first (those without a date before all).
pub(super) fn cert_lines(input: &PostureInput<'_>) -> Vec<CertLine> {
    let now = input.now;
    let mut certificates: Vec<CertLine> = input
        .certificates
        .iter()
        .map(|c| {
            let a = cert::assess(c, now, input.policy);
            CertLine {
                domain: a.domain,
                arn: a.arn,
                region: a.region,
                not_after: a.not_after,
                days_left: a.days_left,
                step: a.step.map(|s| s.label()),
                diagnosis: a.diagnosis,
                explanation: a.explanation,
                owner: a.owner,
            }
        })
        .collect();
    certificates.sort_by_key(|c| (c.days_left.unwrap_or(i64::MIN), c.domain.clone()));
    certificates
}
