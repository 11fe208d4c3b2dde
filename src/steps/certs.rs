//! Certificate expiry: the report (`keyrotor certs`) and the sweep that notifies owners once
//! per ladder step and emits a days-to-expiry metric per certificate.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::discover::{self, cert_regions};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::cert::{self, CertAssessment, LadderStep};
use crate::domain::inventory::DiscoveryProblem;
use crate::domain::model::{AccountId, Kind};
use crate::domain::policy::Policy;
use crate::domain::scope;
use crate::ports::{
    CertInventory, Clock, Identity, Notification, Notifier, PortError, PortResult, StateStore,
};

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
    pub status: &'static str,
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
    pub fn failed(&self) -> usize {
        self.notifications
            .iter()
            .filter(|n| n.status == "failed")
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

/// State-table key of the notifications for one certificate and NotAfter: a renewed
/// certificate (new NotAfter) starts its ladder over.
pub fn state_key(arn: &str, not_after: DateTime<Utc>) -> (String, String) {
    (
        format!("cert#{arn}"),
        format!("notified#{}", not_after.to_rfc3339()),
    )
}

fn notification(a: &CertAssessment, step: LadderStep, policy: &Policy) -> Notification {
    let when = a
        .not_after
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let headline = match step {
        LadderStep::Expired => format!("EXPIRED: certificate {} expired on {when}", a.domain),
        LadderStep::Days(_) => format!(
            "Certificate {} expires in {} days ({when})",
            a.domain,
            a.days_left.unwrap_or_default()
        ),
    };
    let owner = a
        .owner
        .clone()
        .or_else(|| policy.notifications.default_contact.clone());
    Notification {
        event: if step == LadderStep::Expired {
            "certificate-expired".into()
        } else {
            "certificate-expiring".into()
        },
        resource: a.arn.clone(),
        owner: owner.clone(),
        subject: headline.clone(),
        message: format!(
            "{headline}.\nCertificate: {}\nRegion: {}\nLadder step: {step}\nWhy: {}\nWhat to do: {}\nOwner: {}\nTo postpone these notifications, tag the certificate keyrotor:exempt = YYYY-MM-DD.",
            a.arn,
            a.region,
            a.explanation,
            a.action,
            owner
                .as_deref()
                .unwrap_or("unknown (tag the certificate with owner)")
        ),
        at: a.not_after,
        undo: Some(
            "renew or re-import the certificate; to postpone these notifications, tag it keyrotor:exempt = YYYY-MM-DD".into(),
        ),
    }
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
            let (pk, sk) = state_key(&a.arn, not_after);
            let last = ports
                .state
                .get(&pk, &sk)
                .await?
                .and_then(|attrs| attrs.get("step").and_then(|s| LadderStep::parse(s)));
            if !cert::notification_due(Some(step), last) {
                notifications.push(Notified {
                    arn: a.arn.clone(),
                    domain: a.domain.clone(),
                    step,
                    status: "already-notified",
                    message_id: None,
                    error: None,
                });
                assessments.push(a);
                continue;
            }
            let n = notification(&a, step, policy);
            let entry = |phase: Phase,
                         outcome: Option<Outcome>,
                         after: Option<String>,
                         detail: String| Entry {
                resource: ResourceRef {
                    kind: Kind::Certs,
                    account: caller.account.to_string(),
                    region: a.region.clone(),
                    id: a.arn.clone(),
                },
                action: "notify".into(),
                phase,
                outcome,
                reason: if step == LadderStep::Expired {
                    "expired".into()
                } else {
                    "expiring".into()
                },
                detail,
                before: None,
                after,
                dry_run: false,
                policy_time: now,
            };
            // Audit first: without an intent record, no notification is sent.
            log.append(
                &entry(
                    Phase::Intent,
                    None,
                    None,
                    format!("ladder step {step}: {}", n.subject),
                ),
                wall.now(),
            )
            .await?;
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
                    log.append(
                        &entry(
                            Phase::Outcome,
                            Some(Outcome::Succeeded),
                            message_id.clone(),
                            detail,
                        ),
                        wall.now(),
                    )
                    .await?;
                    let attrs = BTreeMap::from([
                        ("step".to_owned(), step.label()),
                        ("notified_at".to_owned(), wall.now().to_rfc3339()),
                        ("run_id".to_owned(), run_id.clone()),
                    ]);
                    ports
                        .state
                        .advance(&pk, &sk, u64::from(step.urgency()), &attrs)
                        .await?;
                    notifications.push(Notified {
                        arn: a.arn.clone(),
                        domain: a.domain.clone(),
                        step,
                        status: "sent",
                        message_id,
                        error: None,
                    });
                }
                Err(e) => {
                    log.append(
                        &entry(Phase::Outcome, Some(Outcome::Failed), None, e.to_string()),
                        wall.now(),
                    )
                    .await?;
                    if let PortError::NoCredentials { .. } = e {
                        return Err(e);
                    }
                    notifications.push(Notified {
                        arn: a.arn.clone(),
                        domain: a.domain.clone(),
                        step,
                        status: "failed",
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

#[cfg(test)]
mod tests {
    //! Safety invariant 4 (audit first), with in-memory ports: a notification is sent only
    //! after its intent record is written, and never when that write fails.

    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::model::{CertType, Certificate, Tags};
    use crate::ports::SystemClock;
    use crate::steps::memory::{Me, MemAudit, MemState};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    struct OneCert;
    #[async_trait]
    impl CertInventory for OneCert {
        async fn certificates(
            &self,
            region: &str,
            _detail_if: &(dyn Fn(Option<DateTime<Utc>>) -> bool + Send + Sync),
        ) -> PortResult<Vec<Certificate>> {
            Ok(vec![Certificate {
                arn: "arn:aws:acm:us-east-1:123456789012:certificate/one".into(),
                domain: "one.example.com".into(),
                region: region.into(),
                status: "ISSUED".into(),
                cert_type: CertType::Imported,
                not_after: Some(now() + Duration::days(3)),
                in_use: true,
                renewal_eligibility: None,
                renewal_status: None,
                renewal_failure_reason: None,
                validation_method: None,
                key_algorithm: None,
                tags: Tags::new(),
            }])
        }
    }

    /// Records the number of audit records present when each notification was sent.
    struct Spy<'a> {
        audit: &'a MemAudit,
        sent_after: Mutex<Vec<usize>>,
    }
    #[async_trait]
    impl Notifier for Spy<'_> {
        async fn notify(&self, _n: &Notification) -> PortResult<Option<String>> {
            let written = self.audit.records.lock().unwrap().len();
            self.sent_after.lock().unwrap().push(written);
            Ok(Some("msg-1".into()))
        }
    }

    async fn run(audit: &MemAudit, state: &MemState, notifier: &Spy<'_>) -> PortResult<CertSweep> {
        let ports = SweepPorts {
            identity: &Me,
            certs: &OneCert,
            state,
            notifier,
            audit,
        };
        sweep(
            &ports,
            &Policy::default(),
            "us-east-1",
            now(),
            &SystemClock::Fixed(now()),
        )
        .await
    }

    #[tokio::test]
    async fn no_notification_is_sent_when_its_intent_cannot_be_audited() {
        let audit = MemAudit {
            failing: true,
            ..Default::default()
        };
        let state = MemState::default();
        let spy = Spy {
            audit: &audit,
            sent_after: Mutex::new(Vec::new()),
        };
        let err = run(&audit, &state, &spy).await.unwrap_err();
        assert!(err.to_string().contains("dynamodb:PutItem"), "{err}");
        assert!(
            spy.sent_after.lock().unwrap().is_empty(),
            "notified without an intent record"
        );
        assert!(
            state.0.lock().unwrap().is_empty(),
            "state advanced without a notification"
        );
    }

    #[tokio::test]
    async fn a_notification_is_sent_after_its_intent_and_followed_by_its_outcome() {
        let audit = MemAudit::default();
        let state = MemState::default();
        let spy = Spy {
            audit: &audit,
            sent_after: Mutex::new(Vec::new()),
        };
        let done = run(&audit, &state, &spy).await.unwrap();
        assert_eq!(done.notifications.len(), 1);
        assert_eq!(
            *spy.sent_after.lock().unwrap(),
            vec![1],
            "exactly the intent was written before sending"
        );
        let (anchors, records): (Vec<_>, Vec<_>) = audit
            .records
            .lock()
            .unwrap()
            .clone()
            .into_iter()
            .partition(|r| r.resource_id == crate::audit::ANCHOR_ID);
        let phases: Vec<_> = records
            .iter()
            .map(|r| (r.seq, r.phase, r.outcome))
            .collect();
        assert_eq!(
            phases,
            vec![
                (1, Phase::Intent, None),
                (2, Phase::Outcome, Some(Outcome::Succeeded))
            ]
        );
        assert_eq!(anchors.len(), 1, "the run anchored its records");
        assert_eq!(records[1].after.as_deref(), Some("msg-1"));

        // The same sweep again: already notified, nothing sent, nothing audited.
        let again = run(&audit, &state, &spy).await.unwrap();
        assert_eq!(again.notifications[0].status, "already-notified");
        assert_eq!(spy.sent_after.lock().unwrap().len(), 1);
        assert_eq!(
            audit.records.lock().unwrap().len(),
            3,
            "no new record, no new anchor"
        );
    }
}
