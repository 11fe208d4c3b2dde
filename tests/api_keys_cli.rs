//! API key rotation against the emulator, stepping `KEYROTOR_NOW` through the grace and
//! recovery periods. After every command the consumer's view is checked: the secret's
//! AWSCURRENT value is an enabled key in every original usage plan, and while the old key
//! is in its grace period it still works too.

mod support;

use chrono::Duration;
use serde_json::Value;
use support::{PolicyText, Timeline, World, ok, run, seed, stderr};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 1, 1);

fn policy(mode: &str) -> tempfile::NamedTempFile {
    PolicyText::mode(mode).file()
}

struct Setup {
    gateway: aws_sdk_apigateway::Client,
    secrets: aws_sdk_secretsmanager::Client,
    key: String,
    value: String,
    plans: Vec<String>,
}

/// An API key in two usage plans, bound to secret `orders/api-key`, created on day 0.
async fn setup(world: &World, secret_body: Option<&str>, plans: usize) -> Setup {
    TIME.set_clock(world, 0);
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = gateway
        .create_api_key()
        .name("orders-client")
        .description("orders service client")
        .enabled(true)
        .tags("keyrotor:secret", "orders/api-key")
        .tags("owner", "orders@example.com")
        .send()
        .await
        .unwrap();
    let (id, value) = (
        key.id().unwrap().to_owned(),
        key.value().unwrap().to_owned(),
    );
    let mut plan_ids = Vec::new();
    for n in 0..plans {
        plan_ids.push(seed::usage_plan_with(&gateway, &format!("plan-{n}"), &id).await);
    }
    let body = match secret_body {
        Some(b) => b.to_owned(),
        None => serde_json::json!({"apiKeyId": id, "value": value}).to_string(),
    };
    seed::secret(
        &secrets,
        "orders/api-key",
        &body,
        &[
            ("keyrotor:api-key", "orders-client"),
            ("keyrotor:type", "apigw-api-key"),
        ],
    )
    .await;
    Setup {
        gateway,
        secrets,
        key: id,
        value,
        plans: plan_ids,
    }
}

impl Setup {
    async fn in_plan(&self, plan: &str, key: &str) -> bool {
        self.gateway
            .get_usage_plan_keys()
            .usage_plan_id(plan)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .any(|k| k.id() == Some(key))
    }

    /// (enabled, value) of a key, `None` when it does not exist.
    async fn key(&self, id: &str) -> Option<(bool, String)> {
        let k = self
            .gateway
            .get_api_key()
            .api_key(id)
            .include_value(true)
            .send()
            .await
            .ok()?;
        Some((k.enabled(), k.value().unwrap_or_default().to_owned()))
    }

    async fn secret(&self, stage: &str) -> Option<Value> {
        support::inspect::secret_stage(&self.secrets, "orders/api-key", stage).await
    }

    /// Whether the key named by `body` serves `body.value` in every original plan.
    async fn serves(&self, body: &Value) -> bool {
        let id = body["apiKeyId"].as_str().unwrap();
        let Some((enabled, value)) = self.key(id).await else {
            return false;
        };
        if !enabled || value != body["value"].as_str().unwrap() {
            return false;
        }
        for plan in &self.plans {
            if !self.in_plan(plan, id).await {
                return false;
            }
        }
        true
    }

    /// The consumer promise: AWSCURRENT always works.
    async fn assert_current_works(&self, when: &str) {
        let current = self
            .secret("AWSCURRENT")
            .await
            .expect("AWSCURRENT readable");
        assert!(
            self.serves(&current).await,
            "{when}: AWSCURRENT {} does not work in every plan",
            current["apiKeyId"]
        );
    }
}

fn sweep(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Value {
    let out = run(TIME
        .keyrotor(world, policy, n)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    serde_json::from_str(&ok(&out)).unwrap()
}

fn steps(done: &Value) -> Vec<String> {
    done["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap().iter())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_due_key_is_rotated_through_retirement_without_breaking_a_consumer() {
    let world = World::new();
    let s = setup(&world, None, 2).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    s.assert_current_works("start").await;

    // Day 50: not due (max age 90).
    assert!(steps(&sweep(&world, &enforce, 50)).is_empty());

    // Day 100: rotated up to promotion; both keys work.
    let done = sweep(&world, &enforce, 100);
    assert_eq!(
        steps(&done),
        ["create-replacement", "publish", "verify", "promote"],
        "{done}"
    );
    let rotation = &done["rotations"][0];
    assert_eq!(rotation["stage"], "promoted");
    assert_eq!(rotation["next"], "retire");
    let new = rotation["new_key"].as_str().unwrap().to_owned();
    s.assert_current_works("day 100").await;
    let current = s.secret("AWSCURRENT").await.unwrap();
    assert_eq!(current["apiKeyId"], new.as_str());
    let previous = s.secret("AWSPREVIOUS").await.unwrap();
    assert_eq!(previous["apiKeyId"], s.key.as_str());
    assert_eq!(previous["value"], s.value.as_str());
    assert!(
        s.serves(&previous).await,
        "old key works during the grace period"
    );
    let text = serde_json::to_string(&done).unwrap();
    assert!(
        !text.contains(&s.value),
        "a key value leaked into the output"
    );

    // Day 104: grace not over, nothing happens; the replacement is young.
    assert!(steps(&sweep(&world, &enforce, 104)).is_empty());
    assert!(s.serves(&previous).await);

    // Day 107: grace over: the old key is detached and disabled.
    let done = sweep(&world, &enforce, 107);
    assert_eq!(steps(&done), ["retire"], "{done}");
    s.assert_current_works("day 107").await;
    assert_eq!(
        s.key(&s.key).await.map(|k| k.0),
        Some(false),
        "old key disabled"
    );
    for plan in &s.plans {
        assert!(!s.in_plan(plan, &s.key).await, "old key still in {plan}");
    }

    // Day 110: someone puts the old key back during its recovery window: it is not deleted.
    s.gateway
        .update_api_key()
        .api_key(&s.key)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/enabled")
                .value("true")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &enforce, 114)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let blocked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(blocked["rotations"][0]["status"], "blocked", "{blocked}");
    assert!(
        s.key(&s.key).await.is_some(),
        "a key put back is not deleted"
    );
    s.gateway
        .update_api_key()
        .api_key(&s.key)
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/enabled")
                .value("false")
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Day 114, the key disabled again: recovery window over, the old key is deleted.
    let done = sweep(&world, &enforce, 114);
    assert_eq!(steps(&done), ["delete"], "{done}");
    assert_eq!(s.key(&s.key).await, None);
    s.assert_current_works("day 114").await;
    assert!(
        steps(&sweep(&world, &enforce, 114)).is_empty(),
        "nothing left to do"
    );

    // Exactly one replacement was ever created.
    let keys = s.gateway.get_api_keys().send().await.unwrap();
    let names: Vec<&str> = keys.items().iter().filter_map(|k| k.name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("orders-client-kr-"), "{names:?}");

    ok(&run(TIME
        .keyrotor(&world, &enforce, 114)
        .args(["audit", "verify"])));
    let out = run(TIME.keyrotor(&world, &enforce, 114).args([
        "audit",
        "list",
        "--resource",
        &s.key,
        "--output",
        "json",
    ]));
    let records = ok(&out);
    assert!(
        !records.contains(&s.value),
        "a key value leaked into the audit trail"
    );
    let records: Value = serde_json::from_str(&records).unwrap();
    let actions: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["phase"] == "intent")
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "start",
            "create-replacement",
            "publish",
            "verify",
            "promote",
            "retire",
            "delete", // blocked: the key had been put back
            "delete",
        ]
    );
}

#[tokio::test]
async fn a_compromised_key_is_replaced_and_retired_at_once() {
    let world = World::new();
    let s = setup(&world, None, 2).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    let out = run(TIME.keyrotor(&world, &enforce, 3).args([
        "rotate",
        "api-key",
        "orders-client",
        "--reason",
        "compromised",
        "--output",
        "json",
    ]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(done["stage"], "retired", "{done}");
    assert_eq!(done["next"], "delete");
    s.assert_current_works("after the compromise rotation")
        .await;
    assert_eq!(s.key(&s.key).await.map(|k| k.0), Some(false));
    // Running it again continues the same rotation: nothing is due, nothing is created.
    let out = run(TIME
        .keyrotor(&world, &enforce, 3)
        .args(["rotate", "api-key", &s.key, "--output", "json"]));
    let again: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(again["steps"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(again["new_key"], done["new_key"]);
    let keys = s.gateway.get_api_keys().send().await.unwrap();
    assert_eq!(
        keys.items().len(),
        2,
        "the old key (disabled) and one replacement"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_exit_2_and_changes_nothing() {
    let world = World::new();
    let s = setup(&world, Some("{\"key\": \"not the expected shape\"}"), 1).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    let cases: [(&[&str], &str, &tempfile::NamedTempFile); 3] = [
        (
            &["rotate", "api-key", "no-such-key"],
            "no API key with id or name",
            &enforce,
        ),
        (
            &["rotate", "api-key", "orders-client"],
            "is not the JSON object",
            &enforce,
        ),
        (
            &["rotate", "api-key", "orders-client"],
            "mode = \"enforce\"",
            &policy("plan"),
        ),
    ];
    for (args, expect, policy) in cases {
        let out = run(TIME.keyrotor(&world, policy, 100).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("not the expected shape"),
            "secret content echoed"
        );
    }
    let keys = s.gateway.get_api_keys().send().await.unwrap();
    assert_eq!(keys.items().len(), 1, "no replacement was created");
    assert_eq!(s.key(&s.key).await.map(|k| k.0), Some(true));

    // A key in no usage plan cannot be rotated either.
    s.gateway
        .delete_usage_plan_key()
        .usage_plan_id(&s.plans[0])
        .key_id(&s.key)
        .send()
        .await
        .unwrap();
    s.secrets
        .put_secret_value()
        .secret_id("orders/api-key")
        .secret_string(serde_json::json!({"apiKeyId": s.key, "value": s.value}).to_string())
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &enforce, 100)
        .args(["rotate", "api-key", &s.key]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no usage plan"), "{}", stderr(&out));
    // The sweep reports it as blocked (audited) rather than failing the whole run.
    let out = run(TIME
        .keyrotor(&world, &enforce, 100)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["rotations"][0]["status"], "blocked", "{done}");
    let keys = s.gateway.get_api_keys().send().await.unwrap();
    assert_eq!(keys.items().len(), 1, "no replacement was created");
}

/// Promotes the rotation of `s.key` (day 100) and returns the replacement's id.
fn promote(world: &World, enforce: &tempfile::NamedTempFile) -> String {
    let done = sweep(world, enforce, 100);
    assert!(steps(&done).contains(&"promote".to_owned()), "{done}");
    done["rotations"][0]["new_key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_old_key_that_joined_another_usage_plan_during_grace_is_not_retired_from_under_it() {
    let world = World::new();
    let s = setup(&world, None, 1).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    let new_key = promote(&world, &enforce);
    // During the grace period a person attaches the old key to a second usage plan.
    let late = s
        .gateway
        .create_usage_plan()
        .name("late-plan")
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    s.gateway
        .create_usage_plan_key()
        .usage_plan_id(&late)
        .key_id(&s.key)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    // Grace over: retire must see the new plan and refuse, since the replacement is not in it.
    let out = run(TIME
        .keyrotor(&world, &enforce, 110)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    let done: Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    assert_eq!(done["rotations"][0]["status"], "blocked", "{done}");
    assert!(
        done["rotations"][0]["error"]
            .as_str()
            .unwrap()
            .contains("joined usage plan"),
        "{done}"
    );
    assert!(
        s.in_plan(&late, &s.key).await,
        "old key still serves the late plan"
    );
    assert_eq!(
        s.key(&s.key).await.map(|k| k.0),
        Some(true),
        "old key enabled"
    );
    // Once the replacement serves that plan too, the next sweep retires the old key there.
    s.gateway
        .create_usage_plan_key()
        .usage_plan_id(&late)
        .key_id(&new_key)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    let done = sweep(&world, &enforce, 111);
    assert!(steps(&done).contains(&"retire".to_owned()), "{done}");
    assert!(
        !s.in_plan(&late, &s.key).await,
        "detached from the late plan too"
    );
    // And the delete re-reads the plans: attached again during recovery, it is kept.
    s.gateway
        .create_usage_plan_key()
        .usage_plan_id(&late)
        .key_id(&s.key)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &enforce, 150)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    let done: Value = serde_json::from_str(&support::stdout(&out)).unwrap();
    assert_eq!(done["rotations"][0]["status"], "blocked", "{done}");
    assert!(
        s.key(&s.key).await.is_some(),
        "not deleted while in a usage plan"
    );
}

#[tokio::test]
async fn an_exemption_added_after_promotion_stops_retire_and_delete() {
    let world = World::new();
    let s = setup(&world, None, 1).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    promote(&world, &enforce);
    // After promotion the owner exempts the old key until day 130.
    let until = (TIME.t0() + Duration::days(130))
        .format("%Y-%m-%d")
        .to_string();
    let arn = format!("arn:aws:apigateway:{}::/apikeys/{}", support::REGION, s.key);
    s.gateway
        .tag_resource()
        .resource_arn(&arn)
        .tags("keyrotor:exempt", &until)
        .send()
        .await
        .unwrap();
    let done = sweep(&world, &enforce, 110);
    assert!(
        steps(&done).is_empty(),
        "nothing retired while exempt: {done}"
    );
    assert_eq!(
        s.key(&s.key).await.map(|k| k.0),
        Some(true),
        "old key enabled"
    );
    assert!(s.in_plan(&s.plans[0], &s.key).await);
    // `rotate api-key` on the key refuses too (the step re-checks scope itself).
    let out = run(TIME
        .keyrotor(&world, &enforce, 110)
        .args(["rotate", "api-key", &s.key]));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("exempt"), "{}", stderr(&out));
    assert_eq!(s.key(&s.key).await.map(|k| k.0), Some(true));
    // Once the exemption has expired, the rotation goes on.
    let done = sweep(&world, &enforce, 140);
    assert!(steps(&done).contains(&"retire".to_owned()), "{done}");
}

#[tokio::test]
async fn one_unreadable_rotation_record_does_not_stop_the_other_keys() {
    // A rotation record whose token is not a token (written by hand, or by an older hook
    // run with an arbitrary ClientRequestToken): reported and skipped, the due key beside it
    // is rotated as usual.
    let world = World::new();
    let s = setup(&world, None, 1).await;
    let enforce = policy("enforce");
    ok(&run(TIME.keyrotor(&world, &enforce, 0).arg("init")));
    let dynamo = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let text = aws_sdk_dynamodb::types::AttributeValue::S;
    dynamo
        .put_item()
        .table_name("keyrotor-state")
        .item(
            "pk",
            text(format!("api-key#{}#{}", world.account, support::REGION)),
        )
        .item("sk", text("bogus0key".into()))
        .item("name", text("other-client".into()))
        .item("secret", text("other/api-key".into()))
        .item("token", text("not a token!".into()))
        .item("trigger", text("on-demand".into()))
        .item("stage", text("started".into()))
        .item("since", text(TIME.day(1)))
        .item("started_at", text(TIME.day(1)))
        .item("plans", text(String::new()))
        .item(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
    let done = sweep(&world, &enforce, 100);
    assert!(steps(&done).contains(&"promote".to_owned()), "{done}");
    s.assert_current_works("after the sweep").await;
    let out = run(TIME
        .keyrotor(&world, &enforce, 100)
        .args(["plan", "--kind", "api-keys", "--output", "json"]));
    let plan = ok(&out);
    assert!(
        plan.contains("bogus0key") && plan.contains("not a rotation token"),
        "{plan}"
    );
}
