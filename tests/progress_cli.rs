//! Progress bars and colour: drawn on a terminal (a pseudo-terminal from util-linux `script`), never
//! with `--quiet`, never when stderr is not a terminal.

mod support;

use std::process::Command;

use support::{World, example_policy_with, ok, run, stderr};

const NOW: &str = "2026-11-25T00:00:00Z";

/// Runs `world.keyrotor()` with `args` under a pseudo-terminal; returns what the terminal
/// showed.
fn on_terminal(world: &World, policy: &std::path::Path, args: &[&str]) -> String {
    let base = world.keyrotor();
    let mut line = format!(
        "{} --endpoint-url {} --config {}",
        base.get_program().to_string_lossy(),
        world.endpoint,
        policy.display()
    );
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    let mut cmd = Command::new("script");
    support::isolate_env(&mut cmd);
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("KEYROTOR_NOW", NOW)
        .args(["-qec", &line, "/dev/null"]);
    let out = cmd.output().expect("run script (util-linux)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn bars_and_colour_show_on_a_terminal_only_and_bars_not_with_quiet() {
    let world = World::new();
    world.seed_demo(NOW);
    let policy = example_policy_with(&[]);
    let keyrotor = || {
        let mut cmd = world.keyrotor();
        cmd.env("KEYROTOR_NOW", NOW)
            .arg("--config")
            .arg(policy.path());
        cmd
    };
    ok(&run(keyrotor().arg("init")));

    // A terminal shows the bar of the per-user IAM reads, with its count.
    let shown = on_terminal(&world, policy.path(), &["plan", "--kind", "iam-keys"]);
    assert!(shown.contains("reading IAM users ["), "{shown}");
    assert!(shown.contains("/10 ("), "{shown}");
    assert!(shown.contains("ACTION"), "the plan itself follows: {shown}");

    // --quiet: the same command on a terminal draws nothing but the plan.
    let quiet = on_terminal(
        &world,
        policy.path(),
        &["plan", "--kind", "iam-keys", "--quiet"],
    );
    assert!(!quiet.contains("reading IAM users"), "{quiet}");
    assert!(quiet.contains("ACTION"), "{quiet}");

    // Colour on a terminal only.
    let coloured = on_terminal(&world, policy.path(), &["report"]);
    assert!(coloured.contains("\u{1b}[31mFAILED"), "{coloured}");
    let plain = ok(&run(keyrotor().arg("report")));
    assert!(
        plain.contains("FAILED") && !plain.contains('\u{1b}'),
        "{plain}"
    );

    // Not a terminal: no bar in the captured stderr.
    let piped = run(keyrotor().args(["plan", "--kind", "iam-keys"]));
    ok(&piped);
    assert!(
        !stderr(&piped).contains("reading IAM users"),
        "{}",
        stderr(&piped)
    );
}
