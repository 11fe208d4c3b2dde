//! `keyrotor completions SHELL`: a script each shell accepts, naming every subcommand.

use std::process::Command;

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keyrotor"))
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const SUBCOMMANDS: [&str; 12] = [
    "plan",
    "certs",
    "report",
    "sweep",
    "rotate",
    "migrate",
    "reactivate",
    "schedule",
    "init",
    "audit",
    "policy",
    "completions",
];

#[test]
fn bash_completion_parses_and_names_every_subcommand() {
    let script = completions("bash");
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "bash completion lacks {sub}");
    }
    assert!(
        script.contains("complete -F _keyrotor"),
        "registers the function"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyrotor.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn zsh_and_fish_completions_name_every_subcommand() {
    let zsh = completions("zsh");
    assert!(
        zsh.starts_with("#compdef keyrotor"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    let fish = completions("fish");
    for sub in SUBCOMMANDS {
        assert!(zsh.contains(sub), "zsh completion lacks {sub}");
        assert!(
            fish.contains(&format!("-a \"{sub}\"")),
            "fish completion lacks {sub}"
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_keyrotor"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}
