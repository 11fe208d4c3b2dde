//! The compliance controls an auditor asks about (CIS 1.12 and 1.14, Security Hub IAM.3,
//! IAM.22 and ACM.1), checked against the active keys and the certificates.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::certs::CertLine;
use super::iam_keys::ActiveKey;
use super::{CERT_DAYS, ROTATION_DAYS, UNUSED_DAYS};

/// Whether the account meets a control, as far as keyrotor's inventory shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlStatus {
    Passed,
    Failed,
    /// Nothing in the account the control applies to.
    NotApplicable,
}

#[derive(Debug, Clone, Serialize)]
pub struct Control {
    /// e.g. `CIS 1.14`, `IAM.3`.
    pub id: &'static str,
    pub title: &'static str,
    pub status: ControlStatus,
    /// Resources that fail it (at most 20 listed; `failing` counts all).
    pub failing: usize,
    pub resources: Vec<String>,
    /// What keyrotor does about it.
    pub remedy: &'static str,
}

fn control(
    id: &'static str,
    title: &'static str,
    applies: bool,
    failing: Vec<String>,
    remedy: &'static str,
) -> Control {
    Control {
        id,
        title,
        status: if !failing.is_empty() {
            ControlStatus::Failed
        } else if applies {
            ControlStatus::Passed
        } else {
            ControlStatus::NotApplicable
        },
        failing: failing.len(),
        resources: failing.into_iter().take(20).collect(),
        remedy,
    }
}

pub(super) fn controls(
    active: &[ActiveKey],
    certs: &[CertLine],
    now: DateTime<Utc>,
) -> Vec<Control> {
    let name = |k: &ActiveKey| format!("{} (key {}, {} d)", k.user, k.slot, k.age);
    let old: Vec<String> = active
        .iter()
        .filter(|k| k.age > ROTATION_DAYS)
        .map(name)
        .collect();
    let idle: Vec<String> = active
        .iter()
        .filter(|k| k.idle >= UNUSED_DAYS)
        .map(|k| format!("{} (key {}, unused {} d)", k.user, k.slot, k.idle))
        .collect();
    let expiring: Vec<String> = certs
        .iter()
        .filter(|c| {
            c.not_after
                .is_some_and(|t| t - now <= Duration::days(CERT_DAYS))
        })
        .map(|c| format!("{} ({} d)", c.domain, c.days_left.unwrap_or(0)))
        .collect();
    let keys = !active.is_empty();
    const ROTATE: &str = "keyrotor escalates keys past max age to their owner, rotates keys bound to a secret, and migrates tagged users to roles";
    const IDLE: &str =
        "keyrotor warns, deactivates and deletes keys unused for [iam_keys] unused_days";
    vec![
        control(
            "CIS 1.12",
            "Credentials unused for 45 days or more are disabled (access keys)",
            keys,
            idle.clone(),
            IDLE,
        ),
        control(
            "CIS 1.14",
            "Access keys are rotated every 90 days or less",
            keys,
            old.clone(),
            ROTATE,
        ),
        control(
            "IAM.3",
            "IAM users' access keys should be rotated every 90 days or less",
            keys,
            old,
            ROTATE,
        ),
        control(
            "IAM.22",
            "IAM user credentials unused for 45 days should be removed (access keys)",
            keys,
            idle,
            IDLE,
        ),
        control(
            "ACM.1",
            "Certificates should be renewed at least 30 days before they expire",
            !certs.is_empty(),
            expiring,
            "keyrotor notifies owners on the ladder and says why ACM will not renew",
        ),
    ]
}
