//! `keyrotor sweep` with no `--kind` against the emulator: every kind in this process, as
//! the scheduled sweep does, with one combined output.

mod support;

use serde_json::Value;
use support::{Timeline, World, ok, run, seed};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 1, 1);

/// An IAM user whose key is never used, created on day 0; returns the key id.
async fn stale_iam_key(world: &World) -> String {
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    seed::user_with_key(&iam, "alice", &[]).await.id
}

/// An API key in a usage plan, bound to secret `orders/api-key`, created on day 0;
/// returns the key id.
async fn api_key_with_secret(world: &World) -> String {
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let (id, value) = seed::api_key(
        &gateway,
        "orders-client",
        &[
            ("keyrotor:secret", "orders/api-key"),
            ("owner", "orders@example.com"),
        ],
    )
    .await;
    seed::usage_plan_with(&gateway, "plan-0", &id).await;
    seed::api_key_secret(
        &aws_sdk_secretsmanager::Client::new(&sdk),
        "orders/api-key",
        &id,
        &value,
        &[
            ("keyrotor:api-key", "orders-client"),
            ("keyrotor:type", "apigw-api-key"),
        ],
    )
    .await;
    id
}

/// A certificate valid from day 0 that expires `days_left` days after day `n`, imported
/// into ACM on day 1; returns its ARN.
async fn expiring_certificate(world: &World, n: i64, days_left: i64) -> String {
    // moto refuses certificates that are not valid at import time.
    TIME.set_clock(world, 1);
    seed::certificate(
        world,
        "soon.example.com",
        TIME.t0(),
        TIME.at(n + days_left),
        Some("tls-team@example.com"),
    )
    .await
}

/// An enforce-mode policy notifying through a fresh SNS topic.
async fn enforce_policy(world: &World) -> tempfile::NamedTempFile {
    let topic = aws_sdk_sns::Client::new(&world.sdk().await)
        .create_topic()
        .name("keyrotor")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        format!(
            "mode = \"enforce\"\n[notifications]\nsns_topic_arn = \"{topic}\"\ndefault_contact = \"security@example.com\"\n"
        ),
    )
    .unwrap();
    file
}

#[tokio::test]
async fn sweep_without_a_kind_runs_iam_keys_api_keys_and_certificates_in_one_process() {
    // GIVEN on day 100 an IAM key never used since day 0, an API key older than its 90
    // days, and a certificate expiring in 3 days
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam_key = stale_iam_key(&world).await;
    let api_key = api_key_with_secret(&world).await;
    let cert = expiring_certificate(&world, 100, 3).await;
    let policy = enforce_policy(&world).await;
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    // WHEN `keyrotor sweep` runs with no --kind
    let out = ok(&run(TIME
        .keyrotor(&world, &policy, 100)
        .args(["sweep", "--output", "json"])));

    // THEN the output is one object keyed by kind, with every kind in it
    let done: Value = serde_json::from_str(&out).expect("sweep output is JSON");
    let kinds: Vec<&str> = done
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for kind in ["api-keys", "iam-keys", "migration", "certs"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    // AND the stale IAM key was warned about
    let warned = done["iam-keys"]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == iam_key.as_str())
        .unwrap_or_else(|| panic!("no action on {iam_key}: {done}"));
    assert_eq!(warned["action"], "warn", "{done}");
    assert_eq!(warned["status"], "done", "{done}");
    // AND the API key was rotated up to promotion: the secret now names the replacement
    let rotation = &done["api-keys"]["rotations"][0];
    assert_eq!(rotation["stage"], "promoted", "{done}");
    let replacement = rotation["new_key"].as_str().unwrap();
    assert_ne!(replacement, api_key);
    let current = aws_sdk_secretsmanager::Client::new(&world.sdk().await)
        .get_secret_value()
        .secret_id("orders/api-key")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    assert_eq!(current["apiKeyId"], replacement, "old {api_key}: {done}");
    // AND the certificate's owner was notified at the 7-day step
    let notified = done["certs"]["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["arn"] == cert.as_str())
        .unwrap_or_else(|| panic!("no notification for {cert}: {done}"));
    assert_eq!(notified["status"], "sent", "{done}");
    assert_eq!(notified["step"], "7d", "{done}");

    // WHEN it runs again, as a table
    let table = ok(&run(TIME.keyrotor(&world, &policy, 100).arg("sweep")));

    // THEN there is one section per kind, in the fixed order
    let sections: Vec<&str> = table.lines().filter(|l| l.starts_with("== ")).collect();
    assert_eq!(
        sections,
        ["== api-keys", "== iam-keys", "== migration", "== certs"],
        "{table}"
    );
}
