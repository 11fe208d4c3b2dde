//! `keyrotor plan` against the seeded emulator: the expected actions and reasons, the effect
//! of moving the clock, and the promise that `plan` writes nothing.

mod support;

use serde_json::Value;
use support::{World, example_policy, ok, run};

const NOW: &str = "2026-11-25T00:00:00Z";

fn key_of(manifest: &Value, user: &str, index: usize) -> String {
    manifest["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == user)
        .unwrap_or_else(|| panic!("user {user} in manifest"))["keys"][index]["access_key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn api_key_of(manifest: &Value, name: &str) -> String {
    manifest["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn cert_of(manifest: &Value, domain: &str) -> String {
    manifest["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["domain"] == domain)
        .unwrap()["arn"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn plan_json(world: &World, now: &str) -> Value {
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", now)
        .arg("--config")
        .arg(example_policy())
        .args(["plan", "--output", "json"]));
    serde_json::from_str(&ok(&out)).expect("plan output is JSON")
}

/// (action, reason) planned for `resource`, if any.
fn action_for(plan: &Value, resource: &str) -> Option<(String, String)> {
    let found: Vec<&Value> = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["resource"] == resource)
        .collect();
    assert!(
        found.len() <= 1,
        "more than one action for {resource}: {found:?}"
    );
    found.first().map(|a| {
        (
            a["action"].as_str().unwrap().to_owned(),
            a["reason"].as_str().unwrap().to_owned(),
        )
    })
}

fn skip_reason(plan: &Value, resource: &str) -> Option<String> {
    plan["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["resource"] == resource)
        .map(|s| s["reason"].as_str().unwrap().to_owned())
}

fn pair(action: &str, reason: &str) -> Option<(String, String)> {
    Some((action.to_owned(), reason.to_owned()))
}

#[test]
fn plan_json_lists_the_expected_actions_with_reasons() {
    // GIVEN the demo world seeded as of NOW
    let world = World::new();
    let m = world.seed_demo(NOW);

    // WHEN planning at NOW
    let plan = plan_json(&world, NOW);

    // THEN the document has the documented shape
    assert_eq!(plan["generated_at"], NOW);
    assert_eq!(plan["mode"], "plan");
    assert_eq!(plan["account"], world.account.as_str());
    for a in plan["actions"].as_array().unwrap() {
        for field in [
            "kind", "resource", "account", "region", "action", "reason", "detail", "due_at",
        ] {
            assert!(a.get(field).is_some(), "action lacks {field}: {a}");
        }
        assert!(
            a["due_at"].as_str().unwrap() <= NOW,
            "action not due yet: {a}"
        );
    }

    // AND each credential gets the action its state calls for
    assert_eq!(
        action_for(&plan, &key_of(&m, "bob", 0)),
        pair("rotate", "max-age-exceeded")
    );
    assert_eq!(
        action_for(&plan, &key_of(&m, "carol", 0)),
        pair("warn", "unused")
    );
    assert_eq!(
        action_for(&plan, &key_of(&m, "dave", 0)),
        pair("warn", "never-used")
    );
    assert_eq!(
        action_for(&plan, &key_of(&m, "frank", 0)),
        pair("warn", "unused"),
        "an expired exemption no longer counts"
    );
    assert_eq!(
        action_for(&plan, &key_of(&m, "grace", 0)),
        pair("delete", "inactive-unused")
    );
    assert_eq!(
        action_for(&plan, &key_of(&m, "grace", 1)),
        None,
        "grace's fresh key is left alone"
    );
    assert_eq!(action_for(&plan, &key_of(&m, "alice", 0)), None);
    assert_eq!(action_for(&plan, &key_of(&m, "ci-deployer", 0)), None);
    assert_eq!(
        action_for(&plan, "heidi"),
        pair("provision-role", "migrate-to")
    );
    assert_eq!(
        action_for(&plan, &api_key_of(&m, "partner-acme")),
        pair("rotate", "max-age-exceeded")
    );
    assert_eq!(action_for(&plan, &api_key_of(&m, "partner-globex")), None);
    assert_eq!(
        action_for(&plan, &cert_of(&m, "api.example.com")),
        pair("notify", "expiring")
    );
    assert_eq!(
        action_for(&plan, &cert_of(&m, "shop.example.com")),
        pair("notify", "expiring")
    );
    assert_eq!(
        action_for(&plan, &cert_of(&m, "old.example.com")),
        pair("notify", "expired")
    );
    assert_eq!(action_for(&plan, &cert_of(&m, "www.example.com")), None);

    // AND exclusions are reported with their reason, never acted on
    assert_eq!(
        skip_reason(&plan, &key_of(&m, "erin", 0)).as_deref(),
        Some("exempt")
    );
    assert_eq!(action_for(&plan, &key_of(&m, "erin", 0)), None);
    assert_eq!(
        skip_reason(&plan, &key_of(&m, "breakglass-admin", 0)).as_deref(),
        Some("break-glass")
    );
    assert_eq!(action_for(&plan, &key_of(&m, "breakglass-admin", 0)), None);
    assert_eq!(
        skip_reason(&plan, &api_key_of(&m, "legacy-mobile")).as_deref(),
        Some("unmanaged")
    );
    assert_eq!(
        skip_reason(&plan, &api_key_of(&m, "partner-initech")).as_deref(),
        Some("secret-missing")
    );

    // AND the certificate diagnosis says why ACM will not renew it
    let api_cert = plan["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["resource"] == cert_of(&m, "api.example.com").as_str())
        .unwrap();
    assert!(
        api_cert["detail"].as_str().unwrap().contains("imported"),
        "{api_cert}"
    );
    assert!(
        api_cert["detail"]
            .as_str()
            .unwrap()
            .contains("ladder step 7d"),
        "{api_cert}"
    );
}

#[test]
fn moving_keyrotor_now_100_days_ahead_changes_the_plan_as_the_policy_says() {
    // GIVEN the demo world seeded as of NOW
    let world = World::new();
    let m = world.seed_demo(NOW);

    // WHEN planning 100 days later
    let later = plan_json(&world, "2027-03-05T00:00:00Z");

    // THEN erin's exemption has run out and her never-used key is warned
    assert_eq!(
        action_for(&later, &key_of(&m, "erin", 0)),
        pair("warn", "never-used")
    );
    assert_eq!(skip_reason(&later, &key_of(&m, "erin", 0)), None);
    // AND keys last used "yesterday" are now unused for 101 days
    assert_eq!(
        action_for(&later, &key_of(&m, "alice", 0)),
        pair("warn", "unused")
    );
    assert_eq!(
        action_for(&later, &key_of(&m, "ci-deployer", 0)),
        pair("warn", "unused")
    );
    // AND the 20-day-old API key is past its 90 days
    assert_eq!(
        action_for(&later, &api_key_of(&m, "partner-globex")),
        pair("rotate", "max-age-exceeded")
    );
    // AND certificates that were expiring have expired; the 200-day one is still quiet
    assert_eq!(
        action_for(&later, &cert_of(&m, "shop.example.com")),
        pair("notify", "expired")
    );
    assert_eq!(action_for(&later, &cert_of(&m, "www.example.com")), None);
    // AND break-glass stays untouched whatever the time
    assert_eq!(action_for(&later, &key_of(&m, "breakglass-admin", 0)), None);
}

#[test]
fn plan_at_flag_overrides_keyrotor_now() {
    let world = World::new();
    let m = world.seed_demo(NOW);
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .arg("--config")
        .arg(example_policy())
        .args([
            "plan",
            "--output",
            "json",
            "--kind",
            "api-keys",
            "--at",
            "2027-03-05T00:00:00Z",
        ]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(plan["generated_at"], "2027-03-05T00:00:00Z");
    assert_eq!(
        action_for(&plan, &api_key_of(&m, "partner-globex")),
        pair("rotate", "max-age-exceeded")
    );
    assert!(
        plan["actions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["kind"] == "api-keys"),
        "--kind api-keys plans API keys only"
    );
}

#[tokio::test]
async fn plan_writes_nothing_anywhere() {
    // GIVEN a seeded world with its tables created
    let world = World::new();
    let m = world.seed_demo(NOW);
    ok(&run(world.keyrotor().args(["init"])));
    let sdk = world.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let tables_before = ddb
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
        .to_vec();
    let bob = key_of(&m, "bob", 0);
    let keys_before = iam
        .list_access_keys()
        .user_name("grace")
        .send()
        .await
        .unwrap();

    // WHEN planning (without --record), in table and JSON form
    ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .arg("--config")
        .arg(example_policy())
        .arg("plan")));
    plan_json(&world, NOW);

    // THEN no audit record was written, no table created, no key changed
    let items = ddb
        .scan()
        .table_name("keyrotor-audit")
        .send()
        .await
        .unwrap();
    assert_eq!(items.count(), 0, "plan wrote to the audit table");
    assert_eq!(
        ddb.list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .to_vec(),
        tables_before
    );
    let keys_after = iam
        .list_access_keys()
        .user_name("grace")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys_before.access_key_metadata(),
        keys_after.access_key_metadata()
    );
    let bob_keys = iam
        .list_access_keys()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    assert_eq!(
        bob_keys.access_key_metadata().len(),
        1,
        "no replacement created"
    );
    assert_eq!(
        bob_keys.access_key_metadata()[0].access_key_id(),
        Some(bob.as_str())
    );
}

#[test]
fn plan_table_output_is_aligned_and_says_nothing_changes() {
    let world = World::new();
    world.seed_demo(NOW);
    let out = ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .arg("--config")
        .arg(example_policy())
        .arg("plan")));
    let header = out
        .lines()
        .find(|l| l.starts_with("DUE"))
        .expect("actions header");
    let col = header.find("ACTION").unwrap();
    for line in out
        .lines()
        .skip_while(|l| !l.starts_with("DUE"))
        .skip(1)
        .take_while(|l| !l.is_empty())
    {
        let word = &line[col..];
        assert!(
            ["warn", "rotate", "delete", "notify", "provision-role"]
                .iter()
                .any(|w| word.starts_with(w)),
            "misaligned row: {line}"
        );
    }
    assert!(out.contains("nothing is changed"), "{out}");
}

#[test]
fn credential_report_is_used_and_per_user_calls_only_for_due_users() {
    // GIVEN the demo world (11 users, 7 of them with a key that is due or a migration tag)
    let world = World::new();
    world.seed_demo(NOW);

    // WHEN planning IAM keys only, with migration planning off
    let out = run(world.keyrotor().env("KEYROTOR_NOW", NOW).args([
        "--call-stats",
        "plan",
        "--kind",
        "iam-keys",
        "--output",
        "json",
    ]));
    ok(&out);
    let stats_line = support::stderr(&out)
        .lines()
        .find(|l| l.contains("aws_calls"))
        .expect("call stats on stderr")
        .to_owned();
    let stats: Value = serde_json::from_str(&stats_line).unwrap();

    // THEN ListAccessKeys and ListUserTags were called only for users with a due key:
    // bob, carol, dave, erin, frank, breakglass-admin, grace (not alice, ci-deployer, heidi, no-keys)
    assert_eq!(stats["aws_calls"]["iam:ListAccessKeys"], 7, "{stats}");
    assert_eq!(stats["aws_calls"]["iam:ListUserTags"], 7, "{stats}");
    assert_eq!(stats["aws_calls"].get("iam:ListUsers"), None, "{stats}");
    assert!(
        stats["aws_calls"]["iam:GetCredentialReport"]
            .as_u64()
            .unwrap()
            >= 1,
        "{stats}"
    );
    assert_eq!(
        stats["aws_calls"].get("iam:GetAccessKeyLastUsed"),
        None,
        "report slots matched: {stats}"
    );
}
