//! The Secrets Manager rotation hook against the emulator: through the real Lambda binary
//! served by cargo-lambda's runtime emulator (each step invoked twice, as Secrets Manager
//! may), and in process with `keyrotor rotate secret`. The previous credential is never
//! disabled by the hook; the sweep does it after the grace period.

#[path = "support/lambda_host.rs"]
mod lambda_host;
mod support;

use aws_sdk_iam::types::StatusType;
use chrono::Duration;
use lambda_host::LambdaHost;
use serde_json::{Value, json};
use support::{PolicyText, REGION, Timeline, World, ok, run, seed, stderr};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 3, 1);

fn policy() -> tempfile::NamedTempFile {
    PolicyText::mode("enforce").file()
}

fn event(step: &str, secret: &str, token: &str) -> Value {
    json!({"Step": step, "SecretId": secret, "ClientRequestToken": token})
}

struct IamWorld {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    key: String,
}

/// User `svc` with one key, stored in secret `svc/iam` tagged for the hook.
async fn iam_world(world: &World) -> IamWorld {
    TIME.set_clock(world, 0);
    let sdk = world.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = support::seed::user_with_bound_secret(&iam, &secrets, "svc", "svc/iam").await;
    IamWorld {
        iam,
        secrets,
        key: key.id,
    }
}

impl IamWorld {
    async fn stage(&self, stage: &str) -> Option<Value> {
        support::inspect::secret_stage(&self.secrets, "svc/iam", stage).await
    }

    async fn keys(&self) -> Vec<(String, StatusType)> {
        support::inspect::keys(&self.iam, "svc").await
    }
}

#[tokio::test]
async fn the_lambda_binary_rotates_an_iam_key_and_every_step_is_idempotent() {
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let host = LambdaHost::start(&world, &policy, &[("KEYROTOR_NOW", &TIME.day(1))]);
    let token = uuid::Uuid::new_v4().to_string();
    world.start_rotation("svc/iam", &token);

    let mut outputs = String::new();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        for attempt in 1..=2 {
            let (status, body) = host.invoke(&event(step, "svc/iam", &token));
            assert_eq!(status, 200, "{step} attempt {attempt}: {body}");
            outputs.push_str(&body.to_string());
            if attempt == 2 && step != "testSecret" {
                assert!(
                    body["status"] == "no-op"
                        || body["detail"].as_str().unwrap().contains("already"),
                    "{step} twice: {body}"
                );
            }
        }
    }
    let current = w.stage("AWSCURRENT").await.unwrap();
    let new_key = current["accessKeyId"].as_str().unwrap().to_owned();
    assert_ne!(new_key, w.key);
    assert_eq!(
        w.stage("AWSPREVIOUS").await.unwrap()["accessKeyId"],
        w.key.as_str()
    );
    assert!(
        w.stage("AWSPENDING").await.is_none(),
        "AWSPENDING left behind"
    );
    let keys = w.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|(_, s)| *s == StatusType::Active),
        "nothing deactivated yet"
    );
    let secret = current["secretAccessKey"].as_str().unwrap();
    assert!(!outputs.contains(secret), "the new secret key was returned");
    assert!(
        !host.log().contains(secret),
        "the new secret key was logged"
    );

    // The previous key is deactivated by the sweep after the grace period, not before.
    let sweep = |n| {
        let out = run(TIME
            .keyrotor(&world, &policy, n)
            .args(["sweep", "--kind", "iam-keys", "--output", "json"]));
        serde_json::from_str::<Value>(&ok(&out)).unwrap()
    };
    let done = sweep(3);
    assert!(
        !done["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == w.key.as_str()),
        "{done}"
    );
    let done = sweep(8);
    let applied = done["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == w.key.as_str())
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(
        (applied["action"].as_str(), applied["reason"].as_str()),
        (Some("deactivate"), Some("superseded"))
    );
    let keys = w.keys().await;
    assert!(
        keys.contains(&(w.key.clone(), StatusType::Inactive)),
        "{keys:?}"
    );
    assert!(keys.contains(&(new_key, StatusType::Active)), "{keys:?}");
}

#[tokio::test]
async fn the_lambda_binary_enforces_the_protocol_rules_with_named_errors() {
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let host = LambdaHost::start(&world, &policy, &[("KEYROTOR_NOW", &TIME.day(1))]);
    let token = uuid::Uuid::new_v4().to_string();

    // Rotation not enabled yet (RotateSecret was never called).
    let (status, body) = host.invoke(&event("createSecret", "svc/iam", &token));
    assert_eq!(
        (status, body["errorType"].as_str()),
        (500, Some("KeyRotor.InvalidInput")),
        "{body}"
    );
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("rotation is not enabled"),
        "{body}"
    );

    world.start_rotation("svc/iam", &token);
    let cases = [
        (
            json!({"Step": "createSecret", "SecretId": "svc/iam"}),
            "ClientRequestToken",
        ),
        (event("rotateEverything", "svc/iam", &token), "not one of"),
        (
            event("createSecret", "svc/iam", "not-a-version-of-the-secret"),
            "is not a version",
        ),
        (
            event("createSecret", "no/such/secret", &token),
            "does not exist",
        ),
    ];
    for (bad, expect) in cases {
        let (status, body) = host.invoke(&bad);
        assert_eq!(status, 500, "{bad}: {body}");
        assert_eq!(body["errorType"], "KeyRotor.InvalidInput", "{bad}: {body}");
        assert!(
            body["errorMessage"].as_str().unwrap().contains(expect),
            "{bad}: {body}"
        );
    }
    // The AWSCURRENT version is not a pending one.
    let current = w
        .secrets
        .describe_secret()
        .secret_id("svc/iam")
        .send()
        .await
        .unwrap()
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))
        .map(|(v, _)| v.clone())
        .unwrap();
    let (status, body) = host.invoke(&event("testSecret", "svc/iam", &current));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["status"], "no-op",
        "a token already AWSCURRENT is a no-op: {body}"
    );
    assert_eq!(w.keys().await.len(), 1, "nothing was created");
}

#[tokio::test]
async fn the_two_key_limit_removes_only_a_never_used_unreferenced_key() {
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    // A second key, used: nothing may be removed, the rotation is blocked.
    let extra = seed::access_key(&w.iam, "svc").await;
    support::seed::sts_as(&world, &extra.id, &extra.secret, None)
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "svc/iam"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("two-key limit"), "{}", stderr(&out));
    assert_eq!(w.keys().await.len(), 2);

    // A never-used second key is removed to make room.
    w.iam
        .delete_access_key()
        .user_name("svc")
        .access_key_id(&extra.id)
        .send()
        .await
        .unwrap();
    let unused = seed::access_key(&w.iam, "svc").await.id;
    let out = run(TIME
        .keyrotor(&world, &policy, 2)
        .args(["rotate", "secret", "svc/iam", "--output", "json"]));
    let steps: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        steps[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("removed unused key {unused}")),
        "{steps}"
    );
    let keys: Vec<String> = w.keys().await.into_iter().map(|(k, _)| k).collect();
    assert!(
        !keys.contains(&unused) && keys.contains(&w.key) && keys.len() == 2,
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_stale_pending_version_is_cleared_instead_of_blocking_rotation() {
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    // An earlier rotation failed after createSecret: its key was deleted, AWSPENDING stayed.
    w.secrets
        .put_secret_value()
        .secret_id("svc/iam")
        .secret_string(
            json!({"userName": "svc", "accessKeyId": "AKIAIOSFODNN7EXAMPLE", "secretAccessKey": "gone"}).to_string(),
        )
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "svc/iam", "--output", "json"]));
    let steps: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        steps[0]["detail"]
            .as_str()
            .unwrap()
            .contains("cleared AWSPENDING"),
        "{steps}"
    );
    let current = w.stage("AWSCURRENT").await.unwrap();
    assert_ne!(current["accessKeyId"], w.key.as_str());
    assert!(w.stage("AWSPENDING").await.is_none());
    ok(&run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["audit", "verify"])));
}

#[tokio::test]
async fn an_api_key_secret_rotates_in_process_and_the_sweep_retires_the_old_key() {
    let world = World::new();
    let BoundKey {
        gateway,
        secrets,
        old,
        value,
        plan,
    } = bound_api_key(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "rotate",
        "secret",
        "billing/api-key",
        "--output",
        "json",
    ]));
    let steps = ok(&out);
    assert!(!steps.contains(&value), "a key value in the output");
    // With the stage named: moto answers a stage-less GetSecretValue from a default
    // version that UpdateSecretVersionStage does not move (AWS answers AWSCURRENT).
    let current = secrets
        .get_secret_value()
        .secret_id("billing/api-key")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    let new = current["apiKeyId"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let in_plan = |id: String| {
        let gateway = gateway.clone();
        let plan = plan.clone();
        async move {
            gateway
                .get_usage_plan_keys()
                .usage_plan_id(&plan)
                .send()
                .await
                .unwrap()
                .items()
                .iter()
                .any(|k| k.id() == Some(id.as_str()))
        }
    };
    assert!(
        in_plan(new.clone()).await && in_plan(old.clone()).await,
        "both keys serve during the grace period"
    );

    // After grace_days (7) the sweep retires the old key.
    let out = run(TIME
        .keyrotor(&world, &policy, 9)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(done["rotations"][0]["key"], old.as_str(), "{done}");
    assert_eq!(done["rotations"][0]["steps"], json!(["retire"]), "{done}");
    assert!(in_plan(new).await && !in_plan(old).await);
}

#[tokio::test]
async fn secrets_without_the_type_tag_or_with_a_wrong_shape_are_refused() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let secrets = aws_sdk_secretsmanager::Client::new(&world.sdk().await);
    secrets
        .create_secret()
        .name("untagged")
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name("misshapen")
        .secret_string("{\"user\": \"svc\", \"password\": \"hunter2\"}")
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("keyrotor:type")
                .value("iam-access-key")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "untagged"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("keyrotor:type"), "{}", stderr(&out));
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "misshapen"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("userName"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("hunter2"), "secret content echoed");
    let versions = secrets
        .describe_secret()
        .secret_id("misshapen")
        .send()
        .await
        .unwrap();
    assert_eq!(
        versions.version_ids_to_stages().unwrap().len(),
        1,
        "no version was written"
    );
}

#[tokio::test]
async fn a_rotation_that_fails_between_any_two_steps_completes_when_retried() {
    let steps = ["createSecret", "setSecret", "testSecret", "finishSecret"];
    for failed_after in 1..steps.len() {
        let world = World::new();
        let w = iam_world(&world).await;
        let policy = policy();
        ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
        let host = LambdaHost::start(&world, &policy, &[("KEYROTOR_NOW", &TIME.day(1))]);
        let token = uuid::Uuid::new_v4().to_string();
        world.start_rotation("svc/iam", &token);
        for step in &steps[..failed_after] {
            let (status, body) = host.invoke(&event(step, "svc/iam", &token));
            assert_eq!(status, 200, "{step}: {body}");
        }
        // The rotation stops here; Secrets Manager retries it from the start, same token.
        for step in steps {
            let (status, body) = host.invoke(&event(step, "svc/iam", &token));
            assert_eq!(
                status, 200,
                "retry after {failed_after} step(s), {step}: {body}"
            );
        }
        let keys = w.keys().await;
        assert_eq!(keys.len(), 2, "after {failed_after} step(s): {keys:?}");
        let current = w.stage("AWSCURRENT").await.unwrap();
        assert!(
            keys.iter()
                .any(|(k, _)| current["accessKeyId"] == k.as_str()),
            "after {failed_after} step(s): AWSCURRENT names a key the user has"
        );
        assert_eq!(
            w.stage("AWSPREVIOUS").await.unwrap()["accessKeyId"],
            w.key.as_str()
        );
    }
}

#[tokio::test]
async fn the_hook_never_deletes_an_active_key_created_minutes_ago_to_make_room() {
    // Key B was created by hand 10 minutes before the rotation: IAM has no last-used date
    // for it yet, but it may already be in use. The rotation is blocked; B stays.
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    TIME.set_clock(&world, 1);
    let fresh = seed::access_key(&w.iam, "svc").await.id;
    let later = (TIME.t0() + Duration::days(1) + Duration::minutes(10)).to_rfc3339();
    world.set_clock(&later);
    let mut cmd = world.keyrotor();
    cmd.env("KEYROTOR_NOW", &later)
        .arg("--config")
        .arg(policy.path())
        .args(["rotate", "secret", "svc/iam"]);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("two-key limit"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("last-used data lags"),
        "{}",
        stderr(&out)
    );
    let keys: Vec<String> = w.keys().await.into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&fresh) && keys.contains(&w.key), "{keys:?}");
    // A day later the same never-used key may go: the lag is over.
    let out = run(TIME
        .keyrotor(&world, &policy, 3)
        .args(["rotate", "secret", "svc/iam", "--output", "json"]));
    let steps: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        steps[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("removed unused key {fresh}")),
        "{steps}"
    );
    // The removal is audited on the key's own chain.
    let out = run(TIME.keyrotor(&world, &policy, 3).args([
        "audit",
        "list",
        "--resource",
        &fresh,
        "--output",
        "json",
    ]));
    let records: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "make-room-for-rotation" && r["outcome"] == "succeeded"),
        "{records}"
    );
}

/// API key `billing-client` in usage plan `gold`, tagged `keyrotor:secret = billing/api-key`,
/// with that secret typed for the hook, created on day 0.
struct BoundKey {
    gateway: aws_sdk_apigateway::Client,
    secrets: aws_sdk_secretsmanager::Client,
    old: String,
    value: String,
    plan: String,
}

async fn bound_api_key(world: &World) -> BoundKey {
    TIME.set_clock(world, 0);
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = gateway
        .create_api_key()
        .name("billing-client")
        .enabled(true)
        .tags("keyrotor:secret", "billing/api-key")
        .send()
        .await
        .unwrap();
    let (old, value) = (
        key.id().unwrap().to_owned(),
        key.value().unwrap().to_owned(),
    );
    let plan = gateway
        .create_usage_plan()
        .name("gold")
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    gateway
        .create_usage_plan_key()
        .usage_plan_id(&plan)
        .key_id(&old)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name("billing/api-key")
        .secret_string(json!({"apiKeyId": old, "value": value}).to_string())
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("keyrotor:type")
                .value("apigw-api-key")
                .build(),
        )
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("keyrotor:api-key")
                .value("billing-client")
                .build(),
        )
        .send()
        .await
        .unwrap();
    BoundKey {
        gateway,
        secrets,
        old,
        value,
        plan,
    }
}

#[tokio::test]
async fn a_hook_rotation_and_the_sweep_share_one_rotation_of_an_api_key() {
    let world = World::new();
    let BoundKey {
        gateway,
        secrets,
        old,
        plan,
        ..
    } = bound_api_key(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    // Day 100: the key is due for the sweep's age rotation, and Secrets Manager starts a
    // rotation of the secret at the same time. The hook's createSecret runs first.
    let host = LambdaHost::start(&world, &policy, &[("KEYROTOR_NOW", &TIME.day(100))]);
    TIME.set_clock(&world, 100);
    let token = uuid::Uuid::new_v4().to_string();
    world.start_rotation("billing/api-key", &token);
    let (status, body) = host.invoke(&event("createSecret", "billing/api-key", &token));
    assert_eq!(status, 200, "{body}");

    // `rotate secret` meanwhile (another token) must not strip the hook's AWSPENDING nor
    // make a second replacement: one rotation per key, whoever started it.
    let out =
        run(TIME
            .keyrotor(&world, &policy, 100)
            .args(["rotate", "secret", "billing/api-key"]));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("being rotated"), "{}", stderr(&out));
    let stages = secrets
        .describe_secret()
        .secret_id("billing/api-key")
        .send()
        .await
        .unwrap();
    let pending: Vec<String> = stages
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.iter().any(|x| x == "AWSPENDING"))
        .map(|(v, _)| v.clone())
        .collect();
    assert_eq!(
        pending,
        std::slice::from_ref(&token),
        "the hook's version keeps AWSPENDING"
    );

    // The sweep continues the hook's rotation instead of starting its own.
    let out = run(TIME
        .keyrotor(&world, &policy, 100)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(done["rotations"][0]["key"], old.as_str(), "{done}");
    assert_eq!(
        done["rotations"][0]["steps"],
        json!(["verify", "promote"]),
        "{done}"
    );
    // Secrets Manager's remaining steps find the work done.
    for step in ["testSecret", "finishSecret"] {
        let (status, body) = host.invoke(&event(step, "billing/api-key", &token));
        assert_eq!(status, 200, "{step}: {body}");
    }
    let current = secrets
        .get_secret_value()
        .secret_id("billing/api-key")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    assert_eq!(current.version_id(), Some(token.as_str()));
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    let new = current["apiKeyId"].as_str().unwrap().to_owned();
    // Exactly one replacement exists, and it serves the plan.
    let keys = gateway.get_api_keys().send().await.unwrap();
    let replacements: Vec<&str> = keys
        .items()
        .iter()
        .filter(|k| k.id() != Some(old.as_str()))
        .filter_map(|k| k.id())
        .collect();
    assert_eq!(replacements, [new.as_str()], "one replacement, no orphan");
    let in_plan = gateway
        .get_usage_plan_keys()
        .usage_plan_id(&plan)
        .send()
        .await
        .unwrap();
    assert!(in_plan.items().iter().any(|k| k.id() == Some(new.as_str())));
}

#[tokio::test]
async fn a_superseded_key_is_kept_when_the_owner_moved_awscurrent_back_to_it() {
    let world = World::new();
    let w = iam_world(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    ok(&run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "svc/iam"])));
    assert_eq!(
        w.stage("AWSPREVIOUS").await.unwrap()["accessKeyId"],
        w.key.as_str()
    );
    // The new key does not work for some client: the owner moves AWSCURRENT back to the
    // previous version, as the rotation notice says.
    let described = w
        .secrets
        .describe_secret()
        .secret_id("svc/iam")
        .send()
        .await
        .unwrap();
    let holder = |stage: &str| {
        described
            .version_ids_to_stages()
            .unwrap()
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.clone())
            .unwrap()
    };
    let (previous, current) = (holder("AWSPREVIOUS"), holder("AWSCURRENT"));
    w.secrets
        .update_secret_version_stage()
        .secret_id("svc/iam")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&previous)
        .remove_from_version_id(&current)
        .send()
        .await
        .unwrap();
    assert_eq!(
        w.stage("AWSCURRENT").await.unwrap()["accessKeyId"],
        w.key.as_str()
    );

    // Grace over: the sweep reads the secret again and keeps the key the secret hands out.
    let out = run(TIME
        .keyrotor(&world, &policy, 9)
        .args(["sweep", "--kind", "iam-keys", "--output", "json"]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    let applied = done["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == w.key.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(applied["reason"], "rolled-back", "{applied}");
    assert_eq!(applied["stage"], "active", "{applied}");
    let keys = w.keys().await;
    assert!(
        keys.iter()
            .any(|(k, s)| k == &w.key && *s == StatusType::Active),
        "{keys:?}"
    );
}

#[tokio::test]
async fn the_hook_does_not_rotate_an_exempt_api_key() {
    let world = World::new();
    let BoundKey {
        gateway,
        secrets,
        old,
        ..
    } = bound_api_key(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let arn = format!("arn:aws:apigateway:{REGION}::/apikeys/{old}");
    gateway
        .tag_resource()
        .resource_arn(&arn)
        .tags("keyrotor:exempt", "2026-12-31")
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "billing/api-key"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("exempt"), "{}", stderr(&out));
    let keys = gateway.get_api_keys().send().await.unwrap();
    assert_eq!(keys.items().len(), 1, "no replacement created");
    let current = secrets
        .get_secret_value()
        .secret_id("billing/api-key")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    assert_eq!(current["apiKeyId"], old.as_str());
}
