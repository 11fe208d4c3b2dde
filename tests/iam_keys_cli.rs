//! Stale IAM access keys against the emulator, with `KEYROTOR_NOW` and the account clock
//! stepping through time: warn, used after the warning (back to active), warn again,
//! deactivate, reactivate on request, delete; an exemption that expires; the promises that
//! nothing happens in `mode = "plan"` and that a repeated sweep changes nothing.

mod support;

use aws_sdk_iam::types::StatusType;
use serde_json::Value;
use support::inspect::key_status;
use support::{
    PolicyText, Timeline, World, ok,
    policy::CONTACT,
    run,
    seed::{Key, user_with_key},
    stderr,
};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 1, 1);

/// A policy file: defaults (unused 45, warn 7, delete after 30 days) in `mode`.
fn policy(mode: &str) -> tempfile::NamedTempFile {
    PolicyText::mode(mode).with(CONTACT).file()
}

/// Signs one request with the key: the emulator records it as used at the account clock.
async fn use_key(world: &World, key: &Key) {
    support::seed::sts_as(world, &key.id, &key.secret, None)
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
}

/// Runs `keyrotor sweep --kind iam-keys` at day `n`; returns the JSON result.
fn sweep(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Value {
    let out = run(TIME
        .keyrotor(world, policy, n)
        .args(["sweep", "--kind", "iam-keys", "--output", "json"]));
    serde_json::from_str(&ok(&out)).expect("sweep output is JSON")
}

/// (action, reason, status, stage) applied to `key` by a sweep.
fn applied(done: &Value, key: &str) -> Option<(String, String, String, String)> {
    done["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| {
            let s = |f: &str| a[f].as_str().unwrap().to_owned();
            (s("action"), s("reason"), s("status"), s("stage"))
        })
}

fn tuple(a: &str, r: &str, s: &str, st: &str) -> Option<(String, String, String, String)> {
    Some((a.into(), r.into(), s.into(), st.into()))
}

#[tokio::test]
async fn a_key_walks_through_every_transition() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let alice = user_with_key(&iam, "alice", &[("owner", "alice@example.com")]).await;
    // Erin is exempt until day 90 and never uses her key.
    let erin = user_with_key(&iam, "erin", &[("keyrotor:exempt", "2026-04-01")]).await;
    TIME.set_clock(&world, 10);
    use_key(&world, &alice).await;
    let enforce = policy("enforce");
    ok(&run(world
        .keyrotor()
        .arg("--config")
        .arg(enforce.path())
        .arg("init")));

    // Day 54: alice's key unused 44 days, nothing due; erin exempt.
    let done = sweep(&world, &enforce, 54);
    assert_eq!(applied(&done, &alice.id), None, "{done}");
    assert_eq!(applied(&done, &erin.id), None, "exempt: {done}");

    // Day 56: unused 46 days -> warned.
    let done = sweep(&world, &enforce, 56);
    assert_eq!(
        applied(&done, &alice.id),
        tuple("warn", "unused", "done", "warned"),
        "{done}"
    );

    // Day 58 the key is used; the sweep of day 64 (past the 7 warning days) does not
    // deactivate it: back to active.
    TIME.set_clock(&world, 58);
    use_key(&world, &alice).await;
    let done = sweep(&world, &enforce, 64);
    assert_eq!(
        applied(&done, &alice.id),
        tuple("reset", "used-after-warning", "done", "active"),
        "{done}"
    );
    assert_eq!(
        key_status(&iam, "alice", &alice.id).await,
        Some(StatusType::Active)
    );

    // Day 104: unused again for 46 days -> warned; erin's exemption ended on day 90 and her
    // key was never used -> warned too.
    let done = sweep(&world, &enforce, 104);
    assert_eq!(
        applied(&done, &alice.id),
        tuple("warn", "unused", "done", "warned")
    );
    assert_eq!(
        applied(&done, &erin.id),
        tuple("warn", "never-used", "done", "warned"),
        "{done}"
    );

    // Day 110: still within the warning period.
    let done = sweep(&world, &enforce, 110);
    assert_eq!(applied(&done, &alice.id), None, "{done}");

    // Day 111: deactivated, both.
    let done = sweep(&world, &enforce, 111);
    assert_eq!(
        applied(&done, &alice.id),
        tuple("deactivate", "still-unused", "done", "deactivated")
    );
    assert_eq!(
        applied(&done, &erin.id),
        tuple("deactivate", "still-unused", "done", "deactivated")
    );
    assert_eq!(
        key_status(&iam, "alice", &alice.id).await,
        Some(StatusType::Inactive)
    );

    // Erin asks for her key back: reactivated, reconsidered after a fresh 45-day window.
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", TIME.day(112))
        .arg("--config")
        .arg(enforce.path())
        .args(["reactivate", "iam-key", &erin.id, "--output", "json"]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(done["reconsidered_at"], "2026-06-07T00:00:00Z", "{done}"); // day 157
    assert_eq!(
        key_status(&iam, "erin", &erin.id).await,
        Some(StatusType::Active)
    );

    // Day 141: alice's key was inactive and unused 30 days -> deleted; erin's is left alone.
    let done = sweep(&world, &enforce, 141);
    assert_eq!(
        applied(&done, &alice.id),
        tuple("delete", "inactive-unused", "done", "deleted")
    );
    assert_eq!(applied(&done, &erin.id), None, "{done}");
    assert_eq!(key_status(&iam, "alice", &alice.id).await, None, "deleted");

    // The same sweep again: nothing left to do.
    let again = sweep(&world, &enforce, 141);
    assert!(again["applied"].as_array().unwrap().is_empty(), "{again}");

    // Every transition is in the audit trail, intent before outcome, and the chain holds.
    let out = run(world.keyrotor().arg("--config").arg(enforce.path()).args([
        "audit",
        "list",
        "--resource",
        &alice.id,
        "--output",
        "json",
    ]));
    let records: Value = serde_json::from_str(&ok(&out)).unwrap();
    let steps: Vec<(String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_owned(),
                r["phase"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ["warn", "reset", "warn", "deactivate", "delete"]
        .iter()
        .flat_map(|a| {
            [
                (a.to_string(), "intent".into()),
                (a.to_string(), "outcome".into()),
            ]
        })
        .collect();
    assert_eq!(steps, expected);
    ok(&run(world
        .keyrotor()
        .arg("--config")
        .arg(enforce.path())
        .args(["audit", "verify"])));
}

#[tokio::test]
async fn in_plan_mode_the_sweep_records_decisions_and_changes_nothing() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let bob = user_with_key(&iam, "bob", &[]).await;
    let plan_mode = policy("plan");
    ok(&run(world
        .keyrotor()
        .arg("--config")
        .arg(plan_mode.path())
        .arg("init")));
    for n in [50, 60, 200] {
        let done = sweep(&world, &plan_mode, n);
        assert_eq!(
            applied(&done, &bob.id),
            tuple("warn", "never-used", "dry-run", "active"),
            "day {n}: {done}"
        );
    }
    assert_eq!(
        key_status(&iam, "bob", &bob.id).await,
        Some(StatusType::Active)
    );
    let out = run(world
        .keyrotor()
        .arg("--config")
        .arg(plan_mode.path())
        .args(["audit", "list", "--resource", &bob.id, "--output", "json"]));
    let records: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["dry_run"] == true && r["phase"] == "decision"),
        "{records}"
    );
}

#[tokio::test]
async fn plan_shows_each_examined_key_with_its_stage_and_next_step() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let carol = user_with_key(&iam, "carol", &[]).await;
    let enforce = policy("enforce");
    ok(&run(world
        .keyrotor()
        .arg("--config")
        .arg(enforce.path())
        .arg("init")));
    sweep(&world, &enforce, 46); // warned on day 46
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", TIME.day(47))
        .arg("--config")
        .arg(enforce.path())
        .args(["plan", "--kind", "iam-keys", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    let view = plan["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == carol.id.as_str())
        .unwrap_or_else(|| panic!("carol's key in {plan}"));
    assert_eq!(view["stage"], "warned");
    assert_eq!(view["next_action"], "deactivate");
    assert_eq!(view["next_at"], "2026-02-23T00:00:00Z"); // day 53
    assert_eq!(view["status"], "active");
    let table = ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", TIME.day(47))
        .arg("--config")
        .arg(enforce.path())
        .args(["plan", "--kind", "iam-keys"])));
    assert!(
        table.contains(&carol.id) && table.contains("warned") && table.contains("2026-02-23"),
        "{table}"
    );
}

#[tokio::test]
async fn reactivate_refuses_keys_keyrotor_did_not_deactivate() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let dave = user_with_key(&iam, "dave", &[]).await;
    iam.update_access_key()
        .user_name("dave")
        .access_key_id(&dave.id)
        .status(StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let enforce = policy("enforce");
    ok(&run(world
        .keyrotor()
        .arg("--config")
        .arg(enforce.path())
        .arg("init")));
    for (key, expect) in [
        (dave.id.as_str(), "keyrotor did not deactivate"),
        ("AKIAIOSFODNN7EXAMPLE", "keyrotor did not deactivate"),
        ("not-a-key", "access key id"),
    ] {
        let out = run(world.keyrotor().arg("--config").arg(enforce.path()).args([
            "reactivate",
            "iam-key",
            key,
        ]));
        assert_eq!(out.status.code(), Some(2), "{key}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{key}: {}", stderr(&out));
    }
    assert_eq!(
        key_status(&iam, "dave", &dave.id).await,
        Some(StatusType::Inactive),
        "nothing changed"
    );
}
