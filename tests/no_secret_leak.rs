//! Safety invariant 6: secret values never leak. Every output of a recorded plan — stdout in
//! both formats, stderr with debug logging on, and every audit item — is searched for the
//! API key values and the IAM secret access key that exist in the seeded account.

mod support;

use support::{World, example_policy, ok, run, stderr};

const NOW: &str = "2026-11-25T00:00:00Z";

#[tokio::test]
async fn a_recorded_plan_contains_no_secret_value_anywhere() {
    // GIVEN the demo world, and every secret value in it
    let world = World::new();
    world.seed_demo(NOW);
    let sdk = world.sdk().await;
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let mut secrets: Vec<String> = Vec::new();
    let keys = apigw
        .get_api_keys()
        .include_values(true)
        .send()
        .await
        .unwrap();
    for key in keys.items() {
        secrets.push(key.value().unwrap().to_owned());
    }
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let value = sm
        .get_secret_value()
        .secret_id("keyrotor/iam/ci-deployer")
        .send()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
    secrets.push(doc["secretAccessKey"].as_str().unwrap().to_owned());
    assert!(
        secrets.len() >= 5 && secrets.iter().all(|s| s.len() >= 20),
        "{}",
        secrets.len()
    );

    // WHEN the plan is recorded and printed, with debug logs on
    ok(&run(world.keyrotor().arg("init")));
    let mut outputs = Vec::new();
    for format in ["json", "table"] {
        let out = run(world
            .keyrotor()
            .env("KEYROTOR_NOW", NOW)
            .env("KEYROTOR_LOG", "debug")
            .arg("--config")
            .arg(example_policy())
            .args(["plan", "--record", "--output", format]));
        outputs.push(ok(&out));
        outputs.push(stderr(&out));
    }
    outputs.push(ok(&run(world
        .keyrotor()
        .args(["audit", "list", "--output", "json"]))));
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let items = ddb
        .scan()
        .table_name("keyrotor-audit")
        .send()
        .await
        .unwrap();
    assert!(items.count() > 0);
    outputs.push(format!("{:?}", items.items()));

    // THEN no output contains any of them
    for (i, text) in outputs.iter().enumerate() {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "output #{i} contains a secret value"
            );
        }
    }
}
