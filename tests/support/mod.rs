//! Test support: the local AWS world.
//!
//! [`emulator`] starts `tests/emulator/moto_world.py` once per test process on a free
//! loopback port (or reuses `KEYROTOR_TEST_ENDPOINT`); every [`World`] is a fresh, randomly
//! numbered account in it, so tests never see each other's resources even when they share
//! one emulator. The real `keyrotor` binary and the real AWS SDK reach it through an
//! ordinary endpoint URL.
//!
//! The shared kit every test file uses instead of its own copy: [`timeline`] (day `n` for
//! keyrotor's clock and the emulator's at once), [`policy`] (policy files from a TOML
//! snippet), [`seed`] (users, keys, API keys and secrets in the emulator) and [`inspect`]
//! (reading them back).
#![allow(dead_code)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};

pub mod faults;
pub mod inspect;
pub mod policy;
pub mod seed;
pub mod timeline;

#[allow(unused_imports)] // as dead_code above: not every test binary uses both
pub use {policy::PolicyText, timeline::Timeline};

pub const REGION: &str = "us-east-1";

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup` (or scripts/setup.sh) to install the emulator",
        python.display()
    );
    python
}

pub struct Emulator {
    pub base: String,
    _child: Option<Child>,
}

/// The emulator shared by this test process.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        if let Ok(url) = std::env::var("KEYROTOR_TEST_ENDPOINT")
            && !url.trim().is_empty()
        {
            return Emulator {
                base: url.trim_end_matches('/').to_owned(),
                _child: None,
            };
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let port_file = dir.path().join("port");
        let child = Command::new(python())
            .arg(repo_root().join("tests/emulator/moto_world.py"))
            .args(["--port", "0", "--port-file"])
            .arg(&port_file)
            .args(["--parent-pid", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_world.py");
        let started = Instant::now();
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                break p.trim().to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "emulator did not start within 60s"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The directory may go: the port is read.
        drop(dir);
        Emulator {
            base: format!("http://127.0.0.1:{port}"),
            _child: Some(child),
        }
    })
}

/// One isolated account in the emulator.
#[derive(Clone)]
pub struct World {
    pub account: String,
    pub endpoint: String,
    base: String,
}

impl World {
    /// A fresh account with a random 12-digit id.
    pub fn new() -> World {
        let base = emulator().base.clone();
        let n = uuid::Uuid::new_v4().as_u128() % 900_000_000_000 + 100_000_000_000;
        let account = format!("{n:012}");
        World {
            endpoint: format!("{base}/_account/{account}"),
            account,
            base,
        }
    }

    /// Another account of the same emulator (an organization's member account, say).
    pub fn other(&self, account: &str) -> World {
        World {
            account: account.to_owned(),
            endpoint: format!("{}/_account/{account}", self.base),
            base: self.base.clone(),
        }
    }

    /// Seeds the demo world as of `now` (RFC 3339); returns the seeder's manifest.
    pub fn seed_demo(&self, now: &str) -> serde_json::Value {
        let out = Command::new(python())
            .arg(repo_root().join("tests/emulator/seed_world.py"))
            .args([
                "--endpoint",
                &self.base,
                "--account",
                &self.account,
                "--now",
                now,
            ])
            .args(["--region", REGION])
            .output()
            .expect("run seed_world.py");
        assert!(
            out.status.success(),
            "seed_world.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("seed manifest is JSON")
    }

    /// What Secrets Manager's RotateSecret does before invoking a rotation function: a new
    /// empty version `token` staged AWSPENDING, rotation enabled.
    pub fn start_rotation(&self, secret: &str, token: &str) {
        let script = "import json,sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], data=json.dumps({'account': sys.argv[2], 'region': sys.argv[3], 'secret': sys.argv[4], 'token': sys.argv[5]}).encode(), method='POST'), timeout=10).read()";
        let status = Command::new(python())
            .args([
                "-c",
                script,
                &format!("{}/_keyrotor/rotation-start", self.base),
                &self.account,
                REGION,
                secret,
                token,
            ])
            .status()
            .expect("run python");
        assert!(status.success(), "starting a rotation of {secret} failed");
    }

    /// Moves this account's emulator clock.
    pub fn set_clock(&self, now: &str) {
        // The project's own Python (installed by scripts/setup.sh) does the POST, so the
        // tests need no HTTP client of their own.
        let script = "import json,sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], data=json.dumps({'account': sys.argv[2], 'now': sys.argv[3]}).encode(), method='POST'), timeout=10).read()";
        let status = Command::new(python())
            .args([
                "-c",
                script,
                &format!("{}/_keyrotor/clock", self.base),
                &self.account,
                now,
            ])
            .status()
            .expect("run python");
        assert!(
            status.success(),
            "moving the emulator clock to {now} failed"
        );
    }

    /// The `keyrotor` binary, pointed at this account, isolated from the user's AWS config.
    pub fn keyrotor(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor"));
        isolate_env(&mut cmd);
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", REGION)
            .args(["--endpoint-url", &self.endpoint]);
        cmd
    }

    /// SDK configuration for direct checks of the emulator's state.
    pub async fn sdk(&self) -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .load()
            .await
    }
}

/// The migration guard's managed policy as infra/template.yaml and infra/member-role.yaml
/// create it in every account (`policy/keyrotor/keyrotor-migration-guard`, the document of
/// `guard_policy()`); returns its ARN.
pub async fn create_migration_guard_policy(world: &World) -> String {
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let out = iam
        .create_policy()
        .policy_name(keyrotor::domain::migration::GUARD_POLICY_NAME)
        .path(keyrotor::domain::migration::GUARD_POLICY_PATH)
        .policy_document(keyrotor::domain::migration::guard_policy().to_string())
        .send()
        .await
        .expect("create the migration guard policy");
    out.policy().and_then(|p| p.arn()).unwrap().to_owned()
}

/// Removes every AWS/keyrotor variable of the caller's environment and points the AWS
/// config files at nothing, so a developer's real profile is never used by a test.
pub fn isolate_env(cmd: &mut Command) {
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("KEYROTOR_") {
            cmd.env_remove(key);
        }
    }
    let nowhere = std::env::temp_dir().join("keyrotor-no-aws-config");
    cmd.env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .current_dir(repo_root());
}

/// Runs a command and returns its output, failing the test with stderr if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run keyrotor")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "keyrotor failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// A policy file: the example policy with each `(from, to)` text replaced (each `from` must
/// be there).
pub fn example_policy_with(replacements: &[(&str, &str)]) -> tempfile::NamedTempFile {
    let mut text = std::fs::read_to_string(example_policy()).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "the example policy has no {from:?}");
        text = text.replace(from, to);
    }
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file
}

pub fn example_policy() -> PathBuf {
    repo_root().join("examples/keyrotor.toml")
}
