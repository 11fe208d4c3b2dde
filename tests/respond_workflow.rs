//! The respond state machine (state-machine/respond.asl.json) executed locally end to end
//! through scripts/sfn-local.sh: the real ASL under aws-local-stepfunctions, its Lambda
//! tasks served by the real `keyrotor-respond-*` and `keyrotor-record-failure` binaries
//! under cargo-lambda's runtime emulator, the functions calling the emulated account (whose
//! wrapper records every signed request and serves CloudTrail LookupEvents from it).

mod support;

use std::path::Path;
use std::process::Command;

use aws_sdk_iam::types::StatusType;
use serde_json::{Value, json};
use support::{PolicyText, World, isolate_env, ok, repo_root, run, seed};

/// What a run left behind besides its result: the execution history (every state's input
/// and output), and everything (history, Lambda invocations, the functions' debug logs,
/// cargo-lambda's log), for the leak check.
struct Captured {
    history: String,
    everything: String,
}

/// Runs the respond machine on `event`; returns whether the execution succeeded, the
/// runner's JSON document, and what the run left behind.
fn execute(
    world: &World,
    policy: &tempfile::NamedTempFile,
    event: &Value,
) -> (bool, Value, Captured) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyrotor-respond-contain"))
        .parent()
        .unwrap()
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let mut cmd = Command::new(repo_root().join("scripts/sfn-local.sh"));
    isolate_env(&mut cmd);
    cmd.arg("respond")
        .arg(event.to_string())
        .env("KEYROTOR_SFN_ENDPOINT", &world.endpoint)
        .env("KEYROTOR_CONFIG", policy.path())
        .env("KEYROTOR_SFN_BIN_DIR", bin_dir)
        .env("KEYROTOR_LOG", "debug")
        .env("KEYROTOR_SFN_LOG", file("functions.log"))
        .env("KEYROTOR_SFN_RUNTIME_LOG", file("runtime.log"))
        .env("KEYROTOR_SFN_HISTORY", file("history.jsonl"))
        .env("KEYROTOR_SFN_INVOCATIONS", file("invocations.jsonl"))
        .env("AWS_REGION", support::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    let out = cmd.output().expect("run scripts/sfn-local.sh");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON from sfn-local ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let read = |name: &str| std::fs::read_to_string(file(name)).unwrap_or_default();
    let history = read("history.jsonl");
    let everything = [
        doc.to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        history.clone(),
        read("invocations.jsonl"),
        read("functions.log"),
        read("runtime.log"),
    ]
    .join("\n");
    (
        out.status.success(),
        doc,
        Captured {
            history,
            everything,
        },
    )
}

/// Every item of a DynamoDB table, as text.
async fn table_text(world: &World, table: &str) -> String {
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        text.push_str(&format!("{:?}", page.items()));
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return text;
        }
    }
}

/// The states entered, in order.
fn entered(doc: &Value) -> Vec<&str> {
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "StateEntered")
        .filter_map(|e| e["state"].as_str())
        .collect()
}

/// An AWS Health risk event as EventBridge delivers it, naming `key` of `account`.
fn health_event(account: &str, key: &str) -> Value {
    json!({
        "version": "0",
        "id": "3c5d1a3e-9a3f-4f6e-8d1b-5a6c2e1f0b42",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": account,
        "time": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventArn": format!("arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/{key}"),
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": "Fri, 4 Dec 2026 09:00:00 GMT",
            "eventDescription": [{
                "language": "en_US",
                "latestDescription": "Your AWS access key was found publicly available."
            }],
            "affectedEntities": [{"entityValue": key}]
        }
    })
}

fn keyrotor(world: &World, policy: &tempfile::NamedTempFile) -> Command {
    let mut cmd = world.keyrotor();
    cmd.arg("--config").arg(policy.path());
    cmd
}

/// An IAM client signing with `key`, as whoever found it would.
async fn as_attacker(world: &World, key: &seed::Key) -> aws_sdk_iam::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(support::REGION))
        .endpoint_url(&world.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            key.id.clone(),
            key.secret.clone(),
            None,
            None,
            "tests",
        ))
        .load()
        .await;
    aws_sdk_iam::Client::new(&config)
}

#[tokio::test]
async fn a_health_event_is_contained_before_it_is_investigated_and_told_once() {
    // GIVEN user svc whose one key is bound to secret svc/iam, used by someone else to make
    // a user, and keyrotor deployed in enforce mode
    let world = World::new();
    let sdk = world.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let leaked = seed::user_with_bound_secret(&iam, &secrets, "svc", "svc/iam").await;
    let text = PolicyText::mode("enforce");
    let policy = text.file();
    ok(&run(keyrotor(&world, &policy).arg("init")));
    as_attacker(&world, &leaked)
        .await
        .create_user()
        .user_name("backdoor")
        .send()
        .await
        .expect("the attacker creates a user");
    let event = health_event(&world.account, &leaked.id);

    // WHEN EventBridge starts the respond machine with the Health event
    let (succeeded, doc, captured) = execute(&world, &policy, &event);

    // THEN the execution succeeded, containment ran before the investigation, and the
    // owner was told
    assert!(succeeded, "{doc:#}");
    assert_eq!(
        entered(&doc),
        vec![
            "Decode",
            "Respond",
            "Contain",
            "Investigate",
            "Notify",
            "AnyFailed",
            "Done"
        ],
        "{doc:#}"
    );
    let response = &doc["output"]["outcome"]["responses"][0];
    assert_eq!(response["key"], leaked.id.as_str(), "{doc:#}");
    assert_eq!(response["status"], "done", "{doc:#}");
    assert_eq!(response["failed"], false, "{doc:#}");
    assert_eq!(response["notified"], true, "{doc:#}");
    // ... the exposed key is inactive (kept, not deleted), its replacement is the secret's
    // AWSCURRENT and active
    let replacement = response["replacement"]
        .as_str()
        .unwrap_or_else(|| panic!("no replacement: {doc:#}"))
        .to_owned();
    assert_ne!(replacement, leaked.id);
    assert_eq!(
        support::inspect::key_status(&iam, "svc", &leaked.id).await,
        Some(StatusType::Inactive)
    );
    assert_eq!(
        support::inspect::key_status(&iam, "svc", &replacement).await,
        Some(StatusType::Active)
    );
    let current = secrets
        .get_secret_value()
        .secret_id("svc/iam")
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
    assert_eq!(current["accessKeyId"], replacement.as_str());
    // ... sessions issued before the response are revoked
    iam.get_user_policy()
        .user_name("svc")
        .policy_name("keyrotor-revoke-sessions")
        .send()
        .await
        .expect("the revocation policy is on the user");
    // ... the investigation (in the history: Investigate's output) saw the attacker's call
    assert!(
        captured.history.contains("CreateUser"),
        "the summary names CreateUser"
    );
    // ... no secret value is anywhere: payloads, history, invocations, the functions' debug
    // logs, the audit and state tables
    let tables = format!(
        "{}{}",
        table_text(&world, &text.parse().audit.table).await,
        table_text(&world, &text.parse().audit.state_table).await
    );
    assert!(tables.contains(&leaked.id), "the tables were scanned");
    let new_secret = current["secretAccessKey"].as_str().unwrap();
    for (what, value) in [("leaked", &leaked.secret[..]), ("new", new_secret)] {
        assert!(
            !captured.everything.contains(value),
            "the {what} secret is in a payload or a log"
        );
        assert!(!tables.contains(value), "the {what} secret is in a table");
    }
    // ... and the audit trail verifies
    ok(&run(keyrotor(&world, &policy).args(["audit", "verify"])));

    // WHEN the same event is delivered again
    let (succeeded, doc, _) = execute(&world, &policy, &event);

    // THEN nothing more is done: no new key, no second notification
    assert!(succeeded, "{doc:#}");
    let again = &doc["output"]["outcome"]["responses"][0];
    assert_eq!(again["status"], "no-op", "{doc:#}");
    assert_eq!(again["notified"], false, "{doc:#}");
    let keys = iam
        .list_access_keys()
        .user_name("svc")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.access_key_metadata().len(), 2);
}

#[tokio::test]
async fn a_malformed_event_takes_the_audited_failure_path_and_changes_nothing() {
    // GIVEN a user with an active key, and keyrotor deployed in enforce mode
    let world = World::new();
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "ci", &[]).await;
    let policy = PolicyText::mode("enforce").file();
    ok(&run(keyrotor(&world, &policy).arg("init")));
    // ... and a Health exposure event that names no key
    let arn = "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/no-key";
    let event = json!({
        "version": "0", "id": "e1", "detail-type": "AWS Health Event",
        "source": "aws.health", "account": world.account,
        "region": "us-east-1", "resources": [],
        "detail": {"eventArn": arn, "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                   "affectedEntities": []}
    });

    // WHEN the respond machine runs on it
    let (succeeded, doc, _) = execute(&world, &policy, &event);

    // THEN the execution failed on the failure path, after the decoder said why, with
    // nothing contained
    assert!(!succeeded, "{doc:#}");
    assert_eq!(doc["status"], "FAILED", "{doc:#}");
    assert_eq!(doc["Error"], "KeyRotor.RespondFailed", "{doc:#}");
    assert_eq!(
        entered(&doc),
        vec!["Decode", "DecodeFailed", "Failed"],
        "{doc:#}"
    );
    let caught = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "StateFailed" && e["state"] == "Decode")
        .unwrap_or_else(|| panic!("Decode did not fail: {doc:#}"));
    assert_eq!(caught["error"], "KeyRotor.InvalidInput", "{doc:#}");
    assert_eq!(
        support::inspect::key_status(&iam, "ci", &key.id).await,
        Some(StatusType::Active)
    );
    // ... and the event is on the record as could-not-act, and the failure as blocked
    let listed = ok(&run(keyrotor(&world, &policy).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        &format!("event:{arn}"),
    ])));
    assert!(listed.contains("could-not-act"), "{listed}");
    let failures = ok(&run(keyrotor(&world, &policy).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        "event",
    ])));
    assert!(failures.contains("KeyRotor.InvalidInput"), "{failures}");
}

#[tokio::test]
async fn a_break_glass_key_found_by_guardduty_is_left_active_investigated_and_the_run_fails() {
    // GIVEN a break-glass user's key, and a GuardDuty finding about it
    let world = World::new();
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "emergency", &[]).await;
    let policy = PolicyText::mode("enforce")
        .with("[exemptions]\nbreak_glass = [\"emergency\"]\n")
        .file();
    ok(&run(keyrotor(&world, &policy).arg("init")));
    let mut finding: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("examples/events/guardduty-finding.json"))
            .unwrap(),
    )
    .unwrap();
    finding["account"] = json!(world.account);
    finding["detail"]["accountId"] = json!(world.account);
    finding["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = json!(key.id);
    finding["detail"]["resource"]["accessKeyDetails"]["userName"] = json!("emergency");

    // WHEN the respond machine runs on it
    let (succeeded, doc, _) = execute(&world, &policy, &finding);

    // THEN the key is not changed (a person must decide, and was told at once), its
    // activity is still read for that person, and the execution ends failed so the
    // respond alarm fires: the key is not contained
    assert!(!succeeded, "{doc:#}");
    assert_eq!(doc["Error"], "KeyRotor.RespondIncomplete", "{doc:#}");
    assert_eq!(
        entered(&doc),
        vec![
            "Decode",
            "Respond",
            "Contain",
            "Investigate",
            "Notify",
            "AnyFailed",
            "Incomplete"
        ],
        "{doc:#}"
    );
    assert_eq!(
        support::inspect::key_status(&iam, "emergency", &key.id).await,
        Some(StatusType::Active)
    );
    let audit = ok(&run(keyrotor(&world, &policy).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        &key.id,
    ])));
    assert!(audit.contains("blocked"), "{audit}");
    assert!(audit.contains("investigate"), "{audit}");
}
