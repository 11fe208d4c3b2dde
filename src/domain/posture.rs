//! The credential posture of one account: what `keyrotor report` shows an auditor.
//!
//! [`Posture::build`] is pure: it takes what discovery, the state table and the audit table
//! returned, and computes the distributions, the funnel and the compliance summary. The HTML
//! and JSON renderings are views of this one value.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::api_rotation::{Rotation, RotationStage};
use super::audit_record::{AuditRecord, Phase};
use super::cert::{self, Diagnosis};
use super::credential_report::ReportRow;
use super::lifecycle::{KeyRecord, Stage};
use super::migration::MigrationStage;
use super::model::{ApiKey, Certificate, Kind, TAG_SECRET};
use super::plan::Plan;
use super::policy::Policy;

/// The 90-day rotation line of CIS 1.14 and Security Hub IAM.3.
pub const ROTATION_DAYS: i64 = 90;
/// The 45-day unused line of CIS 1.12 and Security Hub IAM.22.
pub const UNUSED_DAYS: i64 = 45;
/// Security Hub ACM.1's default `daysToExpiration`.
pub const CERT_DAYS: i64 = 30;

/// IAM key ages are counted into these buckets (lower bound inclusive, in days).
pub const AGE_BUCKETS: [(i64, Option<i64>); 6] = [
    (0, Some(30)),
    (30, Some(60)),
    (60, Some(90)),
    (90, Some(180)),
    (180, Some(365)),
    (365, None),
];

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
pub struct IamPosture {
    /// Keys in the account (active and inactive, root excluded).
    pub keys: usize,
    pub active_keys: usize,
    /// Active keys per age bucket ([`AGE_BUCKETS`]).
    pub age_buckets: Vec<Count>,
    /// Active keys older than [`ROTATION_DAYS`].
    pub over_rotation_line: usize,
    /// Keys by keyrotor lifecycle stage; `active` covers active keys with none in progress.
    pub by_stage: Vec<Count>,
    pub root_active_keys: usize,
    pub oldest_active_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyLine {
    pub id: String,
    pub name: String,
    pub age_days: i64,
    /// `unmanaged` (no keyrotor:secret tag), `current`, `due`, `rotating: <stage>`, `disabled`.
    pub status: String,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    pub recorded_at: String,
    pub kind: Kind,
    pub resource_id: String,
    pub action: String,
    pub phase: Phase,
    pub outcome: Option<String>,
    pub reason: String,
}

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

/// An active key of the report, with its user, for the controls.
struct ActiveKey<'a> {
    user: &'a str,
    slot: usize,
    age: i64,
    idle: i64,
}

impl Posture {
    pub fn build(input: &PostureInput<'_>) -> Posture {
        let now = input.now;
        let users: Vec<&ReportRow> = input.report.iter().filter(|r| !r.is_root()).collect();
        let root_active_keys = input
            .report
            .iter()
            .filter(|r| r.is_root())
            .flat_map(|r| r.keys.iter())
            .filter(|k| k.active)
            .count();
        let active: Vec<ActiveKey> = users
            .iter()
            .flat_map(|r| {
                r.keys
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| k.active)
                    .map(|(slot, k)| ActiveKey {
                        user: r.user.as_str(),
                        slot: slot + 1,
                        age: days(k.last_rotated, now),
                        idle: days(k.last_used.as_ref().map_or(k.last_rotated, |u| u.at), now),
                    })
            })
            .collect();
        let inactive = users
            .iter()
            .flat_map(|r| r.keys.iter())
            .filter(|k| !k.active)
            .count();
        let iam = IamPosture {
            keys: active.len() + inactive,
            active_keys: active.len(),
            age_buckets: AGE_BUCKETS
                .iter()
                .map(|&(lo, hi)| {
                    let n = active
                        .iter()
                        .filter(|k| k.age >= lo && hi.is_none_or(|hi| k.age < hi))
                        .count();
                    count(
                        match hi {
                            Some(hi) => format!("{lo}–{hi} d"),
                            None => format!("{lo}+ d"),
                        },
                        n,
                    )
                })
                .collect(),
            over_rotation_line: active.iter().filter(|k| k.age > ROTATION_DAYS).count(),
            by_stage: by_stage(input.key_records, active.len(), inactive),
            root_active_keys,
            oldest_active_days: active.iter().map(|k| k.age).max(),
        };

        let due: Vec<&str> = input
            .plan
            .actions
            .iter()
            .filter(|a| a.kind == Kind::ApiKeys)
            .map(|a| a.resource.as_str())
            .collect();
        let mut api_keys: Vec<ApiKeyLine> = input
            .api_keys
            .iter()
            .map(|k| ApiKeyLine {
                id: k.id.clone(),
                name: k.name.clone(),
                age_days: days(k.created, now),
                status: api_status(k, input.rotations, &due),
            })
            .collect();
        api_keys.sort_by(|a, b| b.age_days.cmp(&a.age_days).then(a.id.cmp(&b.id)));
        let mut api_key_status: BTreeMap<String, usize> = BTreeMap::new();
        for k in &api_keys {
            let group = k.status.split(':').next().unwrap_or_default().to_owned();
            *api_key_status.entry(group).or_default() += 1;
        }

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

        let (migration_funnel, migration_setbacks) = funnel(input.migration);

        let mut recent: Vec<&AuditRecord> = input.audit.iter().filter(|r| !r.dry_run).collect();
        recent.sort_by(|a, b| {
            (&b.recorded_at, &b.resource, b.seq).cmp(&(&a.recorded_at, &a.resource, a.seq))
        });
        let recent_actions = recent
            .into_iter()
            .take(input.recent)
            .map(|r| AuditLine {
                recorded_at: r.recorded_at.clone(),
                kind: r.kind,
                resource_id: r.resource_id.clone(),
                action: r.action.clone(),
                phase: r.phase,
                outcome: r.outcome.map(|o| o.as_str().to_owned()),
                reason: r.reason.clone(),
            })
            .collect();

        let controls = controls(&active, &certificates, now);
        Posture {
            generated_at: now,
            account: input.account.to_owned(),
            region: input.region.to_owned(),
            iam,
            api_key_status: api_key_status
                .into_iter()
                .map(|(label, n)| count(label, n))
                .collect(),
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

/// Key counts per lifecycle stage. Records describe keys keyrotor acts on; the remaining
/// active keys are `active`, the remaining inactive ones `inactive (not by keyrotor)`.
fn by_stage(records: &[KeyRecord], active: usize, inactive: usize) -> Vec<Count> {
    let live: Vec<&KeyRecord> = records
        .iter()
        .filter(|r| !matches!(r.stage, Stage::Deleted | Stage::Active))
        .collect();
    let with = |stage: Stage| live.iter().filter(|r| r.stage == stage).count();
    let deactivated = with(Stage::Deactivated);
    let in_lifecycle_active = live.len() - deactivated;
    let mut out = vec![count("active", active.saturating_sub(in_lifecycle_active))];
    for stage in [
        Stage::Warned,
        Stage::Escalated,
        Stage::Superseded,
        Stage::Reactivated,
        Stage::Deactivated,
    ] {
        out.push(count(stage.as_str(), with(stage)));
    }
    out.push(count(
        "inactive (not by keyrotor)",
        inactive.saturating_sub(deactivated),
    ));
    out
}

fn api_status(key: &ApiKey, rotations: &[Rotation], due: &[&str]) -> String {
    if let Some(r) = rotations
        .iter()
        .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted)
    {
        return format!("rotating: {}", r.stage.as_str());
    }
    if rotations
        .iter()
        .any(|r| r.new_key.as_deref() == Some(key.id.as_str()) && r.stage != RotationStage::Deleted)
    {
        return "replacement: in rotation".into();
    }
    if !key.tags.contains_key(TAG_SECRET) {
        "unmanaged".into()
    } else if !key.enabled {
        "disabled".into()
    } else if due.contains(&key.id.as_str()) {
        "due".into()
    } else {
        "current".into()
    }
}

fn funnel(counts: &BTreeMap<String, usize>) -> (Vec<Count>, Vec<Count>) {
    let order: Vec<&str> = std::iter::once("candidate")
        .chain(
            MigrationStage::ALL
                .iter()
                .filter(|s| !matches!(s, MigrationStage::Regressed | MigrationStage::RolledBack))
                .map(|s| s.as_str()),
        )
        .collect();
    let at = |stage: &str| counts.get(stage).copied().unwrap_or(0);
    let funnel = order
        .iter()
        .enumerate()
        .map(|(i, stage)| count(*stage, order[i..].iter().map(|s| at(s)).sum()))
        .collect();
    let setbacks = [MigrationStage::Regressed, MigrationStage::RolledBack]
        .iter()
        .map(|s| count(s.as_str(), at(s.as_str())))
        .collect();
    (funnel, setbacks)
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

fn controls(active: &[ActiveKey], certs: &[CertLine], now: DateTime<Utc>) -> Vec<Control> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credential_report::ReportKey;
    use crate::domain::model::{AccountId, CertType, LastUsed};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    fn row(user: &str, keys: &[(bool, i64, Option<i64>)]) -> ReportRow {
        ReportRow {
            user: user.into(),
            arn: format!("arn:aws:iam::123456789012:user/{user}"),
            created: Some(now() - Duration::days(800)),
            keys: keys
                .iter()
                .map(|&(active, age, used)| ReportKey {
                    active,
                    last_rotated: now() - Duration::days(age),
                    last_used: used.map(|d| LastUsed {
                        at: now() - Duration::days(d),
                        service: None,
                        region: None,
                    }),
                })
                .collect(),
        }
    }

    fn cert(domain: &str, days_left: i64) -> Certificate {
        Certificate {
            arn: format!("arn:aws:acm:us-east-1:123456789012:certificate/{domain}"),
            domain: domain.into(),
            region: "us-east-1".into(),
            status: "ISSUED".into(),
            cert_type: CertType::Imported,
            not_after: Some(now() + Duration::days(days_left)),
            in_use: true,
            renewal_eligibility: None,
            renewal_status: None,
            renewal_failure_reason: None,
            validation_method: None,
            key_algorithm: None,
            tags: Default::default(),
        }
    }

    fn build(report: &[ReportRow], certs: &[Certificate], migration: &[(&str, usize)]) -> Posture {
        let policy = Policy::default();
        let plan = Plan {
            generated_at: now(),
            mode: policy.mode,
            account: AccountId::parse("123456789012").unwrap(),
            actions: vec![],
            skipped: vec![],
            notices: vec![],
            keys: vec![],
        };
        let migration: BTreeMap<String, usize> =
            migration.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        Posture::build(&PostureInput {
            now: now(),
            account: "123456789012",
            region: "us-east-1",
            policy: &policy,
            report,
            key_records: &[],
            api_keys: &[],
            rotations: &[],
            plan: &plan,
            certificates: certs,
            migration: &migration,
            audit: &[],
            recent: 10,
        })
    }

    fn status(p: &Posture, id: &str) -> (ControlStatus, usize) {
        let c = p.controls.iter().find(|c| c.id == id).unwrap();
        (c.status, c.failing)
    }

    #[test]
    fn ages_fall_into_buckets_and_only_active_keys_count() {
        let p = build(
            &[
                row("a", &[(true, 10, Some(1)), (true, 95, Some(2))]),
                row("b", &[(true, 400, None), (false, 500, None)]),
            ],
            &[],
            &[],
        );
        let counts: Vec<usize> = p.iam.age_buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![1, 0, 0, 1, 0, 1]);
        assert_eq!((p.iam.keys, p.iam.active_keys), (4, 3));
        assert_eq!(p.iam.over_rotation_line, 2);
        assert_eq!(p.iam.oldest_active_days, Some(400));
    }

    #[test]
    fn controls_fail_on_old_or_idle_keys_and_pass_otherwise() {
        let p = build(&[row("a", &[(true, 100, Some(50))])], &[], &[]);
        assert_eq!(status(&p, "CIS 1.14"), (ControlStatus::Failed, 1));
        assert_eq!(status(&p, "IAM.3"), (ControlStatus::Failed, 1));
        assert_eq!(status(&p, "CIS 1.12"), (ControlStatus::Failed, 1));
        assert_eq!(status(&p, "IAM.22"), (ControlStatus::Failed, 1));
        assert_eq!(status(&p, "ACM.1"), (ControlStatus::NotApplicable, 0));
        let p = build(
            &[row("a", &[(true, 80, Some(44))])],
            &[cert("ok.example.com", 31)],
            &[],
        );
        assert!(
            p.controls.iter().all(|c| c.status == ControlStatus::Passed),
            "{:?}",
            p.controls
        );
        let p = build(&[], &[cert("soon.example.com", 30)], &[]);
        assert_eq!(status(&p, "ACM.1"), (ControlStatus::Failed, 1));
        assert_eq!(status(&p, "CIS 1.14"), (ControlStatus::NotApplicable, 0));
    }

    #[test]
    fn a_never_used_key_is_idle_since_its_creation() {
        let p = build(&[row("a", &[(true, 46, None)])], &[], &[]);
        assert_eq!(status(&p, "IAM.22"), (ControlStatus::Failed, 1));
    }

    #[test]
    fn the_funnel_counts_each_user_for_every_stage_it_reached() {
        let p = build(
            &[],
            &[],
            &[
                ("candidate", 3),
                ("adopted", 2),
                ("migrated", 1),
                ("regressed", 1),
            ],
        );
        let funnel: Vec<(String, usize)> = p
            .migration_funnel
            .iter()
            .map(|c| (c.label.clone(), c.count))
            .collect();
        assert_eq!(funnel[0], ("candidate".into(), 6));
        assert_eq!(funnel[1], ("role-provisioned".into(), 3));
        assert_eq!(funnel[2], ("adopted".into(), 3));
        assert_eq!(funnel[3], ("keys-idle".into(), 1));
        assert_eq!(funnel.last().unwrap(), &("migrated".into(), 1));
        assert_eq!(p.migration_setbacks[0].count, 1);
    }

    #[test]
    fn certificates_are_listed_most_urgent_first() {
        let p = build(
            &[],
            &[cert("late.example.com", 60), cert("soon.example.com", 3)],
            &[],
        );
        assert_eq!(p.certificates[0].domain, "soon.example.com");
        assert_eq!(p.certificates[0].step.as_deref(), Some("7d"));
    }
}
