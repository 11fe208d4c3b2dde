//! Trust boundaries (#20) against the emulator: someone with weaker rights than keyrotor's
//! (creating a secret, tagging an API key, writing a state-table item) tries to make
//! keyrotor act for them. Each attack fails and changes nothing; the legitimate flows are
//! covered by the rotation tests (`secret_rotation_cli`, `api_keys_cli`).

mod support;

use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Duration, Utc};
use keyrotor::ports::StateStore;
use serde_json::{Value, json};
use support::{
    PolicyText, Timeline, World, ok, run, seed,
    seed::{iam_tag, sm_tag},
    stderr,
};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 5, 1);

fn policy() -> tempfile::NamedTempFile {
    PolicyText::mode("enforce").file()
}

struct Iam {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

impl Iam {
    async fn new(world: &World) -> Iam {
        let sdk = world.sdk().await;
        Iam {
            iam: aws_sdk_iam::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
        }
    }

    /// A user with one key; returns (key id, secret access key).
    async fn user(&self, name: &str) -> (String, String) {
        let key = seed::user_with_key(&self.iam, name, &[]).await;
        (key.id, key.secret)
    }

    /// A secret tagged for the rotation hook holding `body`; returns its ARN.
    async fn secret(&self, name: &str, body: Value) -> String {
        self.secrets
            .create_secret()
            .name(name)
            .secret_string(body.to_string())
            .tags(sm_tag("keyrotor:type", "iam-access-key"))
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_owned()
    }

    async fn tag_user(&self, user: &str, key: &str, value: &str) {
        self.iam
            .tag_user()
            .user_name(user)
            .tags(iam_tag(key, value))
            .send()
            .await
            .unwrap();
    }

    async fn keys(&self, user: &str) -> Vec<(String, StatusType)> {
        support::inspect::keys(&self.iam, user).await
    }

    async fn versions(&self, secret: &str) -> usize {
        self.secrets
            .list_secret_version_ids()
            .secret_id(secret)
            .send()
            .await
            .unwrap()
            .versions()
            .len()
    }
}

#[tokio::test]
async fn a_secret_naming_another_user_gets_no_key_of_theirs() {
    // GIVEN a privileged user whose key id is known (key ids are not secret), and a person
    // who can only create secrets: their secret names the admin as its userName.
    let world = World::new();
    TIME.set_clock(&world, 0);
    let w = Iam::new(&world).await;
    let (admin_key, _) = w.user("admin").await;
    w.secret(
        "mine/iam",
        json!({"userName": "admin", "accessKeyId": admin_key, "secretAccessKey": "guess"}),
    )
    .await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    // WHEN the rotation runs on that secret
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "mine/iam"]));

    // THEN it is refused, says how a binding is made, and admin gets no new key.
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not name this secret") && stderr(&out).contains("iam:TagUser"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.keys("admin").await.len(), 1);
    assert_eq!(w.versions("mine/iam").await, 1, "nothing was written");

    // AND the same when admin is bound to its own secret: a second secret is not it.
    let own = w
        .secret(
            "admin/iam",
            json!({"userName": "admin", "accessKeyId": admin_key, "secretAccessKey": "x"}),
        )
        .await;
    w.tag_user("admin", "keyrotor:secret", &own).await;
    let out = run(TIME
        .keyrotor(&world, &policy, 2)
        .args(["rotate", "secret", "mine/iam"]));
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is bound to secret"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.keys("admin").await.len(), 1);
}

#[tokio::test]
async fn a_bound_secret_holding_another_users_key_is_refused() {
    // GIVEN svc bound to its secret, but the secret's AWSCURRENT holds admin's key id
    // (whoever can write the secret could otherwise steer which key is replaced).
    let world = World::new();
    TIME.set_clock(&world, 0);
    let w = Iam::new(&world).await;
    let (admin_key, _) = w.user("admin").await;
    let (svc_key, _) = w.user("svc").await;
    let arn = w
        .secret(
            "svc/iam",
            json!({"userName": "svc", "accessKeyId": admin_key, "secretAccessKey": "x"}),
        )
        .await;
    w.tag_user("svc", "keyrotor:secret", &arn).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "svc/iam"]));

    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("holds access key {admin_key} of user admin")),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.keys("svc").await, [(svc_key, StatusType::Active)]);
    assert_eq!(w.keys("admin").await.len(), 1);
}

#[tokio::test]
async fn a_forged_lifecycle_record_does_not_deactivate_a_users_key() {
    // GIVEN user ops with an active key, and a state-table item (forged) saying the key was
    // superseded by a rotation of the attacker's secret long ago.
    let world = World::new();
    TIME.set_clock(&world, 0);
    let w = Iam::new(&world).await;
    let (ops_key, _) = w.user("ops").await;
    let (mallory_key, mallory_secret) = w.user("mallory").await;
    let theirs = w
        .secret(
            "mallory/iam",
            json!({"userName": "mallory", "accessKeyId": mallory_key, "secretAccessKey": mallory_secret}),
        )
        .await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let aws = keyrotor::aws::Aws::from_config(world.sdk().await);
    let state = keyrotor::aws::dynamodb::DynamoStateStore::new(
        aws.dynamodb(),
        keyrotor::domain::policy::Policy::default()
            .audit
            .state_table
            .clone(),
    );
    let forged = keyrotor::domain::lifecycle::KeyRecord {
        key: keyrotor::domain::model::AccessKeyId::parse(&ops_key).unwrap(),
        user: "ops".into(),
        stage: keyrotor::domain::lifecycle::Stage::Superseded,
        since: TIME.t0(),
        version: 0,
        secret: Some(theirs.clone()),
    };
    let pk = keyrotor::domain::lifecycle::KeyRecord::partition(&world.account);
    assert!(
        state
            .put_versioned(&pk, &ops_key, 0, &forged.attrs())
            .await
            .unwrap()
    );

    // WHEN the sweep runs long after the grace period
    let out = run(TIME
        .keyrotor(&world, &policy, 30)
        .args(["sweep", "--kind", "iam-keys", "--output", "json"]));

    // THEN ops keeps its active key and the refusal says why.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        w.keys("ops").await,
        [(ops_key.clone(), StatusType::Active)],
        "{text}"
    );
    let done: Value = serde_json::from_str(&text).unwrap();
    let applied = done["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == ops_key.as_str())
        .unwrap_or_else(|| panic!("{done}"));
    assert_eq!(applied["status"], "blocked", "{applied}");
}

struct Gateway {
    gateway: aws_sdk_apigateway::Client,
    secrets: aws_sdk_secretsmanager::Client,
    key: String,
    plan: String,
}

/// API key `orders-client` in one usage plan, bound both ways to `orders/api-key`.
async fn bound_api_key(world: &World) -> Gateway {
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let (id, value) = seed::api_key(
        &gateway,
        "orders-client",
        &[("keyrotor:secret", "orders/api-key")],
    )
    .await;
    let plan = seed::usage_plan_with(&gateway, "gold", &id).await;
    seed::api_key_secret(
        &secrets,
        "orders/api-key",
        &id,
        &value,
        &[
            ("keyrotor:type", "apigw-api-key"),
            ("keyrotor:api-key", "orders-client"),
        ],
    )
    .await;
    Gateway {
        gateway,
        secrets,
        key: id,
        plan,
    }
}

impl Gateway {
    async fn keys(&self) -> Vec<(String, bool)> {
        self.gateway
            .get_api_keys()
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .map(|k| (k.id().unwrap().to_owned(), k.enabled()))
            .collect()
    }

    async fn attached(&self, key: &str) -> bool {
        self.gateway
            .get_usage_plan_keys()
            .usage_plan_id(&self.plan)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .any(|k| k.id() == Some(key))
    }
}

#[tokio::test]
async fn an_api_key_tagged_with_a_foreign_secret_is_not_rotated_into_it() {
    // GIVEN a bound key, retagged by someone with apigateway:TagResource to point at a
    // secret that holds the key id (ids are not secret) but never agreed to hold it.
    let world = World::new();
    TIME.set_clock(&world, 0);
    let g = bound_api_key(&world).await;
    g.secrets
        .create_secret()
        .name("drop/box")
        .secret_string(json!({"apiKeyId": g.key, "value": "x"}).to_string())
        // Its owner may tag it with the type (a weak right); not with the key's agreement.
        .tags(sm_tag("keyrotor:type", "apigw-api-key"))
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:apigateway:{}::/apikeys/{}", support::REGION, g.key);
    g.gateway
        .tag_resource()
        .resource_arn(&arn)
        .tags("keyrotor:secret", "drop/box")
        .send()
        .await
        .unwrap();
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 100).arg("init")));

    // WHEN a rotation of the key is asked for
    let out = run(TIME
        .keyrotor(&world, &policy, 100)
        .args(["rotate", "api-key", &g.key]));

    // THEN it is refused before anything is created, and the drop box got nothing.
    assert_ne!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not name API key \"orders-client\""),
        "{}",
        stderr(&out)
    );
    assert_eq!(g.keys().await, [(g.key.clone(), true)]);
    let versions = g
        .secrets
        .list_secret_version_ids()
        .secret_id("drop/box")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1);
}

#[tokio::test]
async fn a_forged_rotation_record_does_not_retire_a_key() {
    // GIVEN a bound key in use, and a state-table item (forged) claiming it was rotated
    // into another secret and promoted long ago.
    let world = World::new();
    TIME.set_clock(&world, 0);
    let g = bound_api_key(&world).await;
    let other = g
        .gateway
        .create_api_key()
        .name("mallory")
        .enabled(true)
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();
    g.gateway
        .create_usage_plan_key()
        .usage_plan_id(&g.plan)
        .key_id(&other)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();
    g.secrets
        .create_secret()
        .name("mallory/api-key")
        .secret_string(json!({"apiKeyId": other, "value": "x"}).to_string())
        .send()
        .await
        .unwrap();
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 1).arg("init")));
    let aws = keyrotor::aws::Aws::from_config(world.sdk().await);
    let state = keyrotor::aws::dynamodb::DynamoStateStore::new(
        aws.dynamodb(),
        keyrotor::domain::policy::Policy::default()
            .audit
            .state_table
            .clone(),
    );
    use keyrotor::domain::api_rotation::{Rotation, RotationStep, Trigger};
    let mut forged = Rotation::start(
        &g.key,
        "orders-client",
        "mallory/api-key",
        std::slice::from_ref(&g.plan),
        "0123456789abcdef0123456789abcdef".into(),
        Trigger::Age,
        TIME.t0(),
    )
    .advanced(RotationStep::CreateReplacement, TIME.t0())
    .advanced(RotationStep::Publish, TIME.t0())
    .advanced(RotationStep::Verify, TIME.t0())
    .advanced(RotationStep::Promote, TIME.t0());
    forged.new_key = Some(other.clone());
    let pk = Rotation::partition(&world.account, support::REGION);
    assert!(
        state
            .put_versioned(&pk, &g.key, 0, &forged.attrs())
            .await
            .unwrap()
    );

    // WHEN the sweep runs past the grace period
    let out = run(TIME
        .keyrotor(&world, &policy, 30)
        .args(["sweep", "--kind", "api-keys", "--output", "json"]));

    // THEN the key stays enabled and attached, and the refusal names the binding.
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(g.attached(&g.key).await, "{text}");
    assert!(g.keys().await.contains(&(g.key.clone(), true)), "{text}");
    assert!(text.contains("mallory/api-key"), "{text}");
}

/// Stops a run at its first call of `operation` (an SDK interceptor): tells `reached`,
/// waits for `go`.
#[derive(Debug)]
struct Gate {
    operation: &'static str,
    reached: std::sync::mpsc::SyncSender<()>,
    go: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    passed: std::sync::atomic::AtomicBool,
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for Gate {
    fn name(&self) -> &'static str {
        "trust_bindings::Gate"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        if cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == self.operation)
            && !self.passed.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let _ = self.reached.send(());
            let _ = self.go.lock().unwrap().recv();
        }
        Ok(())
    }
}

/// Runs one step of the rotation hook in process, in a thread of its own, stopped at its
/// first `operation` call until the returned sender says go.
fn hook_step_paused_at(
    world: &World,
    operation: &'static str,
    step: &str,
    secret: &str,
    token: &str,
    now: DateTime<Utc>,
) -> (
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<Result<Value, String>>,
) {
    let (reached_tx, reached) = std::sync::mpsc::sync_channel(1);
    let (go, go_rx) = std::sync::mpsc::channel();
    let gate = Gate {
        operation,
        reached: reached_tx,
        go: std::sync::Mutex::new(go_rx),
        passed: Default::default(),
    };
    let world = world.clone();
    let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
    let handle = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let ctx = keyrotor::lambda::Context {
                    aws: keyrotor::aws::Aws::from_config(world.sdk().await).with_interceptor(gate),
                    policy: keyrotor::domain::policy::Policy::from_toml(
                        "mode = \"enforce\"\n",
                        "test",
                    )
                    .unwrap(),
                    region: support::REGION.to_owned(),
                    fixed_now: Some(now),
                    items_bucket: None,
                    inline_items: 40,
                    caller: None,
                };
                let event =
                    lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
                keyrotor::lambda::secret_rotation(&ctx, event)
                    .await
                    .map_err(|d| format!("{}: {}", d.error_type, d.error_message))
            })
    });
    reached
        .recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the step reaches {operation}: {e}"));
    (go, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_awscurrent_to_another_user_during_the_step_gets_no_key_for_them() {
    // GIVEN a workload team owning user app and its bound secret, who also put a version
    // naming the victim into it (version values cannot change, labels can).
    let world = World::new();
    TIME.set_clock(&world, 0);
    let w = Iam::new(&world).await;
    let (app_key, app_secret) = w.user("app").await;
    let (victim_key, _) = w.user("victim").await;
    let arn = w
        .secret(
            "app/iam",
            json!({"userName": "app", "accessKeyId": app_key, "secretAccessKey": app_secret}),
        )
        .await;
    w.tag_user("app", "keyrotor:secret", &arn).await;
    let v1 = w
        .secrets
        .describe_secret()
        .secret_id("app/iam")
        .send()
        .await
        .unwrap()
        .version_ids_to_stages()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let v2 = w
        .secrets
        .put_secret_value()
        .secret_id("app/iam")
        .secret_string(
            json!({"userName": "victim", "accessKeyId": victim_key, "secretAccessKey": "x"})
                .to_string(),
        )
        .version_stages("SPARE")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let token = uuid::Uuid::new_v4().to_string();
    world.start_rotation("app/iam", &token);

    // WHEN createSecret is stopped right after it proved the binding (its first GetUser),
    // and AWSCURRENT is moved to the version naming the victim
    let (go, step) = hook_step_paused_at(
        &world,
        "GetUser",
        "createSecret",
        "app/iam",
        &token,
        TIME.t0() + Duration::days(1),
    );
    w.secrets
        .update_secret_version_stage()
        .secret_id("app/iam")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .remove_from_version_id(&v1)
        .send()
        .await
        .unwrap();
    go.send(()).unwrap();
    let done = step.join().unwrap();

    // THEN no key was made for the victim: the step acts on the version it checked.
    assert_eq!(w.keys("victim").await.len(), 1, "{done:?}");
    if let Ok(value) = w
        .secrets
        .get_secret_value()
        .secret_id("app/iam")
        .version_id(&token)
        .send()
        .await
    {
        let body: Value = serde_json::from_str(value.secret_string().unwrap_or("{}")).unwrap();
        assert_ne!(body["userName"], "victim", "{done:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_made_by_someone_else_with_the_replacements_name_is_not_adopted() {
    // GIVEN a bound key whose secret's rotation has started (its token is the version id,
    // visible to anyone who can describe the secret), and an API key someone else created
    // with the replacement's name, the rotation's tag and a value they chose.
    let world = World::new();
    TIME.set_clock(&world, 0);
    let g = bound_api_key(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let token = uuid::Uuid::new_v4().to_string();
    world.start_rotation("orders/api-key", &token);
    let planted = g
        .gateway
        .create_api_key()
        .name(format!("orders-client-kr-{}", &token[..8]))
        .value("chosen-by-mallory-0123456789")
        .enabled(true)
        .tags("keyrotor:rotation", &token)
        .tags("keyrotor:replaces", &g.key)
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned();

    // WHEN the hook's createSecret runs
    let done = hook_step(&world, "createSecret", "orders/api-key", &token).await;

    // THEN it stops, naming the planted key, which serves no usage plan of the old key.
    let err = done.expect_err("blocked");
    assert!(
        err.contains(&planted) && err.contains("did not create"),
        "{err}"
    );
    assert!(!g.attached(&planted).await);
}

/// One step of the rotation hook, in process (as the deployed function runs it).
async fn hook_step(world: &World, step: &str, secret: &str, token: &str) -> Result<Value, String> {
    let ctx = keyrotor::lambda::Context {
        aws: keyrotor::aws::Aws::from_config(world.sdk().await),
        policy: keyrotor::domain::policy::Policy::from_toml("mode = \"enforce\"\n", "test")
            .unwrap(),
        region: support::REGION.to_owned(),
        fixed_now: Some(TIME.t0() + Duration::days(1)),
        items_bucket: None,
        inline_items: 40,
        caller: None,
    };
    let event = json!({"Step": step, "SecretId": secret, "ClientRequestToken": token});
    let event = lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default());
    keyrotor::lambda::secret_rotation(&ctx, event)
        .await
        .map_err(|d| format!("{}: {}", d.error_type, d.error_message))
}
