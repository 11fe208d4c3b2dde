//! Sweeps under AWS's request quotas, emulated in front of the emulator
//! ([`support::faults::Quota`]: a token bucket per service; a request over the rate gets the
//! service's own throttling error). With keyrotor's client-side pacing set to the quotas and
//! the production retry policy (adaptive, 6 attempts), the IAM key sweep and an API key
//! rotation complete with no failed action; the same quotas without pacing and without
//! retries throttle the sweep into failure, so the quotas do bite.

mod support;

use aws_config::retry::RetryConfig;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use keyrotor::aws::Aws;
use keyrotor::aws::dynamodb::DynamoTables;
use keyrotor::domain::policy::Policy;
use keyrotor::lambda::{Context, Job, run_job};
use serde_json::{Value, json};
use support::faults::Quota;
use support::{PolicyText, World, policy::CONTACT, seed};

/// Users with an idle key, on top of the demo world's.
const IDLE_USERS: usize = 20;

/// The emulated quotas, scaled down so the test takes seconds: (service, per second, burst).
/// AWS's own bursts are larger (API Gateway: 40); two is the least a token bucket offers.
const QUOTAS: &[(&str, u32, u32)] = &[
    ("iam", 20, 2),
    ("apigateway", 5, 2),
    ("secretsmanager", 10, 2),
];

fn policy(pacing: &str) -> Policy {
    PolicyText::mode("enforce")
        .with(CONTACT)
        .with("[pacing]\n")
        .with(pacing)
        .parse()
}

/// `[pacing]` at the quotas.
const AT_QUOTAS: &str = "iam = { per_second = 20 }\napigateway = { per_second = 5 }\nsecretsmanager = { per_second = 10 }\n";
/// `[pacing]` far above the quotas: effectively none.
const UNPACED: &str = "iam = { per_second = 10000, burst = 10000 }\napigateway = { per_second = 10000, burst = 10000 }\nsecretsmanager = { per_second = 10000, burst = 10000 }\n";

/// The demo world plus idle users, with keyrotor's tables; returns the world and its time.
async fn world() -> (World, DateTime<Utc>) {
    let world = World::new();
    let now = Utc::now().trunc_subsecs(0);
    world.seed_demo(&now.to_rfc3339());
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    world.set_clock(&(now - Duration::days(60)).to_rfc3339());
    for n in 0..IDLE_USERS {
        let name = format!("idle-{n:02}");
        seed::user_with_key(&iam, &name, &[]).await;
    }
    world.set_clock(&now.to_rfc3339());
    let aws = Aws::from_config(world.sdk().await);
    keyrotor::steps::init(&DynamoTables::new(aws.dynamodb()), &policy(""))
        .await
        .unwrap();
    (world, now)
}

async fn context(
    world: &World,
    quota: &Quota,
    policy: Policy,
    retry: RetryConfig,
    now: DateTime<Utc>,
) -> Context {
    let config = quota.sdk_config(&world.sdk().await, retry);
    let aws = Aws::from_config(config).with_pacing(&policy.pacing);
    // What a function reads once at start-up.
    let caller = keyrotor::ports::Identity::caller(&keyrotor::aws::sts::StsIdentity::new(
        Aws::from_config(world.sdk().await).sts(),
    ))
    .await
    .unwrap();
    Context {
        aws,
        policy,
        region: support::REGION.to_owned(),
        fixed_now: Some(now),
        items_bucket: None,
        inline_items: 40,
        caller: Some(caller),
    }
}

/// What `keyrotor::aws::Aws::load` uses.
fn production_retries() -> RetryConfig {
    RetryConfig::adaptive().with_max_attempts(6)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeps_paced_at_the_quotas_complete_with_no_failed_action() {
    // GIVEN an account whose IAM, API Gateway and Secrets Manager calls are limited
    let (world, now) = world().await;
    let quota = Quota::new(QUOTAS);
    let ctx = context(&world, &quota, policy(AT_QUOTAS), production_retries(), now).await;

    // WHEN the IAM key sweep runs
    let started = std::time::Instant::now();
    let iam = run_job(&ctx, Job::IamKeys, json!({}))
        .await
        .expect("the IAM key sweep completes");
    eprintln!(
        "IAM key sweep: {:?}; quota: passed {:?}, throttled {:?}",
        started.elapsed(),
        quota.passed(),
        quota.throttled()
    );
    // THEN nothing failed and every idle key was warned
    assert_eq!(iam["failed"], 0, "{iam}");
    let warned: Vec<&Value> = iam["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "warn" && a["status"] == "done")
        .collect();
    assert!(warned.len() >= IDLE_USERS, "{iam}");

    // WHEN the plan lists the API keys due and each one's rotation runs
    let plan = run_job(&ctx, Job::Plan, json!({}))
        .await
        .expect("the plan completes");
    let due = plan["api_keys"].as_array().unwrap().clone();
    assert!(!due.is_empty(), "the demo world has an API key due: {plan}");
    for item in &due {
        eprintln!(
            "rotating {} at {:?}; quota: passed {:?}, throttled {:?}",
            item["key"],
            started.elapsed(),
            quota.passed(),
            quota.throttled()
        );
        let done = run_job(&ctx, Job::ApiKey, json!({"key": item["key"]}))
            .await
            .unwrap_or_else(|e| panic!("rotation of {} failed: {e}", item["key"]));
        // THEN the replacement is made, published and promoted (the grace period follows)
        assert!(done["new_key"].is_string(), "{done}");
        assert_eq!(done["stage"], "promoted", "{done}");
    }

    let throttled = quota.throttled();
    let passed = quota.passed();
    eprintln!("quota: passed {passed:?}, throttled {throttled:?}");
    assert!(passed["iam"] > IDLE_USERS as u64 * 2, "{passed:?}");
    assert!(passed["apigateway"] > 5, "{passed:?}");
    // The identity read at start-up served every job: no GetCallerIdentity per invocation.
    let calls = ctx.aws.counter.snapshot();
    assert_eq!(calls.get("sts:GetCallerIdentity"), None, "{calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pacing_the_same_quotas_throttle_the_sweep_into_failure() {
    // GIVEN the same account and quotas, keyrotor unpaced and without retries
    let (world, now) = world().await;
    let quota = Quota::new(QUOTAS);
    let ctx = context(
        &world,
        &quota,
        policy(UNPACED),
        RetryConfig::disabled(),
        now,
    )
    .await;

    // WHEN the IAM key sweep runs
    let result = run_job(&ctx, Job::IamKeys, json!({})).await;

    // THEN AWS throttles it, and it fails (as a whole or action by action)
    let throttled = quota.throttled();
    eprintln!(
        "quota: passed {:?}, throttled {throttled:?}",
        quota.passed()
    );
    assert!(
        throttled.get("iam").copied().unwrap_or(0) > 0,
        "{throttled:?}"
    );
    match result {
        Err(e) => assert_eq!(e.name(), "KeyRotor.Retryable", "{e}"),
        Ok(out) => assert!(out["failed"].as_u64().unwrap() > 0, "{out}"),
    }
}

#[tokio::test]
async fn a_throttled_create_api_key_is_retried_and_creates_one_key() {
    // GIVEN API Gateway allowing one call per second, and keyrotor unpaced
    let world = World::new();
    let quota = Quota::new(&[("apigateway", 1, 1)]);
    let policy = policy(UNPACED);
    let aws = Aws::from_config(quota.sdk_config(&world.sdk().await, production_retries()))
        .with_pacing(&policy.pacing);
    let gateway = keyrotor::aws::apigateway::ApiGatewayClient::of(&aws);
    let tags = keyrotor::domain::model::Tags::new();

    // WHEN two keys are created back to back (the SDK does not retry CreateApiKey)
    use keyrotor::ports::ApiKeyAdmin;
    let value = |n: u8| keyrotor::ports::SecretValue::new(format!("throttling-test-value-{n:02}"));
    let first = gateway
        .create_key("first", None, &tags, &value(1))
        .await
        .unwrap();
    let second = gateway
        .create_key("second", None, &tags, &value(2))
        .await
        .expect("the throttled create is retried");

    // THEN the second was throttled at least once, and exactly two keys exist
    assert!(
        quota.throttled()["apigateway"] >= 1,
        "{:?}",
        quota.throttled()
    );
    let keys = aws_sdk_apigateway::Client::new(&world.sdk().await)
        .get_api_keys()
        .send()
        .await
        .unwrap();
    let mut ids: Vec<&str> = keys.items().iter().filter_map(|k| k.id()).collect();
    ids.sort_unstable();
    let mut want = vec![first.as_str(), second.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
}
