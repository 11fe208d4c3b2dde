//! ACM certificate expiry: the escalation ladder and the renewal diagnosis.
//!
//! For each certificate: days to NotAfter, the ladder step reached (e.g. 45/30/14/7 days,
//! then expired), why ACM will or will not renew it by itself, and what its owner must do.
//! A notification is due once per step: when the step reached is more urgent than the last
//! one notified for the same certificate and NotAfter (a renewed certificate starts over).

use std::cmp::Ordering;
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Serialize, Serializer};

use super::model::{CertType, Certificate, TAG_OWNER};
use super::policy::Policy;

/// A rung of the escalation ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LadderStep {
    /// Within this many days of NotAfter.
    Days(u32),
    /// Past NotAfter.
    Expired,
}

impl LadderStep {
    /// Higher is more urgent: `Expired` above every `Days`, fewer days above more.
    pub fn urgency(self) -> u32 {
        match self {
            LadderStep::Expired => u32::MAX,
            LadderStep::Days(d) => u32::MAX - 1 - d.min(u32::MAX - 2),
        }
    }

    /// `45d`, `7d`, `expired`.
    pub fn label(self) -> String {
        match self {
            LadderStep::Days(d) => format!("{d}d"),
            LadderStep::Expired => "expired".into(),
        }
    }

    /// Parses [`LadderStep::label`] back.
    pub fn parse(label: &str) -> Option<LadderStep> {
        if label == "expired" {
            return Some(LadderStep::Expired);
        }
        label.strip_suffix('d')?.parse().ok().map(LadderStep::Days)
    }
}

impl fmt::Display for LadderStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for LadderStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl PartialOrd for LadderStep {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for LadderStep {
    fn cmp(&self, other: &Self) -> Ordering {
        self.urgency().cmp(&other.urgency())
    }
}

/// Why ACM will or will not renew a certificate by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Diagnosis {
    /// Imported: ACM never renews it.
    Imported,
    /// Issued by a private CA.
    PrivateCa,
    /// RenewalEligibility INELIGIBLE.
    Ineligible,
    /// Managed renewal waits for domain validation.
    PendingValidation,
    /// Managed renewal failed.
    RenewalFailed,
    /// Not associated with any resource: ACM does not renew unused certificates.
    NotInUse,
    /// Never issued (pending validation, failed, revoked...): no NotAfter.
    NotIssued,
    /// ACM should renew it automatically.
    AutoRenews,
}

impl Diagnosis {
    pub fn as_str(self) -> &'static str {
        match self {
            Diagnosis::Imported => "imported",
            Diagnosis::PrivateCa => "private-ca",
            Diagnosis::Ineligible => "ineligible",
            Diagnosis::PendingValidation => "pending-validation",
            Diagnosis::RenewalFailed => "renewal-failed",
            Diagnosis::NotInUse => "not-in-use",
            Diagnosis::NotIssued => "not-issued",
            Diagnosis::AutoRenews => "auto-renews",
        }
    }
}

/// Everything keyrotor concludes about one certificate at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertAssessment {
    pub arn: String,
    pub domain: String,
    pub region: String,
    pub status: String,
    pub cert_type: CertType,
    pub not_after: Option<DateTime<Utc>>,
    /// Whole days left (negative once expired); `None` without NotAfter.
    pub days_left: Option<i64>,
    /// The most urgent ladder step reached, if any.
    pub step: Option<LadderStep>,
    pub diagnosis: Diagnosis,
    /// Why, for people.
    pub explanation: String,
    /// What the owner must do.
    pub action: String,
    pub in_use: bool,
    pub owner: Option<String>,
}

impl CertAssessment {
    /// Sort key: most urgent first (expired, then fewest days left; no NotAfter last).
    pub fn urgency_key(&self) -> (i64, &str) {
        (self.days_left.unwrap_or(i64::MAX), &self.arn)
    }
}

/// The diagnosis and the owner's action.
pub fn diagnose(cert: &Certificate) -> (Diagnosis, String, String) {
    let (d, why, action): (Diagnosis, String, &str) = if cert.not_after.is_none() {
        (
            Diagnosis::NotIssued,
            format!(
                "status {}: never issued, nothing can expire yet",
                cert.status
            ),
            "complete validation or delete the request",
        )
    } else {
        match cert.cert_type {
            CertType::Imported => (
                Diagnosis::Imported,
                "imported: ACM never renews imported certificates".into(),
                "obtain a new certificate and re-import it (same ARN) before NotAfter",
            ),
            CertType::Private => (
                Diagnosis::PrivateCa,
                "private CA: renews only while the CA is active and ACM may use it".into(),
                "check the private CA is active and grants ACM permission",
            ),
            CertType::AmazonIssued | CertType::Unknown => {
                if cert.renewal_eligibility.as_deref() == Some("INELIGIBLE") {
                    (
                        Diagnosis::Ineligible,
                        "renewal eligibility INELIGIBLE: ACM will not renew it".into(),
                        "request a new certificate and move its users to it",
                    )
                } else if cert.renewal_status.as_deref() == Some("PENDING_VALIDATION") {
                    (
                        Diagnosis::PendingValidation,
                        format!(
                            "renewal waiting for domain validation ({})",
                            cert.validation_method
                                .as_deref()
                                .unwrap_or("unknown method")
                        ),
                        "publish the validation records (DNS CNAME) or answer the validation email",
                    )
                } else if cert.renewal_status.as_deref() == Some("FAILED") {
                    (
                        Diagnosis::RenewalFailed,
                        format!(
                            "renewal FAILED ({})",
                            cert.renewal_failure_reason
                                .as_deref()
                                .unwrap_or("no reason given")
                        ),
                        "fix the failure reason, then request a new certificate",
                    )
                } else if !cert.in_use {
                    (
                        Diagnosis::NotInUse,
                        "not in use: ACM does not renew certificates not associated with a resource".into(),
                        "attach it to its load balancer / distribution, or delete it if unneeded",
                    )
                } else {
                    (
                        Diagnosis::AutoRenews,
                        "ACM should renew it automatically".into(),
                        "none; watch that the renewal happens",
                    )
                }
            }
        }
    };
    (d, why, action.to_owned())
}

/// The most urgent ladder step reached at `now`, if any.
pub fn step_reached(
    not_after: DateTime<Utc>,
    now: DateTime<Utc>,
    ladder_days: &[u32],
) -> Option<LadderStep> {
    let left = not_after - now;
    if left <= Duration::zero() {
        return Some(LadderStep::Expired);
    }
    ladder_days
        .iter()
        .copied()
        .filter(|&d| left <= Duration::days(i64::from(d)))
        .min()
        .map(LadderStep::Days)
}

/// When `step` was reached for a certificate expiring at `not_after`.
pub fn step_time(not_after: DateTime<Utc>, step: LadderStep) -> DateTime<Utc> {
    match step {
        LadderStep::Expired => not_after,
        LadderStep::Days(d) => not_after - Duration::days(i64::from(d)),
    }
}

/// Assesses one certificate at `now`.
pub fn assess(cert: &Certificate, now: DateTime<Utc>, policy: &Policy) -> CertAssessment {
    let (diagnosis, explanation, action) = diagnose(cert);
    // Whole days, truncated: 2.5 days left is 2, 2.5 days past is -2.
    let days_left = cert.not_after.map(|t| (t - now).num_days());
    CertAssessment {
        arn: cert.arn.clone(),
        domain: cert.domain.clone(),
        region: cert.region.clone(),
        status: cert.status.clone(),
        cert_type: cert.cert_type,
        not_after: cert.not_after,
        days_left,
        step: cert
            .not_after
            .and_then(|t| step_reached(t, now, &policy.certs.ladder_days)),
        diagnosis,
        explanation,
        action,
        in_use: cert.in_use,
        owner: cert.tags.get(TAG_OWNER).cloned(),
    }
}

/// Whether a notification is due for `step`, given the step last notified for the same
/// certificate and NotAfter.
pub fn notification_due(step: Option<LadderStep>, last_notified: Option<LadderStep>) -> bool {
    match (step, last_notified) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(now), Some(last)) => now > last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Tags;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    fn cert(days: Option<i64>, cert_type: CertType) -> Certificate {
        Certificate {
            arn: "arn:aws:acm:us-east-1:123456789012:certificate/x".into(),
            domain: "api.example.com".into(),
            region: "us-east-1".into(),
            status: "ISSUED".into(),
            cert_type,
            not_after: days.map(|d| now() + Duration::days(d)),
            in_use: true,
            renewal_eligibility: Some("ELIGIBLE".into()),
            renewal_status: None,
            renewal_failure_reason: None,
            validation_method: Some("DNS".into()),
            key_algorithm: None,
            tags: Tags::new(),
        }
    }

    #[test]
    fn ladder_step_is_the_nearest_rung_reached() {
        let ladder = [45, 30, 14, 7];
        let at = |d: i64| step_reached(now() + Duration::days(d), now(), &ladder);
        assert_eq!(at(200), None);
        assert_eq!(at(45), Some(LadderStep::Days(45)));
        assert_eq!(at(20), Some(LadderStep::Days(30)));
        assert_eq!(at(3), Some(LadderStep::Days(7)));
        assert_eq!(at(0), Some(LadderStep::Expired));
        assert_eq!(at(-2), Some(LadderStep::Expired));
    }

    #[test]
    fn urgency_orders_expired_above_every_day_step() {
        assert!(LadderStep::Expired > LadderStep::Days(7));
        assert!(LadderStep::Days(7) > LadderStep::Days(14));
        assert!(LadderStep::Days(45) < LadderStep::Days(30));
    }

    #[test]
    fn labels_round_trip() {
        for step in [
            LadderStep::Days(45),
            LadderStep::Days(7),
            LadderStep::Expired,
        ] {
            assert_eq!(LadderStep::parse(&step.label()), Some(step));
        }
        assert_eq!(LadderStep::parse("soon"), None);
    }

    #[test]
    fn notification_is_due_once_per_step() {
        let d30 = Some(LadderStep::Days(30));
        let d7 = Some(LadderStep::Days(7));
        assert!(notification_due(d30, None));
        assert!(!notification_due(d30, d30));
        assert!(notification_due(d7, d30));
        assert!(!notification_due(d30, d7), "never step back down");
        assert!(!notification_due(None, None));
    }

    #[test]
    fn diagnosis_explains_why_acm_will_not_renew() {
        assert_eq!(
            diagnose(&cert(Some(3), CertType::Imported)).0,
            Diagnosis::Imported
        );
        let mut c = cert(Some(3), CertType::AmazonIssued);
        assert_eq!(diagnose(&c).0, Diagnosis::AutoRenews);
        c.in_use = false;
        assert_eq!(diagnose(&c).0, Diagnosis::NotInUse);
        c.renewal_status = Some("PENDING_VALIDATION".into());
        let (d, why, _) = diagnose(&c);
        assert_eq!(d, Diagnosis::PendingValidation);
        assert!(why.contains("DNS"), "{why}");
        c.renewal_status = Some("FAILED".into());
        c.renewal_failure_reason = Some("CAA_ERROR".into());
        let (d, why, _) = diagnose(&c);
        assert_eq!(d, Diagnosis::RenewalFailed);
        assert!(why.contains("CAA_ERROR"), "{why}");
        c.renewal_eligibility = Some("INELIGIBLE".into());
        assert_eq!(diagnose(&c).0, Diagnosis::Ineligible);
        assert_eq!(
            diagnose(&cert(None, CertType::AmazonIssued)).0,
            Diagnosis::NotIssued
        );
    }

    #[test]
    fn days_left_counts_whole_days() {
        let p = Policy::default();
        let mut c = cert(Some(3), CertType::Imported);
        assert_eq!(assess(&c, now(), &p).days_left, Some(3));
        c.not_after = Some(now() - Duration::hours(60));
        assert_eq!(assess(&c, now(), &p).days_left, Some(-2));
        c.not_after = Some(now() - Duration::hours(12));
        let a = assess(&c, now(), &p);
        assert_eq!((a.days_left, a.step), (Some(0), Some(LadderStep::Expired)));
        c.not_after = Some(now() + Duration::hours(60));
        assert_eq!(assess(&c, now(), &p).days_left, Some(2));
    }
}
