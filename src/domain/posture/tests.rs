//! Unit tests of the posture: buckets, stages, statuses, funnel and controls.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::domain::credential_report::{ReportKey, ReportRow};
use crate::domain::model::{AccountId, CertType, LastUsed};

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
