//! Bad input and unreachable or unusable AWS: one clear line, the documented exit code, no
//! panic, and nothing changed.

mod support;

use std::process::Command;

use support::{World, isolate_env, run, stderr, stdout};

fn assert_clean_failure(out: &std::process::Output, code: i32) -> String {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {err}\nstdout: {}",
        stdout(out)
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("stack backtrace"), "{err}");
    assert!(err.starts_with("keyrotor: error: "), "{err}");
    err
}

#[tokio::test]
async fn malformed_policy_exits_2_names_file_line_and_key_and_changes_nothing() {
    let world = World::new();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("keyrotor.toml");
    std::fs::write(
        &policy,
        "mode = \"plan\"\n\n[iam_keys]\nmax_age_days = -3\n",
    )
    .unwrap();

    let out = run(world.keyrotor().arg("--config").arg(&policy).arg("init"));
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("keyrotor.toml:4:"), "{err}");
    assert!(err.contains("iam_keys.max_age_days"), "{err}");
    assert!(err.contains("1 to 3650"), "{err}");

    // `init` did not run: no table exists
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    assert!(
        ddb.list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .is_empty()
    );
}

#[test]
fn unknown_policy_key_lists_the_allowed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "[certs]\nladder = [30]\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd.arg("--config").arg(&policy).args(["policy", "check"]));
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("p.toml:2:1"), "{err}");
    assert!(err.contains("ladder_days"), "{err}");
}

#[test]
fn policy_check_prints_the_effective_policy() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd
        .arg("--config")
        .arg(support::example_policy())
        .args(["policy", "check", "--output", "json"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(policy["iam_keys"]["max_age_days"], 90);
    assert_eq!(
        policy["certs"]["ladder_days"],
        serde_json::json!([45, 30, 14, 7])
    );
}

#[test]
fn missing_policy_file_is_named() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd.args(["--config", "/nonexistent/keyrotor.toml", "policy", "check"]));
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("/nonexistent/keyrotor.toml"), "{err}");
}

#[test]
fn unreachable_endpoint_is_one_line_with_the_fix() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args([
            "--region",
            "us-east-1",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "plan",
        ]));
    let err = assert_clean_failure(&out, 3);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach AWS"), "{err}");
    assert!(err.contains("--endpoint-url"), "{err}");
}

#[test]
fn missing_credentials_are_explained() {
    let world = World::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd.args([
        "--region",
        "us-east-1",
        "--endpoint-url",
        &world.endpoint,
        "plan",
    ]));
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(err.contains("--profile"), "{err}");
}

#[test]
fn missing_region_is_explained() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .arg("plan"));
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("--region"), "{err}");
}

#[test]
fn bad_keyrotor_now_is_rejected_before_any_call() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    let out = run(cmd.env("KEYROTOR_NOW", "next tuesday").args([
        "--region",
        "us-east-1",
        "--endpoint-url",
        "http://127.0.0.1:9",
        "plan",
    ]));
    let err = assert_clean_failure(&out, 2);
    assert!(err.contains("KEYROTOR_NOW"), "{err}");
}

#[test]
fn plan_record_without_tables_says_to_run_init_and_records_nothing() {
    let world = World::new();
    world.seed_demo("2026-11-25T00:00:00Z");
    let out = run(world.keyrotor().args(["plan", "--record"]));
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("keyrotor init"), "{err}");
    assert!(
        stdout(&out).is_empty(),
        "no plan printed when it could not be recorded"
    );
}

#[test]
fn audit_verify_without_table_says_to_run_init() {
    let world = World::new();
    let out = run(world.keyrotor().args(["audit", "verify"]));
    let err = assert_clean_failure(&out, 3);
    assert!(err.contains("keyrotor init"), "{err}");
}
