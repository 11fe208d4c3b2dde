//! The state machines executed locally end to end (scripts/sfn-local.sh): the real ASL under
//! aws-local-stepfunctions, its Lambda tasks served by the real function binaries under
//! cargo-lambda's runtime emulator, the functions calling the emulated AWS account.

mod support;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use support::{World, isolate_env, ok, repo_root, run};

fn enforce_policy() -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(support::example_policy())
        .unwrap()
        .replace("mode = \"plan\"", "mode = \"enforce\"");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

/// Runs a state machine; returns the runner's JSON document and whether it succeeded.
fn execute(
    world: &World,
    policy: &tempfile::NamedTempFile,
    machine: &str,
    now: Option<&str>,
) -> (bool, Value) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyrotor-plan"))
        .parent()
        .unwrap()
        .to_owned();
    let mut cmd = Command::new(repo_root().join("scripts/sfn-local.sh"));
    isolate_env(&mut cmd);
    cmd.arg(machine)
        .arg("{}")
        .env("KEYROTOR_SFN_ENDPOINT", &world.endpoint)
        .env("KEYROTOR_CONFIG", policy.path())
        .env("KEYROTOR_SFN_BIN_DIR", bin_dir)
        .env("AWS_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    if let Some(now) = now {
        cmd.env("KEYROTOR_NOW", now);
    }
    let out = cmd.output().expect("run scripts/sfn-local.sh");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from sfn-local ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), doc)
}

fn events<'a>(doc: &'a Value, kind: &str) -> Vec<&'a Value> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn keyrotor(world: &World, policy: &tempfile::NamedTempFile) -> Command {
    let mut cmd = world.keyrotor();
    cmd.arg("--config").arg(policy.path());
    cmd
}

#[tokio::test]
async fn the_sweep_machine_rotates_deactivates_reports_and_audits() {
    let world = World::new();
    let now = Utc::now();
    let manifest = world.seed_demo(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let policy = enforce_policy();
    ok(&run(keyrotor(&world, &policy).arg("init")));

    let (succeeded, doc) = execute(&world, &policy, "sweep", None);
    assert!(succeeded, "{doc:#}");
    let results = &doc["output"]["results"];
    // IAM keys: the unused keys are warned.
    let warned: Vec<&Value> = results[0]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "warn")
        .collect();
    assert!(!warned.is_empty(), "{results:#}");
    // Certificates: owners notified of the ladder steps.
    assert!(
        !results[1]["notifications"].as_array().unwrap().is_empty(),
        "{results:#}"
    );
    // API keys: partner-acme (100 days old) rotated through grace and recovery in a child
    // execution whose Wait states held the time between the steps.
    let acme = manifest["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "partner-acme")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let child = doc["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["machine"] == "api-key-rotation")
        .unwrap_or_else(|| panic!("no child execution: {doc:#}"));
    assert_eq!(child["status"], "SUCCEEDED", "{doc:#}");
    assert_eq!(
        child["execution"],
        format!("api-key-{acme}-{}", now.format("%Y%m%d"))
    );
    let waits = events(&doc, "StateEntered")
        .into_iter()
        .filter(|e| e["state"] == "WaitForNextStep")
        .count();
    assert_eq!(waits, 2, "grace, then recovery");
    let gateway = aws_sdk_apigateway::Client::new(&world.sdk().await);
    assert!(
        gateway.get_api_key().api_key(&acme).send().await.is_err(),
        "the old key is deleted"
    );
    let payload = serde_json::to_string(&doc).unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&world.sdk().await);
    let current = secrets
        .get_secret_value()
        .secret_id("keyrotor/apikeys/partner-acme")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    assert_ne!(current["apiKeyId"], acme.as_str());
    assert!(
        !payload.contains(current["value"].as_str().unwrap()),
        "a key value in a state payload"
    );

    // Eight days later the warned keys, still unused, are deactivated.
    let later = (now + Duration::days(8)).to_rfc3339();
    let (succeeded, doc) = execute(&world, &policy, "sweep", Some(&later));
    assert!(succeeded, "{doc:#}");
    let deactivated = doc["output"]["results"][0]["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "deactivate" && a["status"] == "done")
        .count();
    assert!(deactivated > 0, "{doc:#}");

    ok(&run(keyrotor(&world, &policy).args(["audit", "verify"])));
}

#[tokio::test]
async fn a_retryable_error_is_retried_and_a_blocked_rotation_takes_the_audited_failure_path() {
    let world = World::new();
    world.set_clock(&Utc::now().to_rfc3339());
    let sdk = world.sdk().await;
    let policy = enforce_policy();
    ok(&run(keyrotor(&world, &policy).arg("init")));

    // Another run holds the IAM keys lease: the IAM sweep answers KeyRotor.Conflict, which
    // the machine retries, then catches into the failure path.
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let until = Utc::now() + Duration::hours(1);
    dynamodb
        .put_item()
        .table_name("keyrotor-state")
        .item("pk", AttributeValue::S("lease".into()))
        .item(
            "sk",
            AttributeValue::S(format!("iam-keys#{}", world.account)),
        )
        .item("holder", AttributeValue::S("run-elsewhere".into()))
        .item("expires_at", AttributeValue::S(until.to_rfc3339()))
        .item(
            "expires_epoch",
            AttributeValue::N(until.timestamp().to_string()),
        )
        .send()
        .await
        .unwrap();
    // An API key due for rotation whose secret names another key: blocked, not retried.
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    world.set_clock(&(Utc::now() - Duration::days(120)).to_rfc3339());
    let key = gateway
        .create_api_key()
        .name("partner-umbrella")
        .enabled(true)
        .tags("keyrotor:secret", "umbrella/api-key")
        .send()
        .await
        .unwrap();
    world.set_clock(&Utc::now().to_rfc3339());
    let key = key.id().unwrap().to_owned();
    let plan = gateway
        .create_usage_plan()
        .name("gold")
        .send()
        .await
        .unwrap();
    gateway
        .create_usage_plan_key()
        .usage_plan_id(plan.id().unwrap())
        .key_id(&key)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name("umbrella/api-key")
        .secret_string(json!({"apiKeyId": "someotherkey", "value": "x"}).to_string())
        .send()
        .await
        .unwrap();

    let (succeeded, doc) = execute(&world, &policy, "sweep", None);
    assert!(
        succeeded,
        "one failing branch does not fail the sweep: {doc:#}"
    );
    let retried: Vec<&Value> = events(&doc, "StateRetried")
        .into_iter()
        .filter(|e| e["state"] == "IamKeys")
        .collect();
    assert_eq!(retried.len(), 4, "MaxAttempts 4: {doc:#}");
    let failed: Vec<&Value> = events(&doc, "StateFailed")
        .into_iter()
        .filter(|e| e["state"] == "IamKeys")
        .collect();
    assert!(
        failed.iter().all(|e| e["error"] == "KeyRotor.Conflict"),
        "{doc:#}"
    );
    let entered: Vec<&str> = events(&doc, "StateEntered")
        .into_iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect();
    assert!(entered.contains(&"IamKeysFailed"), "{entered:?}");
    // The blocked rotation: one attempt, no retry, audited failure path, child failed.
    assert!(
        !events(&doc, "StateRetried")
            .iter()
            .any(|e| e["state"] == "Advance"),
        "a blocked rotation is not retried"
    );
    let child = doc["executions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["machine"] == "api-key-rotation")
        .unwrap();
    assert_eq!(child["status"], "FAILED", "{doc:#}");
    assert_eq!(child["Error"], "KeyRotor.RotationFailed", "{doc:#}");
    assert!(entered.contains(&"RecordFailure"), "{entered:?}");

    // Both failures are in the audit trail, and nothing was created for the blocked key.
    for resource in ["iam-keys", key.as_str()] {
        let out = run(keyrotor(&world, &policy).args([
            "audit",
            "list",
            "--resource",
            resource,
            "--output",
            "json",
        ]));
        let records: Value = serde_json::from_str(&ok(&out)).unwrap();
        assert!(
            records
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["outcome"] == "failed" || r["outcome"] == "blocked"),
            "{resource}: {records:#}"
        );
    }
    let keys = gateway.get_api_keys().send().await.unwrap();
    assert_eq!(
        keys.items().len(),
        1,
        "no replacement for a blocked rotation"
    );
    ok(&run(keyrotor(&world, &policy).args(["audit", "verify"])));
}

#[tokio::test]
async fn via_step_functions_starts_the_deployed_machine_and_follows_it() {
    // The emulator's Step Functions accepts executions but never runs them: this checks
    // what the CLI does with the service (start, follow, give up after --wait), not the
    // machine, which the tests above execute.
    let world = World::new();
    let policy = enforce_policy();
    ok(&run(keyrotor(&world, &policy).arg("init")));
    let sfn = aws_sdk_sfn::Client::new(&world.sdk().await);
    let definition =
        std::fs::read_to_string(repo_root().join("state-machine/sweep.asl.json")).unwrap();
    let machine = sfn
        .create_state_machine()
        .name("keyrotor-sweep")
        .definition(definition)
        .role_arn(format!(
            "arn:aws:iam::{}:role/keyrotor-sweep",
            world.account
        ))
        .send()
        .await
        .unwrap();
    let arn = machine.state_machine_arn().to_owned();
    let out = run(keyrotor(&world, &policy).args([
        "sweep",
        "--via",
        "step-functions",
        "--state-machine-arn",
        &arn,
        "--wait",
        "2s",
        "--output",
        "json",
    ]));
    assert_eq!(out.status.code(), Some(7), "{}", support::stderr(&out));
    assert!(
        support::stderr(&out).contains("is RUNNING"),
        "{}",
        support::stderr(&out)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let execution = doc["execution"]["execution"].as_str().unwrap().to_owned();
    assert!(
        execution.contains(":execution:keyrotor-sweep:sweep-cli-"),
        "{execution}"
    );
    let described = sfn
        .describe_execution()
        .execution_arn(&execution)
        .send()
        .await
        .unwrap();
    assert_eq!(described.input(), Some("{}"));

    let out = run(keyrotor(&world, &policy).args(["sweep", "--via", "step-functions"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        support::stderr(&out).contains("--state-machine-arn"),
        "{}",
        support::stderr(&out)
    );
}

#[tokio::test]
async fn a_large_plan_is_written_to_s3_for_the_distributed_map() {
    let world = World::new();
    let now = Utc::now();
    let manifest = world.seed_demo(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let policy = enforce_policy();
    ok(&run(keyrotor(&world, &policy).arg("init")));
    let sdk = world.sdk().await;
    let aws = keyrotor::aws::Aws::from_config(sdk.clone());
    let s3 = aws.s3();
    // Bucket names are global, across the emulator's accounts too.
    let bucket = format!("keyrotor-plans-{}", world.account);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let ctx = keyrotor::lambda::Context {
        aws,
        policy: keyrotor::domain::policy::Policy::from_toml(
            &std::fs::read_to_string(policy.path()).unwrap(),
            "policy",
        )
        .unwrap(),
        region: support::REGION.into(),
        fixed_now: Some(now),
        items_bucket: Some(bucket.clone()),
        // Every plan counts as large here.
        inline_items: 0,
        caller: None,
    };
    let out = keyrotor::lambda::run_job(&ctx, keyrotor::lambda::Job::Plan, json!({}))
        .await
        .unwrap();
    assert_eq!(out["large"], true, "{out}");
    assert_eq!(
        out["api_keys"],
        json!([]),
        "nothing large in the state payload: {out}"
    );
    let key = out["items"]["key"].as_str().unwrap();
    let object = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let body = object.body.collect().await.unwrap().into_bytes();
    let items: Value = serde_json::from_slice(&body).unwrap();
    let acme = manifest["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "partner-acme")
        .unwrap()["id"]
        .clone();
    assert_eq!(items[0]["key"], acme, "{items}");
    assert!(
        items[0]["execution"]
            .as_str()
            .unwrap()
            .starts_with("api-key-")
    );
    // The machine reads exactly that location when the plan is large.
    let sweep: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("state-machine/sweep.asl.json")).unwrap(),
    )
    .unwrap();
    let branch = &sweep["States"]["Sweep"]["Branches"][3]["States"];
    assert_eq!(
        branch["LargePlan"]["Choices"][0]["Variable"],
        "$.plan.large"
    );
    assert_eq!(
        branch["ApiKeysDistributed"]["ItemReader"]["Parameters"]["Key.$"],
        "$.plan.items.key"
    );
}

#[tokio::test]
async fn in_plan_mode_the_deployed_functions_start_no_rotation() {
    let world = World::new();
    let now = Utc::now();
    let manifest = world.seed_demo(&now.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let plan_policy = {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(
            std::fs::read_to_string(support::example_policy())
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        file
    };
    ok(&run(keyrotor(&world, &plan_policy).arg("init")));
    let ctx = keyrotor::lambda::Context {
        aws: keyrotor::aws::Aws::from_config(world.sdk().await),
        policy: keyrotor::domain::policy::Policy::from_toml(
            &std::fs::read_to_string(plan_policy.path()).unwrap(),
            "policy",
        )
        .unwrap(),
        region: support::REGION.into(),
        fixed_now: Some(now),
        items_bucket: None,
        inline_items: 40,
        caller: None,
    };
    let out = keyrotor::lambda::run_job(&ctx, keyrotor::lambda::Job::Plan, json!({}))
        .await
        .unwrap();
    assert_eq!(out["api_keys"], json!([]), "{out}");
    assert!(out["api_keys_due"].as_u64().unwrap() > 0, "{out}");
    let acme = manifest["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "partner-acme")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = keyrotor::lambda::run_job(&ctx, keyrotor::lambda::Job::ApiKey, json!({"key": acme}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "KeyRotor.Blocked", "{err}");
    let keys = aws_sdk_apigateway::Client::new(&world.sdk().await)
        .get_api_keys()
        .send()
        .await
        .unwrap();
    assert!(
        keys.items()
            .iter()
            .all(|k| !k.name().unwrap_or_default().contains("-kr-")),
        "no replacement created"
    );
}
