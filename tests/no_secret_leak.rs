//! Safety invariant 6: secret values never leak. Every output of a recorded plan — stdout in
//! both formats, stderr with debug logging on, and every audit item — is searched for the
//! API key values and the IAM secret access key that exist in the seeded account. The full
//! scan runs the scheduled sweep as Step Functions does and rotates secrets through the
//! Secrets Manager hook, then searches every log line, payload, table item and CLI output for
//! every credential value the account holds afterwards, the ones created during the run
//! included.

#[path = "support/lambda_host.rs"]
mod lambda_host;
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use chrono::Utc;
use serde_json::{Value, json};
use support::{World, example_policy, isolate_env, ok, repo_root, run, stderr};

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

/// Every credential value the account holds: API key values, and the `value` and
/// `secretAccessKey` fields of every version of every secret (deprecated versions included).
/// Maps each value to where it was found.
async fn credential_values(sdk: &aws_config::SdkConfig) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let gateway = aws_sdk_apigateway::Client::new(sdk);
    let mut position = None;
    loop {
        let page = gateway
            .get_api_keys()
            .include_values(true)
            .set_position(position)
            .limit(500)
            .send()
            .await
            .unwrap();
        for key in page.items() {
            values.insert(
                key.value().unwrap().to_owned(),
                format!("API key {}", key.id().unwrap_or("?")),
            );
        }
        position = page.position().map(str::to_owned);
        if position.is_none() || page.items().is_empty() {
            break;
        }
    }
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let list = secrets
        .list_secrets()
        .max_results(100)
        .send()
        .await
        .unwrap();
    for secret in list.secret_list() {
        let name = secret.name().unwrap();
        let versions = secrets
            .list_secret_version_ids()
            .secret_id(name)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for version in versions.versions() {
            let id = version.version_id().unwrap();
            let Ok(got) = secrets
                .get_secret_value()
                .secret_id(name)
                .version_id(id)
                .send()
                .await
            else {
                continue;
            };
            let Some(doc) = got
                .secret_string()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
            else {
                continue;
            };
            for field in ["value", "secretAccessKey"] {
                if let Some(v) = doc[field].as_str() {
                    values.insert(v.to_owned(), format!("{field} of {name} version {id}"));
                }
            }
        }
    }
    values
}

/// Every item of a DynamoDB table, as text.
async fn scan_table(sdk: &aws_config::SdkConfig, table: &str) -> (usize, String) {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let mut text = String::new();
    let mut count = 0;
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        count += page.items().len();
        text.push_str(&format!("{:?}", page.items()));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    (count, text)
}

fn enforce_policy() -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(example_policy())
        .unwrap()
        .replace("mode = \"plan\"", "mode = \"enforce\"");
    assert!(text.contains("mode = \"enforce\""));
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn a_full_sweep_and_the_rotation_hook_leak_no_secret_value_anywhere() {
    // GIVEN the demo world in enforce mode, and every credential value it holds
    let world = World::new();
    let now = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    world.seed_demo(&now);
    let sdk = world.sdk().await;
    let policy = enforce_policy();
    let before = credential_values(&sdk).await;
    let mut captured: Vec<(String, String)> = Vec::new();
    let cli = |args: &[&str]| {
        let mut cmd = world.keyrotor();
        cmd.env("KEYROTOR_LOG", "debug")
            .env("KEYROTOR_NOW", &now)
            .arg("--config")
            .arg(policy.path())
            .args(args);
        run(&mut cmd)
    };
    let out = cli(&["init"]);
    ok(&out);
    captured.push(("CLI init stderr".into(), stderr(&out)));

    // WHEN the scheduled sweep runs as Step Functions runs it, debug logs on, every event
    // and invocation recorded
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("function logs", dir.path().join("functions.log")),
        ("cargo-lambda log", dir.path().join("runtime.log")),
        ("execution history", dir.path().join("history.jsonl")),
        ("Lambda invocations", dir.path().join("invocations.jsonl")),
    ];
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyrotor-plan"))
        .parent()
        .unwrap();
    let mut sweep = Command::new(repo_root().join("scripts/sfn-local.sh"));
    isolate_env(&mut sweep);
    sweep
        .args(["sweep", "{}"])
        .env("KEYROTOR_SFN_ENDPOINT", &world.endpoint)
        .env("KEYROTOR_CONFIG", policy.path())
        .env("KEYROTOR_SFN_BIN_DIR", bin_dir)
        .env("KEYROTOR_LOG", "debug")
        .env("KEYROTOR_SFN_LOG", &files[0].1)
        .env("KEYROTOR_SFN_RUNTIME_LOG", &files[1].1)
        .env("KEYROTOR_SFN_HISTORY", &files[2].1)
        .env("KEYROTOR_SFN_INVOCATIONS", &files[3].1)
        .env("AWS_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    let out = sweep.output().expect("run scripts/sfn-local.sh");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("no JSON from sfn-local ({e}): {}", stderr(&out));
    });
    assert!(out.status.success(), "{doc:#}");
    let rotations = doc["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["machine"] == "api-key-rotation" && e["status"] == "SUCCEEDED")
        .count();
    assert!(rotations > 0, "no API key was rotated: {doc:#}");
    captured.push(("sfn-local stdout".into(), support::stdout(&out)));
    captured.push(("sfn-local stderr".into(), stderr(&out)));
    let file = |i: usize| read_file(&files[i].1);
    let (logs, history, invocations) = (file(0), file(2), file(3));
    assert!(
        logs.contains("DEBUG"),
        "the functions logged at debug level"
    );
    assert!(
        history.contains("\"StateExited\"") && history.contains("WaitForNextStep"),
        "the history holds the state payloads of parent and child executions"
    );
    for function in ["keyrotor-plan", "keyrotor-api-key", "keyrotor-iam-keys"] {
        assert!(invocations.contains(function), "{function} not invoked");
    }
    for (i, (label, _)) in files.iter().enumerate() {
        captured.push((label.to_string(), file(i)));
    }

    // ... and Secrets Manager rotates an IAM key secret and an API key secret through the hook
    let host = lambda_host::LambdaHost::start(
        &world,
        &policy,
        &[("KEYROTOR_LOG", "debug"), ("KEYROTOR_NOW", &now)],
    );
    let mut rotated = 0;
    for secret in [
        "keyrotor/iam/ci-deployer",
        "keyrotor/apikeys/partner-globex",
    ] {
        let token = uuid::Uuid::new_v4().to_string();
        world.start_rotation(secret, &token);
        for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
            let (status, body) = host.invoke(&json!({
                "Step": step, "SecretId": secret, "ClientRequestToken": token
            }));
            assert_eq!(status, 200, "{secret} {step}: {body}");
            captured.push((format!("hook output of {secret} {step}"), body.to_string()));
        }
        rotated += 1;
    }
    captured.push(("hook log".into(), host.log()));
    captured.push(("hook cargo-lambda log".into(), host.emulator_log()));
    drop(host);

    // ... and the CLI reports on all of it
    for args in [
        &["plan", "--record", "--output", "json"][..],
        &["plan", "--output", "table"],
        &["certs", "--output", "json"],
        &["audit", "list", "--output", "json"],
        &["audit", "list"],
        &["audit", "verify"],
    ] {
        let out = cli(args);
        captured.push((format!("CLI {args:?} stdout"), ok(&out)));
        captured.push((format!("CLI {args:?} stderr"), stderr(&out)));
    }
    let (audit_items, audit) = scan_table(&sdk, "keyrotor-audit").await;
    let (state_items, state) = scan_table(&sdk, "keyrotor-state").await;
    assert!(
        audit_items > 20 && state_items > 0,
        "{audit_items} {state_items}"
    );
    captured.push(("audit table".into(), audit));
    captured.push(("state table".into(), state));

    // THEN no capture contains any credential value, old or created during the run
    let after = credential_values(&sdk).await;
    let mut values = before.clone();
    values.extend(after.clone());
    let created: Vec<&String> = after.keys().filter(|v| !before.contains_key(*v)).collect();
    assert!(
        created.len() >= rotations + rotated,
        "one new API key per rotation of the sweep and one value per hook rotation: {created:?}"
    );
    assert!(values.keys().all(|v| v.len() >= 20), "{values:?}");
    for (label, text) in &captured {
        for (value, origin) in &values {
            assert!(
                !text.contains(value.as_str()),
                "{label} contains a secret value ({origin})"
            );
        }
    }
    eprintln!(
        "checked {} values ({} created during the run) in {} captures, {} bytes",
        values.len(),
        created.len(),
        captured.len(),
        captured.iter().map(|(_, t)| t.len()).sum::<usize>()
    );
}
