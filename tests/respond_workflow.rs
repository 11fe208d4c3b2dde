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

/// Runs the respond machine on `event`; returns the runner's JSON document, whether the
/// execution succeeded, and the execution history (every state's input and output, as one
/// text, for the leak check and the investigation's summary).
fn execute(
    world: &World,
    policy: &tempfile::NamedTempFile,
    event: &Value,
) -> (bool, Value, String) {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyrotor-respond-contain"))
        .parent()
        .unwrap()
        .to_owned();
    let history = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(repo_root().join("scripts/sfn-local.sh"));
    isolate_env(&mut cmd);
    cmd.arg("respond")
        .arg(event.to_string())
        .env("KEYROTOR_SFN_ENDPOINT", &world.endpoint)
        .env("KEYROTOR_CONFIG", policy.path())
        .env("KEYROTOR_SFN_BIN_DIR", bin_dir)
        .env("KEYROTOR_SFN_HISTORY", history.path())
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
    let history = std::fs::read_to_string(history.path()).unwrap_or_default();
    (out.status.success(), doc, history)
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
    let policy = PolicyText::mode("enforce").file();
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
    let (succeeded, doc, history) = execute(&world, &policy, &event);

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
        history.contains("CreateUser"),
        "the summary names CreateUser"
    );
    // ... no secret value is in any payload
    let payloads = format!("{doc}{history}");
    assert!(
        !payloads.contains(&leaked.secret),
        "the leaked secret is in a payload"
    );
    let new_secret = current["secretAccessKey"].as_str().unwrap();
    assert!(
        !payloads.contains(new_secret),
        "the new secret is in a payload"
    );
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
