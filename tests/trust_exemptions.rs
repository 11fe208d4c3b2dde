//! Exemption tags are a trust boundary: anyone who may tag a user can write
//! `keyrotor:exempt`. One tag must not take a credential out of keyrotor's reach for years,
//! and a value keyrotor cannot read must not either. Against the emulator: a far-future
//! exemption (past `[exemptions] max_exemption_days`) and an unreadable one are not
//! honoured, are reported, and their keys are acted on; an ordinary exemption still is.
//! The planner-level checks at the end need no emulator.

mod support;

use chrono::{DateTime, Duration, Utc};
use keyrotor::domain::action::ActionType;
use keyrotor::domain::inventory::Inventory;
use keyrotor::domain::model::{
    AccessKey, AccessKeyId, AccountId, IamUser, KeyStatus, Kind, TAG_EXEMPT, Tags,
};
use keyrotor::domain::plan::plan;
use keyrotor::domain::policy::Policy;
use serde_json::Value;
use support::{PolicyText, Timeline, World, ok, policy::CONTACT, run, seed};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 6, 1);

fn policy() -> tempfile::NamedTempFile {
    PolicyText::mode("enforce")
        .with("[exemptions]\nmax_exemption_days = 90\n")
        .with(CONTACT)
        .file()
}

/// A user tagged `keyrotor:exempt = exempt` with one key, created now and never used.
async fn user_with_key(iam: &aws_sdk_iam::Client, name: &str, exempt: &str) -> String {
    seed::user_with_key(iam, name, &[(TAG_EXEMPT, exempt)])
        .await
        .id
}

fn keyrotor(world: &World, policy: &tempfile::NamedTempFile, args: &[&str]) -> String {
    ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", TIME.t0().to_rfc3339())
        .arg("--config")
        .arg(policy.path())
        .args(args)))
}

fn entries<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v[field].as_array().map_or(&[], Vec::as_slice)
}

fn find<'a>(v: &'a Value, field: &str, resource: &str) -> Option<&'a Value> {
    entries(v, field).iter().find(|e| e["resource"] == resource)
}

#[tokio::test]
async fn a_far_future_or_unreadable_exemption_is_reported_and_its_key_is_acted_on() {
    // GIVEN three users whose keys were created 60 days ago and never used (due for a
    // warning), each tagged keyrotor:exempt: far in the future (past max_exemption_days =
    // 90), garbage, and 30 days ahead (an ordinary exemption)
    let world = World::new();
    world.set_clock(&(TIME.t0() - Duration::days(60)).to_rfc3339());
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let far = user_with_key(&iam, "far", "2099-01-01").await;
    let garbage = user_with_key(&iam, "garbage", "forever").await;
    let within = (TIME.t0() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let honoured = user_with_key(&iam, "honoured", &within).await;
    world.set_clock(&TIME.t0().to_rfc3339());
    let policy = policy();
    keyrotor(&world, &policy, &["init"]);

    // WHEN the plan is made
    let planned: Value = serde_json::from_str(&keyrotor(
        &world,
        &policy,
        &["plan", "--kind", "iam-keys", "--output", "json"],
    ))
    .unwrap();

    // THEN the far-future and the garbage exemption do not count: both keys are warned
    for key in [&far, &garbage] {
        let action = find(&planned, "actions", key).unwrap_or_else(|| panic!("{planned}"));
        assert_eq!(action["action"], "warn", "{action}");
        assert!(find(&planned, "skipped", key).is_none(), "{planned}");
    }
    // and each is reported, naming the tag and saying the user is in scope
    let too_long = find(&planned, "notices", "far").unwrap_or_else(|| panic!("{planned}"));
    assert_eq!(too_long["reason"], "exemption-too-long", "{too_long}");
    let detail = too_long["detail"].as_str().unwrap();
    assert!(
        detail.contains("'2099-01-01'")
            && detail.contains("max_exemption_days (90)")
            && detail.contains("2026-08-30"),
        "{detail}"
    );
    let unreadable = find(&planned, "notices", "garbage").unwrap_or_else(|| panic!("{planned}"));
    assert_eq!(unreadable["reason"], "exemption-unreadable", "{unreadable}");
    assert_eq!(
        unreadable["detail"],
        "tag keyrotor:exempt = 'forever' is not a date (YYYY-MM-DD); the resource is in scope"
    );
    // while the ordinary exemption still keeps its key alone, without a notice
    assert!(find(&planned, "actions", &honoured).is_none(), "{planned}");
    assert_eq!(
        find(&planned, "skipped", &honoured).map(|s| s["reason"].clone()),
        Some(Value::from("exempt")),
        "{planned}"
    );
    assert!(find(&planned, "notices", "honoured").is_none(), "{planned}");

    // AND the table shows the notices to a person
    let table = keyrotor(&world, &policy, &["plan", "--kind", "iam-keys"]);
    assert!(
        table.contains(
            "tag keyrotor:exempt = 'forever' is not a date (YYYY-MM-DD); the resource is in scope"
        ),
        "{table}"
    );
    assert!(table.contains("exemption-too-long"), "{table}");

    // WHEN the sweep runs, the two keys are acted on, the exempt one is not
    let done: Value = serde_json::from_str(&keyrotor(
        &world,
        &policy,
        &["sweep", "--kind", "iam-keys", "--output", "json"],
    ))
    .unwrap();
    let applied = |key: &str| {
        entries(&done, "applied")
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| (a["action"].clone(), a["status"].clone()))
    };
    for key in [&far, &garbage] {
        assert_eq!(
            applied(key),
            Some((Value::from("warn"), Value::from("done"))),
            "{done}"
        );
    }
    assert_eq!(applied(&honoured), None, "{done}");
}

// ---------------------------------------------------------------------------------------
// The planner alone.
// ---------------------------------------------------------------------------------------

fn inventory(exempt: &str, now: DateTime<Utc>) -> Inventory {
    let mut inv = Inventory::empty(AccountId::parse("123456789012").unwrap(), "us-east-1");
    inv.iam_users.push(IamUser {
        name: "app".into(),
        arn: "arn:aws:iam::123456789012:user/app".into(),
        path: "/".into(),
        created: now - Duration::days(400),
        tags: Tags::from([(TAG_EXEMPT.to_owned(), exempt.to_owned())]),
        keys: vec![AccessKey {
            id: AccessKeyId::parse("AKIAAAAAAAAAAAAA0001").unwrap(),
            status: KeyStatus::Active,
            created: now - Duration::days(60),
            last_used: None,
        }],
        is_root: false,
    });
    inv
}

#[test]
fn a_far_future_exemption_lapses_once_max_exemption_days_is_over_and_never_before_counts() {
    // A 2099 tag is never honoured in 2026, however the days pass: the cap does not move
    // the exemption forward with the clock.
    let policy = Policy::from_toml("[exemptions]\nmax_exemption_days = 90\n", "t").unwrap();
    for days in [0, 1, 89, 90, 91, 400] {
        let now = TIME.t0() + Duration::days(days);
        let p = plan(
            &inventory("2099-01-01", now),
            now,
            &policy,
            &[Kind::IamKeys],
        );
        assert_eq!(p.actions.len(), 1, "day {days}: {p:#?}");
        assert_eq!(p.actions[0].action, ActionType::Warn);
        assert!(p.skipped.is_empty(), "day {days}: {p:#?}");
        assert_eq!(p.notices[0].reason, "exemption-too-long");
    }
    // An exemption within the cap is honoured until its day, then lapses.
    let until = (TIME.t0() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let p = plan(
        &inventory(&until, TIME.t0()),
        TIME.t0(),
        &policy,
        &[Kind::IamKeys],
    );
    assert!(p.actions.is_empty(), "{p:#?}");
    assert_eq!(p.skipped[0].reason, "exempt");
    let later = TIME.t0() + Duration::days(31);
    let p = plan(&inventory(&until, later), later, &policy, &[Kind::IamKeys]);
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    assert!(p.notices.is_empty(), "{p:#?}");
}

#[test]
fn an_unreadable_exemption_is_in_scope_and_reported() {
    let policy = Policy::default();
    let p = plan(
        &inventory("forever", TIME.t0()),
        TIME.t0(),
        &policy,
        &[Kind::IamKeys],
    );
    assert_eq!(p.actions.len(), 1, "{p:#?}");
    assert!(p.skipped.is_empty(), "{p:#?}");
    assert_eq!(p.notices.len(), 1, "{p:#?}");
    assert_eq!(p.notices[0].resource, "app");
    assert_eq!(p.notices[0].reason, "exemption-unreadable");
    assert_eq!(
        p.notices[0].detail,
        "tag keyrotor:exempt = 'forever' is not a date (YYYY-MM-DD); the resource is in scope"
    );
}
