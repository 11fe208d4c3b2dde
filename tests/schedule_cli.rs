//! `keyrotor schedule`: the template's schedule expression checked before deployment.

mod support;

use support::{isolate_env, ok, run, stderr};

fn keyrotor() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_keyrotor"));
    isolate_env(&mut cmd);
    cmd.env("KEYROTOR_NOW", "2026-11-25T12:00:00Z");
    cmd
}

#[test]
fn the_default_schedule_and_its_next_runs() {
    let out = ok(&run(keyrotor().args(["schedule", "--output", "json"])));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["expression"], "cron(0 6 * * ? *)");
    assert_eq!(doc["next"][0], "2026-11-26T06:00:00Z");
    assert_eq!(doc["next"].as_array().unwrap().len(), 5);
    // The template's default is the same expression.
    let template =
        std::fs::read_to_string(support::repo_root().join("infra/template.yaml")).unwrap();
    assert!(template.contains("Default: cron(0 6 * * ? *)"));
}

#[test]
fn an_invalid_expression_exits_2_naming_the_problem() {
    let out = run(keyrotor().args(["schedule", "--cron", "cron(0 6 * * * *)"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("needs ? in one of them"),
        "{}",
        stderr(&out)
    );
}
