//! cargo-lambda's Lambda runtime emulator with the real Secrets Manager rotation hook binary
//! attached to it, invoked over the Lambda Invoke API as Secrets Manager would. Included by
//! the test files that need it (`#[path = "support/lambda_host.rs"] mod lambda_host;`).
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{REGION, World, isolate_env, repo_root};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct LambdaHost {
    port: u16,
    emulator: Child,
    function: Child,
    log: tempfile::NamedTempFile,
    emulator_log: tempfile::NamedTempFile,
}

impl LambdaHost {
    /// The hook with `policy` as its KEYROTOR_CONFIG and `env` added to its environment
    /// (e.g. `KEYROTOR_NOW`, `KEYROTOR_LOG`).
    pub fn start(world: &World, policy: &tempfile::NamedTempFile, env: &[(&str, &str)]) -> Self {
        let cargo_lambda = repo_root().join(".venv/bin/cargo-lambda");
        assert!(
            cargo_lambda.exists(),
            "{} is missing: run scripts/setup.sh",
            cargo_lambda.display()
        );
        let port = free_port();
        let emulator_log = tempfile::NamedTempFile::new().unwrap();
        let emulator = Command::new(cargo_lambda)
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-q",
                "-A",
                "127.0.0.1",
                "-P",
            ])
            .arg(port.to_string())
            .current_dir(repo_root())
            .stdout(emulator_log.reopen().unwrap())
            .stderr(emulator_log.reopen().unwrap())
            .spawn()
            .expect("start cargo lambda watch");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyrotor-secret-rotation"));
        isolate_env(&mut cmd);
        cmd.env(
            "AWS_LAMBDA_RUNTIME_API",
            format!("http://127.0.0.1:{port}/.rt"),
        )
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", &world.endpoint)
        .env("KEYROTOR_CONFIG", policy.path());
        for (key, value) in env {
            cmd.env(key, value);
        }
        // Both streams: Lambda sends stdout and stderr to CloudWatch Logs.
        let function = cmd
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("start the hook binary");
        LambdaHost {
            port,
            emulator,
            function,
            log,
            emulator_log,
        }
    }

    /// Invokes the function; returns (HTTP status, body).
    pub fn invoke(&self, event: &Value) -> (u16, Value) {
        let body = event.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        write!(
            stream,
            "POST /2015-03-31/functions/_/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status: u16 = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {response:?}"));
        let payload = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        // The emulator may answer with chunked encoding: keep the JSON part.
        let json_text = payload
            .find(['{', '"'])
            .map(|i| &payload[i..payload.rfind(['}', '"']).map_or(payload.len(), |j| j + 1)])
            .unwrap_or("null");
        (
            status,
            serde_json::from_str(json_text)
                .unwrap_or_else(|e| panic!("body {payload:?} is not JSON: {e}")),
        )
    }

    /// Everything the function wrote (stdout and stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Everything cargo-lambda's runtime emulator wrote.
    pub fn emulator_log(&self) -> String {
        std::fs::read_to_string(self.emulator_log.path()).unwrap_or_default()
    }
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        let _ = self.function.kill();
        let _ = self.emulator.kill();
        let _ = self.function.wait();
        let _ = self.emulator.wait();
    }
}
