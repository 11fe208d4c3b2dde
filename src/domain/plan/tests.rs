//! Unit tests of the planner for IAM keys (the property tests are in tests/planner_properties.rs).

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::action::{ActionType, Reason};
use crate::domain::model::{AccessKey, AccessKeyId, IamUser, KeyStatus, LastUsed, Tags};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

fn key(n: u32, status: KeyStatus, age_days: i64, used_days_ago: Option<i64>) -> AccessKey {
    AccessKey {
        id: AccessKeyId::parse(&format!("AKIAAAAAAAAAAAAA{n:04}")).unwrap(),
        status,
        created: now() - Duration::days(age_days),
        last_used: used_days_ago.map(|d| LastUsed {
            at: now() - Duration::days(d),
            service: None,
            region: None,
        }),
    }
}

fn user(keys: Vec<AccessKey>) -> IamUser {
    IamUser {
        name: "bob".into(),
        arn: "arn:aws:iam::123456789012:user/bob".into(),
        path: "/".into(),
        created: now() - Duration::days(500),
        tags: Tags::new(),
        keys,
        is_root: false,
    }
}

fn plan_users(users: Vec<IamUser>, root_keys: u32) -> Plan {
    let mut inv = Inventory::empty(AccountId::parse("123456789012").unwrap(), "us-east-1");
    inv.iam_users = users;
    inv.root_active_keys = root_keys;
    plan(&inv, now(), &Policy::default(), &Kind::ALL)
}

#[test]
fn rotation_is_blocked_when_the_other_key_is_active_and_in_use() {
    let p = plan_users(
        vec![user(vec![
            key(1, KeyStatus::Active, 120, Some(1)),
            key(2, KeyStatus::Active, 10, Some(1)),
        ])],
        0,
    );
    assert_eq!(p.actions.len(), 1);
    assert_eq!(p.actions[0].action, ActionType::Rotate);
    assert!(
        p.actions[0]
            .blocked
            .as_deref()
            .unwrap()
            .starts_with("two-key-limit")
    );
}

#[test]
fn rotation_is_not_blocked_when_the_other_key_can_make_room() {
    let p = plan_users(
        vec![user(vec![
            key(1, KeyStatus::Active, 120, Some(1)),
            key(2, KeyStatus::Active, 10, None),
        ])],
        0,
    );
    let rotate = p
        .actions
        .iter()
        .find(|a| a.action == ActionType::Rotate)
        .unwrap();
    assert_eq!(
        rotate.blocked, None,
        "a never-used key may be removed to make room"
    );
}

#[test]
fn an_unused_key_is_warned_not_rotated_even_past_max_age() {
    let p = plan_users(
        vec![user(vec![key(1, KeyStatus::Active, 200, Some(60))])],
        0,
    );
    assert_eq!(
        (p.actions[0].action, p.actions[0].reason),
        (ActionType::Warn, Reason::Unused)
    );
}

#[test]
fn a_recently_deactivated_key_is_not_deleted_yet() {
    // Inactive, last used 50 days ago: quiet for less than unused (45) + delete_after (30).
    let p = plan_users(
        vec![user(vec![key(1, KeyStatus::Inactive, 300, Some(50))])],
        0,
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let p = plan_users(
        vec![user(vec![key(1, KeyStatus::Inactive, 300, Some(80))])],
        0,
    );
    assert_eq!(p.actions[0].action, ActionType::Delete);
}

#[test]
fn root_access_keys_are_reported_and_never_acted_on() {
    let p = plan_users(vec![], 1);
    assert!(p.actions.is_empty());
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].reason, "root-user");
    assert!(
        p.skipped[0].detail.contains("1 active access key"),
        "{}",
        p.skipped[0].detail
    );
}
