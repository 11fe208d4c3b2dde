//! Concurrent runs on one credential, through the real SDK and the real CLI: the Lambda
//! job, the CLI, the scheduled sweep and the Secrets Manager hook started while another
//! run holds the key's lease make exactly one replacement; the others answer "in progress".
//! A crashed holder's lease expires after its TTL and the next run takes the rotation
//! over without a second replacement.

mod support;

use std::sync::mpsc;
use std::time::Duration as StdDuration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{Duration, Utc};
use keyrotor::aws::Aws;
use keyrotor::aws::dynamodb::DynamoTables;
use keyrotor::domain::policy::Policy;
use keyrotor::lambda::{Context, Job};
use keyrotor::steps::StepError;
use serde_json::{Value, json};
use support::{PolicyText, World, policy::CONTACT, run, seed, stderr, stdout};

/// Enforce, with a contact for the warnings.
fn policy_text() -> PolicyText {
    PolicyText::mode("enforce").with(CONTACT)
}

fn policy() -> Policy {
    policy_text().parse()
}

fn policy_file() -> tempfile::NamedTempFile {
    policy_text().file()
}

/// Stops the calling run at its first `apigateway:CreateApiKey`: tells `reached`, then
/// waits for `go` (the run holds the key's lease all that time).
#[derive(Debug)]
struct Gate {
    reached: mpsc::SyncSender<()>,
    go: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl Intercept for Gate {
    fn name(&self) -> &'static str {
        "concurrency::Gate"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "CreateApiKey")
        {
            let _ = self.reached.send(());
            let _ = self.go.lock().unwrap().recv();
        }
        Ok(())
    }
}

struct ApiWorld {
    world: World,
    gateway: aws_sdk_apigateway::Client,
    secrets: aws_sdk_secretsmanager::Client,
    old: String,
}

/// Key `billing-client`, 100 days old (due for the sweep), in one usage plan, its value in
/// secret `billing/api-key` (tagged for the rotation hook).
async fn api_world() -> ApiWorld {
    let world = World::new();
    world.set_clock(&(Utc::now() - Duration::days(100)).to_rfc3339());
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let (old, value) = seed::api_key(
        &gateway,
        "billing-client",
        &[("keyrotor:secret", "billing/api-key")],
    )
    .await;
    seed::usage_plan_with(&gateway, "gold", &old).await;
    seed::api_key_secret(
        &secrets,
        "billing/api-key",
        &old,
        &value,
        &[
            ("keyrotor:type", "apigw-api-key"),
            ("keyrotor:api-key", "billing-client"),
        ],
    )
    .await;
    world.set_clock(&Utc::now().to_rfc3339());
    keyrotor::steps::init(
        &DynamoTables::new(Aws::from_config(sdk).dynamodb()),
        &policy(),
    )
    .await
    .unwrap();
    ApiWorld {
        world,
        gateway,
        secrets,
        old,
    }
}

impl ApiWorld {
    async fn keys(&self) -> Vec<String> {
        self.gateway
            .get_api_keys()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter_map(|k| k.id().map(str::to_owned))
            .collect()
    }

    async fn current(&self) -> String {
        let v = self
            .secrets
            .get_secret_value()
            .secret_id("billing/api-key")
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(v.secret_string().unwrap()).unwrap();
        v["apiKeyId"].as_str().unwrap().to_owned()
    }

    async fn context(&self, aws: Aws) -> Context {
        let _ = &self.world;
        Context {
            aws,
            policy: policy(),
            region: support::REGION.to_owned(),
            fixed_now: Some(Utc::now()),
            items_bucket: None,
            inline_items: 40,
            caller: None,
        }
    }

    fn keyrotor(&self, policy: &tempfile::NamedTempFile) -> std::process::Command {
        let mut cmd = self.world.keyrotor();
        cmd.arg("--config").arg(policy.path());
        cmd
    }
}

/// Runs the API key job in a thread of its own, stopped at its CreateApiKey until the
/// returned sender says go.
fn paused_holder(
    w: &ApiWorld,
) -> (
    mpsc::Sender<()>,
    std::thread::JoinHandle<Result<Value, StepError>>,
) {
    let (reached_tx, reached) = mpsc::sync_channel(1);
    let (go, go_rx) = mpsc::channel();
    let gate = Gate {
        reached: reached_tx,
        go: std::sync::Mutex::new(go_rx),
    };
    let (world, old) = (w.world.clone(), w.old.clone());
    let holder = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let aws = Aws::from_config(world.sdk().await).with_interceptor(gate);
                let ctx = Context {
                    aws,
                    policy: policy(),
                    region: support::REGION.to_owned(),
                    fixed_now: Some(Utc::now()),
                    items_bucket: None,
                    inline_items: 40,
                    caller: None,
                };
                keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": old })).await
            })
    });
    reached
        .recv_timeout(StdDuration::from_secs(60))
        .expect("the holder reaches CreateApiKey");
    (go, holder)
}

#[tokio::test]
async fn runs_started_while_one_holds_the_lease_are_in_progress_and_one_replacement_is_made() {
    let w = api_world().await;
    let policy_file = policy_file();
    let (go, holder) = paused_holder(&w);

    // WHEN the CLI (twice), the scheduled sweep and the Lambda job start on the same key.
    let cli: Vec<_> = (0..2)
        .map(|_| {
            w.keyrotor(&policy_file)
                .args(["rotate", "api-key", &w.old])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let sweep = run(w
        .keyrotor(&policy_file)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));
    let ctx = w.context(Aws::from_config(w.world.sdk().await)).await;
    let job = keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": w.old })).await;

    // THEN each of them reports "in progress" and changes nothing.
    for child in cli {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
        assert!(stderr(&out).contains("in progress"), "{}", stderr(&out));
    }
    let doc: Value = serde_json::from_str(&stdout(&sweep))
        .unwrap_or_else(|e| panic!("sweep: {e}\n{}\n{}", stdout(&sweep), stderr(&sweep)));
    assert_eq!(doc["rotations"][0]["status"], "conflict", "{doc:#}");
    assert!(
        matches!(job, Err(StepError::InProgress(_))),
        "the Lambda job: {job:?}"
    );
    assert_eq!(
        w.keys().await.len(),
        1,
        "nothing created while the lease is held"
    );

    // AND the holder, let go, makes the one replacement.
    go.send(()).unwrap();
    let done = holder.join().unwrap().unwrap();
    let keys = w.keys().await;
    assert_eq!(keys.len(), 2, "one replacement: {keys:?}");
    assert_eq!(done["new_key"].as_str(), Some(w.current().await.as_str()));
}

#[tokio::test]
async fn the_rotation_hook_on_a_secret_whose_key_is_being_rotated_makes_no_second_replacement() {
    let w = api_world().await;
    let (go, holder) = paused_holder(&w);

    // WHEN Secrets Manager starts a rotation of the key's secret meanwhile.
    let token = uuid::Uuid::new_v4().to_string();
    w.world.start_rotation("billing/api-key", &token);
    let ctx = w.context(Aws::from_config(w.world.sdk().await)).await;
    let mut hook = Vec::new();
    for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
        let event = lambda_runtime::LambdaEvent::new(
            json!({"Step": step, "SecretId": "billing/api-key", "ClientRequestToken": token}),
            lambda_runtime::Context::default(),
        );
        let result = keyrotor::lambda::secret_rotation(&ctx, event).await;
        let failed = result.is_err();
        hook.push((step, result.map_err(|d| d.error_type)));
        if failed {
            break;
        }
    }
    assert_eq!(
        hook.first().map(|(_, r)| r.clone().map(|_| ())),
        Some(Err("KeyRotor.Conflict".to_owned())),
        "createSecret waits for the rotation holding the key's lease: {hook:?}"
    );
    go.send(()).unwrap();
    let job = holder.join().unwrap();

    // THEN one key replaces the old one, whichever run made it.
    let keys = w.keys().await;
    let replacements: Vec<_> = keys.iter().filter(|k| **k != w.old).collect();
    assert_eq!(
        replacements.len(),
        1,
        "replacements {replacements:?}; hook {hook:?}; job {job:?}"
    );
}

#[tokio::test]
async fn a_crashed_runs_lease_expires_and_the_next_run_takes_the_rotation_over() {
    let w = api_world().await;
    let policy_file = policy_file();
    // GIVEN a CLI run killed after it created the replacement, holding the lease.
    let mut child = w
        .keyrotor(&policy_file)
        .args(["rotate", "api-key", &w.old])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while w.keys().await.len() < 2 {
        assert!(
            started.elapsed() < StdDuration::from_secs(60),
            "no replacement created"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();

    // WHEN another run starts within the lease's TTL: in progress.
    let out = run(w.keyrotor(&policy_file).args(["rotate", "api-key", &w.old]));
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("in progress"), "{}", stderr(&out));

    // WHEN a run starts after the TTL (15 minutes, on the wall clock: KEYROTOR_NOW moves
    // the policy time only, so the run is given a wall clock 16 minutes ahead).
    let aws = Aws::from_config(w.world.sdk().await);
    let identity = keyrotor::aws::sts::StsIdentity::new(aws.sts());
    let gateway = keyrotor::aws::apigateway::ApiGatewayClient::of(&aws);
    let secrets = keyrotor::aws::secretsmanager::SecretsManagerInventory::of(&aws);
    let p = policy();
    let state =
        keyrotor::aws::dynamodb::DynamoStateStore::new(aws.dynamodb(), p.audit.state_table.clone());
    let audit =
        keyrotor::aws::dynamodb::DynamoAuditStore::new(aws.dynamodb(), p.audit.table.clone());
    let ports = keyrotor::steps::api_keys::ApiKeyPorts {
        identity: &identity,
        keys: &gateway,
        secret_list: &secrets,
        admin: &gateway,
        secrets: &secrets,
        state: &state,
        audit: &audit,
        notifier: &keyrotor::aws::sns::NoNotifier,
    };
    let now = Utc::now();
    let later = keyrotor::ports::SystemClock::Fixed(
        now + Duration::minutes(keyrotor::steps::LEASE_TTL_MINUTES + 1),
    );
    let done = keyrotor::steps::api_keys::rotate(
        &ports,
        &p,
        support::REGION,
        &w.old,
        keyrotor::domain::api_rotation::Trigger::OnDemand,
        now,
        &later,
    )
    .await
    .unwrap();

    // THEN it takes over and finishes with the replacement the crashed run made.
    let keys = w.keys().await;
    assert_eq!(keys.len(), 2, "no second replacement: {keys:?}");
    assert_eq!(
        done.status,
        keyrotor::steps::status::Status::Done,
        "{done:?}"
    );
    assert_eq!(done.new_key.as_deref(), Some(w.current().await.as_str()));
    let report = keyrotor::steps::audit_verify(&audit).await.unwrap();
    assert!(report.ok(), "{:?}", report.findings);
}
