//! Certificate expiry: the report (`keyrotor certs`) and the sweep that notifies owners once
//! per ladder step and emits a days-to-expiry metric per certificate.
//!
//! Where things live: this module holds the report, the sweep and their types; `notice`
//! words what the owner is told; `store` is the only code that reads or writes which
//! ladder step was notified.

mod notice;
mod store;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::discover::{self, cert_regions};
use super::status::Status;
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::cert::{self, CertAssessment, LadderStep};
use crate::domain::inventory::DiscoveryProblem;
use crate::domain::model::{AccountId, Kind};
use crate::domain::policy::Policy;
use crate::domain::scope;
use crate::ports::{CertInventory, Clock, Identity, Notifier, PortError, PortResult, StateStore};
use crate::steps::audited::Mutation;
use notice::notification;
use store::{LadderRecord, LadderStore};

pub use store::state_key;

/// The certificate report.
#[derive(Debug, Clone, Serialize)]
pub struct CertReport {
    pub generated_at: DateTime<Utc>,
    pub account: AccountId,
    /// Most urgent first.
    pub certificates: Vec<CertAssessment>,
    /// Regions that could not be read.
    pub problems: Vec<DiscoveryProblem>,
}

/// Every certificate of `regions` (or the policy's) expiring within `within_days` (or
/// without NotAfter), assessed and sorted by urgency. Read-only.
pub async fn report(
    identity: &dyn Identity,
    certs: &dyn CertInventory,
    policy: &Policy,
    regions: &[String],
    default_region: &str,
    now: DateTime<Utc>,
    within_days: i64,
) -> PortResult<CertReport> {
    let caller = identity.caller().await?;
    let regions = if regions.is_empty() {
        cert_regions(policy, default_region)
    } else {
        regions.to_vec()
    };
    let (found, problems) = discover::certificates(certs, &regions, now, within_days).await?;
    let mut certificates: Vec<CertAssessment> = found
        .iter()
        .map(|c| cert::assess(c, now, policy))
        .filter(|a| a.days_left.is_none_or(|d| d <= within_days))
        .collect();
    certificates.sort_by(|a, b| a.urgency_key().cmp(&b.urgency_key()));
    Ok(CertReport {
        generated_at: now,
        account: caller.account,
        certificates,
        problems,
    })
}

/// What the sweep did for one certificate at a ladder step.
#[derive(Debug, Clone, Serialize)]
pub struct Notified {
    pub arn: String,
    pub domain: String,
    pub step: LadderStep,
    /// `sent`, `already-notified` or `failed`.
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The sweep's result.
#[derive(Debug, Clone, Serialize)]
pub struct CertSweep {
    pub run_id: String,
    pub report: CertReport,
    pub notifications: Vec<Notified>,
    /// CloudWatch Embedded Metric Format documents, one per certificate with a NotAfter.
    #[serde(skip)]
    pub metrics: Vec<serde_json::Value>,
}

impl CertSweep {
    /// Notifications that failed ([`Status::is_failure`]).
    pub fn failed(&self) -> usize {
        self.notifications
            .iter()
            .filter(|n| n.status.is_failure())
            .count()
    }
}

/// The ports the sweep writes through.
pub struct SweepPorts<'a> {
    pub identity: &'a dyn Identity,
    pub certs: &'a dyn CertInventory,
    pub state: &'a dyn StateStore,
    pub notifier: &'a dyn Notifier,
    pub audit: &'a dyn crate::ports::AuditStore,
}

/// Reports, notifies each certificate once per ladder step (de-duplicated in the state
/// table, audited before and after), and builds one metric per certificate. Exempt
/// certificates are reported but never notified.
pub async fn sweep(
    ports: &SweepPorts<'_>,
    policy: &Policy,
    default_region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> PortResult<CertSweep> {
    let caller = ports.identity.caller().await?;
    let regions = cert_regions(policy, default_region);
    let farthest = policy.certs.ladder_days.first().copied().unwrap_or(0);
    let (found, problems) =
        discover::certificates(ports.certs, &regions, now, i64::from(farthest)).await?;
    let run_id = super::new_run_id(wall.now());
    let log = AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone());
    let ladder = LadderStore::new(ports.state);
    let result = async {
        let mut assessments: Vec<CertAssessment> = Vec::new();
        let mut notifications = Vec::new();
        let mut metrics = Vec::new();
        let progress = crate::progress::Phase::start("certificates", found.len());
        for c in &found {
            progress.step();
            let a = cert::assess(c, now, policy);
            if let Some(days) = a.days_left {
                metrics.push(crate::metrics::certificate_days(&a, days, now));
            }
            let (Some(step), Some(not_after)) = (a.step, a.not_after) else {
                assessments.push(a);
                continue;
            };
            if scope::exemption(&c.tags, now, policy).is_some() {
                assessments.push(a);
                continue;
            }
            let last = ladder.last_step(&a.arn, not_after).await?;
            if !cert::notification_due(Some(step), last) {
                notifications.push(Notified {
                    arn: a.arn.clone(),
                    domain: a.domain.clone(),
                    step,
                    status: Status::AlreadyNotified,
                    message_id: None,
                    error: None,
                });
                assessments.push(a);
                continue;
            }
            let n = notification(&a, step, policy);
            let intent = Entry {
                resource: ResourceRef {
                    kind: Kind::Certs,
                    account: caller.account.to_string(),
                    region: a.region.clone(),
                    id: a.arn.clone(),
                },
                action: "notify".into(),
                phase: Phase::Intent,
                outcome: None,
                reason: if step == LadderStep::Expired {
                    "expired".into()
                } else {
                    "expiring".into()
                },
                detail: format!("ladder step {step}: {}", n.subject),
                before: None,
                after: None,
                dry_run: false,
                policy_time: now,
            };
            // Audit first: without an intent record, no notification is sent. The
            // outcome's `after` is the message id, so the mutation is ended here.
            let mutation = Mutation::begin(&log, wall, intent).await?;
            match ports.notifier.notify(&n).await {
                Ok(message_id) => {
                    let detail = match &message_id {
                        Some(_) => format!("ladder step {step}: sent to the SNS topic"),
                        None => {
                            format!(
                                "ladder step {step}: no sns_topic_arn configured, reported only"
                            )
                        }
                    };
                    mutation
                        .end(Outcome::Succeeded, detail, Some(message_id.clone()))
                        .await?;
                    let notified = LadderRecord {
                        step,
                        notified_at: wall.now(),
                        run_id: run_id.clone(),
                    };
                    ladder.advance(&a.arn, not_after, &notified).await?;
                    notifications.push(Notified {
                        arn: a.arn.clone(),
                        domain: a.domain.clone(),
                        step,
                        status: Status::Sent,
                        message_id,
                        error: None,
                    });
                }
                Err(e) => {
                    mutation.failed(&e).await?;
                    if let PortError::NoCredentials { .. } = e {
                        return Err(e);
                    }
                    notifications.push(Notified {
                        arn: a.arn.clone(),
                        domain: a.domain.clone(),
                        step,
                        status: Status::Failed,
                        message_id: None,
                        error: Some(e.to_string()),
                    });
                }
            }
            assessments.push(a);
        }
        assessments.sort_by(|a, b| a.urgency_key().cmp(&b.urgency_key()));
        Ok(CertSweep {
            run_id,
            report: CertReport {
                generated_at: now,
                account: caller.account,
                certificates: assessments,
                problems,
            },
            notifications,
            metrics,
        })
    }
    .await;
    log.finish(result, wall.now()).await
}
