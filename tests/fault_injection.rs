//! Fault injection at every AWS call of every workflow, through the real SDK over HTTP to
//! the emulator.
//!
//! For each workflow a clean run first counts keyrotor's operations per phase. Then, for
//! every phase, every operation index and every fault kind, a fresh account runs the
//! workflow with that one operation failing, checks the safety invariants in that state
//! (a run that stops at call N is the world as it is at that moment of a run), re-runs
//! the phase without faults until it completes, runs the later phases, and checks the
//! invariants again: consumers keep a working credential, no orphan credentials, every
//! mutation sits inside an audited intent, every intent has its outcome, and the audit
//! chains verify.
//!
//! Retries are off for keyrotor's clients in the matrix: a fault on an operation then is
//! what the workflow sees once the SDK's retry layer has given up (every attempt failed),
//! and the matrix is deterministic and quick (no backoff sleeps). What the retry layer does
//! with one failed attempt is checked separately, with retries on.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use aws_config::retry::RetryConfig;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use keyrotor::aws::Aws;
use keyrotor::aws::dynamodb::{DynamoAuditStore, DynamoTables};
use keyrotor::domain::audit_record::{AuditRecord, Phase};
use keyrotor::domain::policy::Policy;
use keyrotor::lambda::{Context, Job};
use keyrotor::steps::StepError;
use serde_json::{Value, json};
use support::faults::{Attempts, Faults, Kind};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 1, 1);
use support::{PolicyText, Timeline, World, policy::CONTACT, seed};

/// Runs of one matrix in flight at once (each in its own account).
// Most of a run's time is the API Gateway adapter's client-side pacing (sleep), not work.
const PARALLEL: usize = 24;

fn policy() -> Policy {
    PolicyText::mode("enforce").with(CONTACT).parse()
}

/// keyrotor's context over `faults`, policy time `now`.
async fn context(
    world: &World,
    faults: &Faults,
    now: DateTime<Utc>,
    retry: RetryConfig,
) -> Context {
    context_with(world, faults, now, retry, policy()).await
}

async fn context_with(
    world: &World,
    faults: &Faults,
    now: DateTime<Utc>,
    retry: RetryConfig,
    policy: Policy,
) -> Context {
    let config = faults.sdk_config(&world.sdk().await, retry);
    Context {
        aws: Aws::from_config(config).with_interceptor(faults.clone()),
        policy,
        region: support::REGION.to_owned(),
        fixed_now: Some(now),
        items_bucket: None,
        inline_items: 40,
        caller: None,
    }
}

async fn init_tables(world: &World) {
    let aws = Aws::from_config(world.sdk().await);
    keyrotor::steps::init(&DynamoTables::new(aws.dynamodb()), &policy())
        .await
        .unwrap();
}

/// Every audit record of the account.
async fn audit_records(world: &World) -> Vec<AuditRecord> {
    let aws = Aws::from_config(world.sdk().await);
    let store = DynamoAuditStore::new(aws.dynamodb(), policy().audit.table.clone());
    keyrotor::ports::AuditStore::all(&store)
        .await
        .unwrap()
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

/// Audit invariants: chains verify; every intent has an outcome in the same run, except
/// where the injected fault hit the audit write itself (an intent whose response was lost,
/// or the outcome that could not be written).
async fn check_audit(world: &World, faulted: &[Faults], problems: &mut Vec<String>) {
    let aws = Aws::from_config(world.sdk().await);
    let store = DynamoAuditStore::new(aws.dynamodb(), policy().audit.table.clone());
    let report = keyrotor::steps::audit_verify(&store).await.unwrap();
    if !report.ok() {
        problems.push(format!("audit verify: {:?}", report.findings));
    }
    let records = audit_records(world).await;
    let excused = faulted
        .iter()
        .filter(|f| f.faulted().is_some_and(|c| c.is_audit()))
        .count();
    let mut open: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for r in &records {
        let key = (r.run_id.clone(), r.resource.clone(), r.action.clone());
        match r.phase {
            Phase::Intent => *open.entry(key).or_default() += 1,
            Phase::Outcome => *open.entry(key).or_default() -= 1,
            Phase::Decision => {}
        }
    }
    let dangling: Vec<_> = open.iter().filter(|(_, n)| **n > 0).collect();
    if dangling.len() > excused {
        problems.push(format!("intents without an outcome: {dangling:?}"));
    }
    let extra: Vec<_> = open.iter().filter(|(_, n)| **n < 0).collect();
    if !extra.is_empty() {
        problems.push(format!("outcomes without an intent: {extra:?}"));
    }
    for f in faulted {
        for p in f.unaudited_mutations() {
            problems.push(p);
        }
    }
}

// Not Send: run_job's future is not provably Send (higher-ranked closures inside); the
// matrix polls its runs concurrently within one task instead.
/// Lets every lease of the account expire: what 15 minutes (the TTL) do to a lease whose
/// holder crashed. Leases are taken on the wall clock, which the tests do not move.
async fn expire_leases(world: &World) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamodb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let table = policy().audit.state_table;
    let leases = dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S("lease".into()))
        .send()
        .await
        .unwrap();
    for item in leases.items() {
        let mut item = item.clone();
        item.insert("expires_epoch".into(), AttributeValue::N("0".into()));
        dynamodb
            .put_item()
            .table_name(&table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap();
    }
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One injected fault: `phase`, operation `index` within it, `kind`.
#[derive(Debug, Clone, Copy)]
struct Case {
    phase: usize,
    index: usize,
    kind: Kind,
}

/// What one run of a workflow reports: operations per phase, and invariant violations.
#[derive(Debug, Default)]
struct Report {
    ops: Vec<usize>,
    problems: Vec<String>,
}

/// Counts the clean run's operations, then runs every case of `kinds_at` (the kinds to
/// inject at phase p, index i) in parallel; returns (runs, violations).
async fn matrix<F>(
    name: &str,
    run: F,
    kinds_at: impl Fn(usize, usize) -> Vec<Kind>,
) -> (usize, Vec<String>)
where
    F: Fn(Option<Case>) -> Boxed<'static, Report> + Sync,
{
    let clean = run(None).await;
    assert!(
        clean.problems.is_empty(),
        "{name}: the clean run breaks invariants: {:#?}",
        clean.problems
    );
    assert!(clean.ops.iter().all(|n| *n > 0), "{name}: {:?}", clean.ops);
    let mut cases = Vec::new();
    for (phase, ops) in clean.ops.iter().enumerate() {
        for index in 0..*ops {
            for kind in kinds_at(phase, index) {
                cases.push(Case { phase, index, kind });
            }
        }
    }
    let runs = cases.len();
    let problems: Vec<String> = futures::stream::iter(cases)
        .map(|case| {
            let fut = run(Some(case));
            async move {
                fut.await
                    .problems
                    .into_iter()
                    .map(|p| format!("{case:?}: {p}"))
                    .collect::<Vec<_>>()
            }
        })
        .buffer_unordered(PARALLEL)
        .flat_map(futures::stream::iter)
        .collect()
        .await;
    let summary = format!(
        "{name}: ops per phase {:?}, {runs} faulted runs, {} violations",
        clean.ops,
        problems.len()
    );
    eprintln!("{summary}");
    // The whole list, for the report.
    let dir = support::repo_root().join("target/fault-injection");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join(format!("{}.txt", name.replace(' ', "-"))),
        format!("{summary}\n{}\n", problems.join("\n")),
    );
    (runs, problems)
}

/// A matrix of more than `min_runs` runs, none of which broke an invariant.
fn assert_clean(runs: usize, min_runs: usize, problems: &[String]) {
    assert!(runs > min_runs, "{runs} runs");
    assert!(
        problems.is_empty(),
        "{} violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Runs phase `phase` of a workflow through `job`: with the case's fault when it targets
/// this phase, then again without faults until it completes (at most `attempts` re-runs).
/// Returns the faults of the faulted run, and calls `check` after each run.
async fn drive<J, C>(
    world: &World,
    case: Option<Case>,
    phase: usize,
    report: &mut Report,
    job: J,
    check: C,
) -> Option<Faults>
where
    J: Fn(Faults) -> Boxed<'static, Result<Value, StepError>>,
    C: Fn() -> Boxed<'static, Vec<String>>,
{
    let mut faulted = None;
    if let Some(c) = case.filter(|c| c.phase == phase) {
        let faults = Faults::at(c.index, c.kind, Attempts::Every);
        let _ = job(faults.clone()).await;
        // No operation with that index this time (the run took a shorter path): it was a
        // clean run of the phase.
        faults.faulted()?;
        report.problems.extend(
            check()
                .await
                .into_iter()
                .map(|p| format!("after the fault: {p}")),
        );
        faulted = Some(faults);
    }
    let lease_kept = faulted
        .as_ref()
        .and_then(Faults::faulted)
        .is_some_and(|c| c.is_lease_release())
        && case.is_some_and(|c| c.kind != Kind::LostResponse);
    let mut last = None;
    for _ in 0..3 {
        let faults = Faults::none();
        let result = job(faults.clone()).await;
        if report.ops.len() <= phase {
            report.ops.push(faults.calls().len());
        }
        match result {
            // A sweep that recorded failed entries has work left.
            Ok(v) if v["failed"].as_u64().is_some_and(|n| n > 0) => {
                last = Some(StepError::InvalidInput(format!("failed entries: {v}")));
            }
            Ok(_) => {
                last = None;
                break;
            }
            // The faulted run could not give its lease back: it is held until its TTL, as
            // for a crashed run. Let the TTL pass.
            Err(StepError::InProgress(_)) if lease_kept => {
                expire_leases(world).await;
            }
            Err(e) => last = Some(e),
        }
    }
    if let Some(e) = last {
        report.problems.push(format!(
            "phase {phase} does not complete after the fault: {e}"
        ));
    }
    report.problems.extend(check().await);
    faulted
}

// ------------------------------------------------------------------------------------
// API key rotation: create, publish, verify, promote; retire after grace; delete after
// recovery.

#[derive(Clone)]
struct ApiWorld {
    world: World,
    gateway: aws_sdk_apigateway::Client,
    secrets: aws_sdk_secretsmanager::Client,
    old: String,
    plans: Vec<String>,
}

async fn api_world() -> ApiWorld {
    let world = World::new();
    let sdk = world.sdk().await;
    let gateway = aws_sdk_apigateway::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let (old, value) = seed::api_key(
        &gateway,
        "billing-client",
        &[("keyrotor:secret", "billing/api-key")],
    )
    .await;
    let mut plans = Vec::new();
    for name in ["gold", "silver"] {
        plans.push(seed::usage_plan_with(&gateway, name, &old).await);
    }
    seed::api_key_secret(
        &secrets,
        "billing/api-key",
        &old,
        &value,
        &[
            ("keyrotor:api-key", "billing-client"),
            ("keyrotor:type", "apigw-api-key"),
        ],
    )
    .await;
    init_tables(&world).await;
    ApiWorld {
        world,
        gateway,
        secrets,
        old,
        plans,
    }
}

impl ApiWorld {
    /// The consumer's credential works: AWSCURRENT names an existing, enabled key with
    /// that value, in every original usage plan. At most one replacement exists.
    async fn check(&self, problems: &mut Vec<String>, at: &str) {
        let current = self
            .secrets
            .get_secret_value()
            .secret_id("billing/api-key")
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap();
        let current: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
        let id = current["apiKeyId"].as_str().unwrap_or_default().to_owned();
        match self
            .gateway
            .get_api_key()
            .api_key(&id)
            .include_value(true)
            .send()
            .await
        {
            Ok(k) => {
                if !k.enabled() {
                    problems.push(format!("{at}: AWSCURRENT key {id} is disabled"));
                }
                if k.value() != current["value"].as_str() {
                    problems.push(format!("{at}: AWSCURRENT value is not key {id}'s value"));
                }
            }
            Err(_) => problems.push(format!("{at}: AWSCURRENT key {id} does not exist")),
        }
        for plan in &self.plans {
            if !self.plan_keys(plan).await.contains(&id) {
                problems.push(format!("{at}: AWSCURRENT key {id} is not in plan {plan}"));
            }
        }
        let keys = self.keys().await;
        if keys.len() > 2 {
            problems.push(format!("{at}: orphan keys: {keys:?}"));
        }
    }

    async fn plan_keys(&self, plan: &str) -> BTreeSet<String> {
        self.gateway
            .get_usage_plan_keys()
            .usage_plan_id(plan)
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter_map(|k| k.id().map(str::to_owned))
            .collect()
    }

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
}

fn api_key_run(case: Option<Case>, retry: RetryConfig) -> Boxed<'static, Report> {
    Box::pin(async move {
        let w = api_world().await;
        let mut report = Report::default();
        let t0 = Utc::now();
        let p = policy();
        // Rotate now; retire after grace; delete after recovery.
        let times = [
            t0,
            t0 + Duration::days(p.api_keys.grace_days as i64 + 1),
            t0 + Duration::days((p.api_keys.grace_days + p.api_keys.recovery_days) as i64 + 2),
        ];
        let mut faulted = Vec::new();
        for (phase, now) in times.into_iter().enumerate() {
            let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
                let (world, old, retry) = (w.world.clone(), w.old.clone(), retry.clone());
                Box::pin(async move {
                    let ctx = context(&world, &faults, now, retry).await;
                    keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": old })).await
                })
            };
            let check = || -> Boxed<'static, Vec<String>> {
                let w = w.clone();
                Box::pin(async move {
                    let mut problems = Vec::new();
                    w.check(&mut problems, &format!("phase {phase}")).await;
                    problems
                })
            };
            if let Some(f) = drive(&w.world, case, phase, &mut report, job, check).await {
                faulted.push(f);
            }
        }
        // Completed: only the replacement is left, serving every plan.
        let keys = w.keys().await;
        if keys.len() != 1 || keys.contains(&w.old) {
            report
                .problems
                .push(format!("after the rotation: keys {keys:?} (old {})", w.old));
        }
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

/// The kind injected at operation `index` in the default matrix: every kind in turn, so
/// that each is injected across the whole workflow. The five kinds that never reach AWS
/// have one effect there (nothing applied) and differ only in how keyrotor classifies the
/// error; a lost response is applied. The full products (every kind at every call) are the
/// ignored `*_full_fault_matrix` tests.
fn sampled(_phase: usize, index: usize) -> Vec<Kind> {
    vec![Kind::ALL[index % Kind::ALL.len()]]
}

/// Like [`sampled`], at every other call (alternating between phases), for the workflows
/// whose runs are long: `make test` stays within its time budget (one emulator process
/// serves every run). The full products cover every call.
fn strided(phase: usize, index: usize) -> Vec<Kind> {
    if (index + phase).is_multiple_of(2) {
        vec![Kind::ALL[(index / 2) % Kind::ALL.len()]]
    } else {
        Vec::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_rotation_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix(
        "api-key rotation",
        |case| api_key_run(case, RetryConfig::disabled()),
        strided,
    )
    .await;
    assert_clean(runs, 40, &problems);
}

/// Every kind at every call (564 runs, a few minutes): `cargo nextest run --run-ignored
/// only --test fault_injection`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full product of the sampled matrix; minutes"]
async fn api_key_rotation_full_fault_matrix() {
    let (runs, problems) = matrix(
        "api-key rotation (full)",
        |case| api_key_run(case, RetryConfig::disabled()),
        |_, _| Kind::ALL.to_vec(),
    )
    .await;
    assert_clean(runs, 300, &problems);
}

// ------------------------------------------------------------------------------------
// IAM access key lifecycle: warn (unused 45 days), deactivate (7 days after the warning),
// delete (inactive and unused 30 days); a key in use stays active throughout.

#[derive(Clone)]
struct IamWorld {
    world: World,
    iam: aws_sdk_iam::Client,
    stale: String,
    busy: (String, String),
}

async fn iam_world() -> IamWorld {
    let world = World::new();
    support::faults::set_clock(&world, &TIME.t0().to_rfc3339());
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let mut keys = Vec::new();
    for user in ["stale", "busy"] {
        let key = seed::user_with_key(&iam, user, &[]).await;
        keys.push((key.id, key.secret));
    }
    init_tables(&world).await;
    IamWorld {
        world,
        iam,
        stale: keys[0].0.clone(),
        busy: keys[1].clone(),
    }
}

impl IamWorld {
    /// The consumer of `busy` signs a request at `now` (the emulator records the use).
    async fn use_busy(&self, now: DateTime<Utc>) {
        support::faults::set_clock(&self.world, &now.to_rfc3339());
        support::seed::sts_as(&self.world, &self.busy.0, &self.busy.1, None)
            .await
            .get_caller_identity()
            .send()
            .await
            .unwrap();
    }

    async fn status(&self, user: &str, key: &str) -> Option<String> {
        support::inspect::key_status(&self.iam, user, key)
            .await
            .map(|s| s.as_str().to_owned())
    }

    /// The key in use stays active; the stale key is never gone while active, and is in
    /// no state ahead of `phase` (warn: active; deactivate: inactive; delete: gone).
    async fn check(&self, problems: &mut Vec<String>, phase: usize, done: bool) {
        let busy = self.status("busy", &self.busy.0).await;
        if busy.as_deref() != Some("Active") {
            problems.push(format!("phase {phase}: the key in use is {busy:?}"));
        }
        let stale = self.status("stale", &self.stale).await;
        let allowed: &[Option<&str>] = match (phase, done) {
            (0, false) | (0, true) => &[Some("Active")],
            (1, false) => &[Some("Active"), Some("Inactive")],
            (1, true) => &[Some("Inactive")],
            (_, false) => &[Some("Inactive"), None],
            (_, true) => &[None],
        };
        if !allowed.contains(&stale.as_deref()) {
            problems.push(format!(
                "phase {phase} (completed: {done}): the stale key is {stale:?}, expected one of {allowed:?}"
            ));
        }
        for user in ["stale", "busy"] {
            let n = self
                .iam
                .list_access_keys()
                .user_name(user)
                .send()
                .await
                .unwrap()
                .access_key_metadata()
                .len();
            if n > 1 {
                problems.push(format!("phase {phase}: {user} has {n} keys"));
            }
        }
    }
}

fn iam_keys_run(case: Option<Case>) -> Boxed<'static, Report> {
    Box::pin(async move {
        let w = iam_world().await;
        let mut report = Report::default();
        let mut faulted = Vec::new();
        for (phase, day) in [50, 58, 89].into_iter().enumerate() {
            let now = TIME.t0() + Duration::days(day);
            w.use_busy(now - Duration::hours(1)).await;
            support::faults::set_clock(&w.world, &now.to_rfc3339());
            let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
                let world = w.world.clone();
                Box::pin(async move {
                    let ctx = context(&world, &faults, now, RetryConfig::disabled()).await;
                    keyrotor::lambda::run_job(&ctx, Job::IamKeys, json!({})).await
                })
            };
            let check = || -> Boxed<'static, Vec<String>> {
                let w = w.clone();
                Box::pin(async move {
                    let mut problems = Vec::new();
                    w.check(&mut problems, phase, false).await;
                    problems
                })
            };
            if let Some(f) = drive(&w.world, case, phase, &mut report, job, check).await {
                faulted.push(f);
            }
            w.check(&mut report.problems, phase, true).await;
        }
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_key_lifecycle_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix("iam-key lifecycle", iam_keys_run, strided).await;
    assert_clean(runs, 20, &problems);
}

// ------------------------------------------------------------------------------------
// Secrets Manager rotation hook on an IAM access key secret: createSecret, setSecret,
// testSecret, finishSecret with one token; a failed rotation is retried from the start with
// the same token, as Secrets Manager does.

#[derive(Clone)]
struct HookWorld {
    world: World,
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    old: String,
}

async fn hook_world() -> HookWorld {
    let world = World::new();
    support::faults::set_clock(&world, &Utc::now().to_rfc3339());
    let sdk = world.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = support::seed::user_with_bound_secret(&iam, &secrets, "svc", "svc/iam").await;
    init_tables(&world).await;
    HookWorld {
        world,
        iam,
        secrets,
        old: key.id,
    }
}

impl HookWorld {
    async fn stage(&self, stage: &str) -> Option<Value> {
        support::inspect::secret_stage(&self.secrets, "svc/iam", stage).await
    }

    /// The consumer's credential (AWSCURRENT) is an active key of the user and signs
    /// requests; the user has at most two keys.
    async fn check(&self, problems: &mut Vec<String>, at: &str) {
        let current = self.stage("AWSCURRENT").await.unwrap_or_default();
        let keys = self
            .iam
            .list_access_keys()
            .user_name("svc")
            .send()
            .await
            .unwrap();
        let keys = keys.access_key_metadata();
        let id = current["accessKeyId"].as_str().unwrap_or_default();
        let status = keys
            .iter()
            .find(|k| k.access_key_id() == Some(id))
            .and_then(|k| k.status().map(|s| s.as_str().to_owned()));
        if status.as_deref() != Some("Active") {
            problems.push(format!("{at}: AWSCURRENT key {id} is {status:?}"));
        }
        let works = support::seed::sts_as(
            &self.world,
            id,
            current["secretAccessKey"].as_str().unwrap_or_default(),
            None,
        )
        .await
        .get_caller_identity()
        .send()
        .await
        .is_ok_and(|r| r.arn().is_some_and(|a| a.ends_with("user/svc")));
        if !works {
            problems.push(format!(
                "{at}: the AWSCURRENT credential does not sign requests"
            ));
        }
        if keys.len() > 2 {
            problems.push(format!("{at}: svc has {} keys", keys.len()));
        }
    }
}

fn hook_run(case: Option<Case>) -> Boxed<'static, Report> {
    Box::pin(async move {
        let w = hook_world().await;
        let mut report = Report::default();
        let token = uuid::Uuid::new_v4().to_string();
        support::faults::start_rotation(&w.world, "svc/iam", &token);
        let now = Utc::now();
        let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
            let (world, token) = (w.world.clone(), token.clone());
            Box::pin(async move {
                let ctx = context(&world, &faults, now, RetryConfig::disabled()).await;
                let mut last = Value::Null;
                for step in ["createSecret", "setSecret", "testSecret", "finishSecret"] {
                    let event = lambda_runtime::LambdaEvent::new(
                        json!({"Step": step, "SecretId": "svc/iam", "ClientRequestToken": token}),
                        lambda_runtime::Context::default(),
                    );
                    last = keyrotor::lambda::secret_rotation(&ctx, event)
                        .await
                        .map_err(|d| {
                            StepError::InvalidInput(format!(
                                "{step}: {}: {}",
                                d.error_type, d.error_message
                            ))
                        })?;
                }
                Ok(last)
            })
        };
        let check = || -> Boxed<'static, Vec<String>> {
            let w = w.clone();
            Box::pin(async move {
                let mut problems = Vec::new();
                w.check(&mut problems, "hook").await;
                problems
            })
        };
        let faulted: Vec<Faults> = drive(&w.world, case, 0, &mut report, job, check)
            .await
            .into_iter()
            .collect();
        // Completed: the new key is current, the old one previous.
        let current = w.stage("AWSCURRENT").await.unwrap_or_default();
        let previous = w.stage("AWSPREVIOUS").await.unwrap_or_default();
        if current["accessKeyId"] == w.old.as_str() || previous["accessKeyId"] != w.old.as_str() {
            report.problems.push(format!(
                "after the rotation: AWSCURRENT {} AWSPREVIOUS {} (old {})",
                current["accessKeyId"], previous["accessKeyId"], w.old
            ));
        }
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotation_hook_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix("secret rotation hook", hook_run, sampled).await;
    assert_clean(runs, 25, &problems);
}

// ------------------------------------------------------------------------------------
// Responding to a leaked key bound to a secret: replacement published, leaked key
// deactivated (never deleted), older sessions revoked, activity investigated.

fn respond_run(case: Option<Case>) -> Boxed<'static, Report> {
    use keyrotor::domain::model::AccessKeyId;
    use keyrotor::domain::respond::{Exposure, Reason, Target, Trigger};
    use keyrotor::steps::respond::{self, Request};
    Box::pin(async move {
        let w = hook_world().await;
        let mut report = Report::default();
        let now = Utc::now();
        let event = format!(
            "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/{}",
            uuid::Uuid::new_v4()
        );
        let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
            let (world, old, event) = (w.world.clone(), w.old.clone(), event.clone());
            Box::pin(async move {
                let ctx = context(&world, &faults, now, RetryConfig::disabled()).await;
                let wiring = keyrotor::wiring::Wiring::new(&ctx.aws, &ctx.policy);
                let ports = wiring.respond();
                let request = Request {
                    exposure: Exposure {
                        target: Target::Key(AccessKeyId::parse(&old).unwrap()),
                        reason: Reason::Exposed,
                        trigger: Trigger::Health,
                        event_id: event,
                        event_type: "AWS_RISK_CREDENTIALS_EXPOSED".into(),
                        account: None,
                        user: None,
                    },
                    override_exemption: false,
                    region: support::REGION.to_owned(),
                };
                let clock = keyrotor::ports::SystemClock::Real;
                let mut done = respond::respond(&ports, &ctx.policy, &request, now, &clock).await?;
                respond::investigate(&ports, &mut done, support::REGION, now, &clock).await?;
                let failed = keyrotor::steps::outcome::JobOutcome::failed(&done);
                let failures: Vec<&str> = done
                    .steps
                    .iter()
                    .filter(|s| s.status.is_failure())
                    .map(|s| s.detail.as_str())
                    .collect();
                Ok(json!({"failed": failed, "status": done.status, "failures": failures}))
            })
        };
        // While a response is under way (stopped by the fault), a client is either still
        // served by a working AWSCURRENT, or the leaked key is already off: containment
        // wins over a client that cannot be saved yet (the next run saves it).
        let check = || -> Boxed<'static, Vec<String>> {
            let w = w.clone();
            Box::pin(async move {
                let mut problems = Vec::new();
                w.check(&mut problems, "respond").await;
                let leaked = support::inspect::key_status(&w.iam, "svc", &w.old).await;
                if leaked.is_none() {
                    problems.push(format!("the leaked key {} was deleted", w.old));
                }
                if leaked == Some(aws_sdk_iam::types::StatusType::Inactive) {
                    problems.retain(|p| !p.contains("AWSCURRENT"));
                }
                problems
            })
        };
        let faulted: Vec<Faults> = drive(&w.world, case, 0, &mut report, job, check)
            .await
            .into_iter()
            .collect();
        // Completed: a working replacement is AWSCURRENT, and the leaked key never stays
        // active once it is published; the older sessions are revoked.
        let mut done = Vec::new();
        w.check(&mut done, "after the response").await;
        let current = w.stage("AWSCURRENT").await.unwrap_or_default();
        if current["accessKeyId"] == w.old.as_str() {
            done.push("after the response: AWSCURRENT is still the leaked key".into());
        }
        let leaked = support::inspect::key_status(&w.iam, "svc", &w.old).await;
        if leaked != Some(aws_sdk_iam::types::StatusType::Inactive) {
            done.push(format!("after the response: the leaked key is {leaked:?}"));
        }
        let revoked = w
            .iam
            .get_user_policy()
            .user_name("svc")
            .policy_name("keyrotor-revoke-sessions")
            .send()
            .await;
        if revoked.is_err() {
            done.push("after the response: older sessions are not revoked".into());
        }
        report.problems.extend(done);
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_to_a_leaked_key_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix("respond to a leaked key", respond_run, sampled).await;
    assert_clean(runs, 25, &problems);
}

// ------------------------------------------------------------------------------------
// Certificate expiry: the sweep notifies (SNS) once per ladder step; a certificate 10
// days from expiry is at step 14, five days later at step 7.

#[derive(Clone)]
struct CertWorld {
    world: World,
    topic: String,
    queue: String,
}

async fn cert_world(now: DateTime<Utc>) -> CertWorld {
    use chrono::Datelike;
    let world = World::new();
    let (not_before, not_after) = (now - Duration::days(300), now + Duration::days(10));
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["shop.example.com".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(
        not_before.year(),
        not_before.month() as u8,
        not_before.day() as u8,
    );
    params.not_after = rcgen::date_time_ymd(
        not_after.year(),
        not_after.month() as u8,
        not_after.day() as u8,
    );
    let cert = params.self_signed(&key).unwrap();
    support::faults::set_clock(&world, &(not_before + Duration::days(1)).to_rfc3339());
    let sdk = world.sdk().await;
    aws_sdk_acm::Client::new(&sdk)
        .import_certificate()
        .certificate(aws_sdk_acm::primitives::Blob::new(cert.pem()))
        .private_key(aws_sdk_acm::primitives::Blob::new(key.serialize_pem()))
        .send()
        .await
        .unwrap();
    support::faults::set_clock(&world, &now.to_rfc3339());
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns.create_topic().name("keyrotor").send().await.unwrap();
    let topic = topic.topic_arn().unwrap().to_owned();
    let queue = sqs.create_queue().queue_name("inbox").send().await.unwrap();
    let queue = queue.queue_url().unwrap().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    init_tables(&world).await;
    CertWorld {
        world,
        topic,
        queue,
    }
}

impl CertWorld {
    fn policy(&self) -> Policy {
        PolicyText::mode("enforce")
            .with(&format!(
                "[notifications]\ndefault_contact = \"tls@example.com\"\nsns_topic_arn = \"{}\"\n",
                self.topic
            ))
            .parse()
    }

    /// The notifications delivered so far (their subjects).
    async fn delivered(&self) -> Vec<String> {
        let sqs = aws_sdk_sqs::Client::new(&self.world.sdk().await);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if got.messages().is_empty() {
                return out;
            }
            for m in got.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                out.push(body["Subject"].as_str().unwrap_or_default().to_owned());
                sqs.delete_message()
                    .queue_url(&self.queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}

fn certs_run(case: Option<Case>) -> Boxed<'static, Report> {
    Box::pin(async move {
        let t = TIME.t0();
        let w = cert_world(t).await;
        let mut report = Report::default();
        let mut faulted = Vec::new();
        let mut delivered = Vec::new();
        for (phase, day) in [0, 5].into_iter().enumerate() {
            let now = t + Duration::days(day);
            support::faults::set_clock(&w.world, &now.to_rfc3339());
            let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
                let (world, policy) = (w.world.clone(), w.policy());
                Box::pin(async move {
                    let ctx =
                        context_with(&world, &faults, now, RetryConfig::disabled(), policy).await;
                    keyrotor::lambda::run_job(&ctx, Job::Certs, json!({})).await
                })
            };
            let check = || -> Boxed<'static, Vec<String>> { Box::pin(async { Vec::new() }) };
            if let Some(f) = drive(&w.world, case, phase, &mut report, job, check).await {
                faulted.push(f);
            }
            delivered.push(w.delivered().await);
        }
        // Each ladder step reached its owner; twice only where a fault made it ambiguous
        // whether the first went out (a lost Publish answer, or the record after it).
        for (phase, got) in delivered.iter().enumerate() {
            let ambiguous = faulted.iter().any(|f| {
                f.faulted().is_some_and(|c| {
                    c.op == "sns:Publish" && case.is_some_and(|c| c.kind == Kind::LostResponse)
                        || c.table.is_some()
                })
            }) && case.is_some_and(|c| c.phase == phase);
            if got.is_empty() || (got.len() > 1 && !ambiguous) {
                report
                    .problems
                    .push(format!("phase {phase}: notifications delivered {got:?}"));
            }
        }
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_sweep_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix("certificate sweep", certs_run, sampled).await;
    assert_clean(runs, 10, &problems);
}

// ------------------------------------------------------------------------------------
// Migration of an IAM user to a role: apply (the role is created), then sweeps as the
// workload adopts the role (adopted), its keys go idle (keys-idle, guarded), are
// deactivated and finally deleted (migrated).

fn migration_policy() -> Policy {
    Policy::from_toml(
        "mode = \"enforce\"\n[migration]\nenabled = true\n[notifications]\ndefault_contact = \"security@example.com\"\n",
        "test",
    )
    .unwrap()
}

#[derive(Clone)]
struct MigrationWorld {
    world: World,
    iam: aws_sdk_iam::Client,
    key: (String, String),
}

const MIGRATING: &str = "app";
const MIGRATED_ROLE: &str = "migrated-app";

async fn migration_world() -> MigrationWorld {
    let world = World::new();
    support::faults::set_clock(&world, &TIME.t0().to_rfc3339());
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    iam.create_user()
        .user_name(MIGRATING)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("keyrotor:migrate-to")
                .value(&runner)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name(MIGRATING)
        .policy_name("app-queue")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let key = seed::access_key(&iam, MIGRATING).await;
    let w = MigrationWorld {
        world,
        iam,
        key: (key.id, key.secret),
    };
    w.call_as(&w.key.0.clone(), &w.key.1.clone(), None).await;
    init_tables(&w.world).await;
    support::create_migration_guard_policy(&w.world).await;
    w
}

impl MigrationWorld {
    async fn call_as(&self, id: &str, secret: &str, token: Option<&str>) -> bool {
        support::seed::sts_as(&self.world, id, secret, token)
            .await
            .get_caller_identity()
            .send()
            .await
            .is_ok()
    }

    /// The workload assumes the new role and calls with its credentials; false when it
    /// cannot.
    async fn use_role(&self) -> bool {
        let arn = format!(
            "arn:aws:iam::{}:role/migrated/{MIGRATED_ROLE}",
            self.world.account
        );
        let Ok(out) = support::seed::sts_as(&self.world, "runner", "runner", None)
            .await
            .assume_role()
            .role_arn(arn)
            .role_session_name("app")
            .send()
            .await
        else {
            return false;
        };
        let c = out.credentials().unwrap();
        self.call_as(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .await
    }

    async fn key_status(&self) -> Option<String> {
        self.iam
            .list_access_keys()
            .user_name(MIGRATING)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .first()
            .and_then(|k| k.status().map(|s| s.as_str().to_owned()))
    }

    async fn role_exists(&self) -> bool {
        self.iam
            .get_role()
            .role_name(MIGRATED_ROLE)
            .send()
            .await
            .is_ok()
    }

    async fn guarded(&self) -> bool {
        self.iam
            .list_attached_user_policies()
            .user_name(MIGRATING)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .any(|p| p.policy_name() == Some("keyrotor-migration-guard"))
    }

    /// The workload always has a working credential: an active key, or (once it adopted
    /// the role) the role. Nothing keyrotor left behind is unexpected for the phase: at
    /// most one role, the guard only with the role, and no state ahead of the phase.
    async fn check(&self, problems: &mut Vec<String>, phase: usize, done: bool) {
        let key = self.key_status().await;
        let role = self.role_exists().await;
        let adopted = phase >= 1;
        if key.as_deref() != Some("Active") && !(adopted && role) {
            problems.push(format!(
                "phase {phase}: no working credential (key {key:?}, role exists: {role})"
            ));
        }
        if self.guarded().await && !role {
            problems.push(format!("phase {phase}: the user is guarded without a role"));
        }
        let roles = self.iam.list_roles().send().await.unwrap();
        let ours = roles
            .roles()
            .iter()
            .filter(|r| r.role_name().starts_with("migrated-"))
            .count();
        if ours > 1 {
            problems.push(format!("phase {phase}: {ours} keyrotor roles"));
        }
        let allowed: &[Option<&str>] = match (phase, done) {
            (0..=2, _) => &[Some("Active")],
            (3, false) => &[Some("Active"), Some("Inactive")],
            (3, true) => &[Some("Inactive")],
            (_, false) => &[Some("Inactive"), None],
            (_, true) => &[None],
        };
        if !allowed.contains(&key.as_deref()) {
            problems.push(format!(
                "phase {phase} (completed: {done}): the key is {key:?}, expected one of {allowed:?}"
            ));
        }
        if done && !role {
            problems.push(format!("phase {phase}: completed without the role"));
        }
        if done && phase == 2 && !self.guarded().await {
            problems.push("phase 2 completed without the guard".into());
        }
        if done && phase == 4 && self.guarded().await {
            problems.push("phase 4 completed with the guard still on".into());
        }
    }
}

/// `migrate apply` through the library, with keyrotor's adapters over `faults`.
async fn apply(world: &World, faults: &Faults, now: DateTime<Utc>) -> Result<Value, StepError> {
    let ctx = context_with(
        world,
        faults,
        now,
        RetryConfig::disabled(),
        migration_policy(),
    )
    .await;
    let aws = &ctx.aws;
    let iam = keyrotor::aws::iam::IamClient::of(aws);
    let identity = keyrotor::aws::sts::StsIdentity::new(aws.sts());
    let state = keyrotor::aws::dynamodb::DynamoStateStore::new(
        aws.dynamodb(),
        ctx.policy.audit.state_table.clone(),
    );
    let audit = DynamoAuditStore::new(aws.dynamodb(), ctx.policy.audit.table.clone());
    let ports = keyrotor::steps::migration::MigrationPorts {
        identity: &identity,
        iam: &iam,
        keys: &iam,
        roles: &iam,
        state: &state,
        notifier: &keyrotor::aws::sns::NoNotifier,
        audit: &audit,
        directory: None,
    };
    let done = keyrotor::steps::migration::apply(
        &ports,
        &ctx.policy,
        MIGRATING,
        now,
        &keyrotor::ports::SystemClock::Real,
    )
    .await?;
    Ok(serde_json::to_value(&done).unwrap())
}

fn migration_run(case: Option<Case>) -> Boxed<'static, Report> {
    Box::pin(async move {
        let w = migration_world().await;
        let mut report = Report::default();
        let mut faulted = Vec::new();
        // (phase, day): apply on day 1, the role used on day 3; sweeps on days 4, 34, 41, 71.
        for (phase, day) in [1, 4, 34, 41, 71].into_iter().enumerate() {
            let now = TIME.t0() + Duration::days(day);
            // Days pass between phases: a lease a faulted run could not give back has
            // long expired (its TTL is 15 minutes of wall clock, which tests do not move).
            expire_leases(&w.world).await;
            if phase == 1 {
                support::faults::set_clock(&w.world, &(now - Duration::days(1)).to_rfc3339());
                if !w.use_role().await {
                    report
                        .problems
                        .push("the workload cannot assume the role".into());
                }
            }
            support::faults::set_clock(&w.world, &now.to_rfc3339());
            let job = |faults: Faults| -> Boxed<'static, Result<Value, StepError>> {
                let world = w.world.clone();
                Box::pin(async move {
                    if phase == 0 {
                        apply(&world, &faults, now).await
                    } else {
                        let ctx = context_with(
                            &world,
                            &faults,
                            now,
                            RetryConfig::disabled(),
                            migration_policy(),
                        )
                        .await;
                        let out =
                            keyrotor::lambda::run_job(&ctx, Job::Migration, json!({})).await?;
                        let status = |s: &str| {
                            out["transitions"]
                                .as_array()
                                .map_or(0, |t| t.iter().filter(|t| t["status"] == s).count())
                        };
                        // A user whose lease another run holds (here: a faulted run whose
                        // release was lost) is skipped by the sweep, as in progress.
                        if status("conflict") > 0 {
                            return Err(StepError::InProgress(out.to_string()));
                        }
                        // A transition that failed is work left for the next sweep.
                        Ok(json!({"failed": status("failed"), "out": out}))
                    }
                })
            };
            let check = || -> Boxed<'static, Vec<String>> {
                let w = w.clone();
                Box::pin(async move {
                    let mut problems = Vec::new();
                    w.check(&mut problems, phase, false).await;
                    problems
                })
            };
            if let Some(f) = drive(&w.world, case, phase, &mut report, job, check).await {
                faulted.push(f);
            }
            w.check(&mut report.problems, phase, true).await;
        }
        if !w.use_role().await {
            report
                .problems
                .push("after the migration the role does not work".into());
        }
        check_audit(&w.world, &faulted, &mut report.problems).await;
        report
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_survives_a_fault_at_every_call() {
    let (runs, problems) = matrix("migration", migration_run, sampled).await;
    assert_clean(runs, 20, &problems);
}

/// Every kind at every call of the IAM key lifecycle, the rotation hook, the certificate
/// sweep and the migration (a few minutes): `cargo nextest run --run-ignored only --test
/// fault_injection`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full product of the sampled matrices; minutes"]
async fn other_workflows_full_fault_matrix() {
    let all = |_: usize, _: usize| Kind::ALL.to_vec();
    let mut problems = Vec::new();
    for (runs, found) in [
        matrix("iam-key lifecycle (full)", iam_keys_run, all).await,
        matrix("secret rotation hook (full)", hook_run, all).await,
        matrix("certificate sweep (full)", certs_run, all).await,
        matrix("migration (full)", migration_run, all).await,
        matrix("respond to a leaked key (full)", respond_run, all).await,
    ] {
        assert!(runs > 50, "{runs}");
        problems.extend(found);
    }
    assert!(
        problems.is_empty(),
        "{} violations:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The production retry policy (adaptive, 6 attempts), with a short first backoff so the
/// test does not sleep for seconds.
fn production_retries() -> RetryConfig {
    RetryConfig::adaptive()
        .with_max_attempts(6)
        .with_initial_backoff(std::time::Duration::from_millis(10))
}

/// With retries on, one failed attempt of any write is absorbed by the SDK's retry layer:
/// the rotation goes through in one run, with one replacement and a clean audit trail.
/// AccessDenied is not retried (not transient); the matrix covers it. A lost response is
/// the hazard: the retry re-sends a call AWS already applied. Then the run may stop (e.g.
/// the stage it moves is moved already), but nothing unsafe may happen and the next run
/// completes the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_attempt_of_any_write_is_absorbed_by_the_retry_layer() {
    let w = api_world().await;
    let clean = Faults::none();
    let ctx = context(&w.world, &clean, Utc::now(), production_retries()).await;
    keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": w.old }))
        .await
        .unwrap();
    let writes: Vec<usize> = clean
        .calls()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.is_mutation() || c.op == "dynamodb:PutItem")
        .map(|(i, _)| i)
        .collect();
    assert!(writes.len() > 8, "{:?}", clean.calls());
    let transient = [
        Kind::Throttle,
        Kind::Http500,
        Kind::Timeout,
        Kind::ConnectionReset,
    ];
    let mut cases = Vec::new();
    for (n, index) in writes.iter().enumerate() {
        if n.is_multiple_of(2) {
            cases.push((*index, transient[(n / 2) % transient.len()]));
        }
        cases.push((*index, Kind::LostResponse));
    }
    let runs = cases.len();
    let results: Vec<(Vec<String>, Option<String>)> = futures::stream::iter(cases)
        .map(|(index, kind)| async move {
            let w = api_world().await;
            let faults = Faults::at(index, kind, Attempts::First);
            let ctx = context(&w.world, &faults, Utc::now(), production_retries()).await;
            let result =
                keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": w.old })).await;
            let op = faults.faulted().map(|c| c.op).unwrap_or_default();
            let mut problems = Vec::new();
            let mut note = None;
            w.check(&mut problems, "after the run").await;
            if let Err(e) = result {
                // CreateApiKey is not retried by the SDK (a re-sent create makes a second
                // key): the step stops and its next run finds the key it made.
                if kind == Kind::LostResponse || op == "apigateway:CreateApiKey" {
                    note = Some(format!("{kind:?} on {op}: the run stopped: {e}"));
                } else {
                    problems.push(format!("not absorbed: {e}"));
                }
                let ctx =
                    context(&w.world, &Faults::none(), Utc::now(), production_retries()).await;
                if let Err(e) =
                    keyrotor::lambda::run_job(&ctx, Job::ApiKey, json!({ "key": w.old })).await
                {
                    problems.push(format!("the next run does not complete: {e}"));
                }
                w.check(&mut problems, "after the next run").await;
            }
            let keys = w.keys().await;
            if keys.len() != 2 {
                problems.push(format!("{} keys, not old + one replacement", keys.len()));
            }
            check_audit(&w.world, &[], &mut problems).await;
            let problems = problems
                .into_iter()
                .map(|p| format!("{kind:?} on the first attempt of call {index} ({op}): {p}"))
                .collect::<Vec<_>>();
            (problems, note)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let (problems, notes): (Vec<_>, Vec<_>) = results.into_iter().unzip();
    let problems: Vec<String> = problems.into_iter().flatten().collect();
    let notes: Vec<String> = notes.into_iter().flatten().collect();
    eprintln!(
        "retry layer: {runs} runs, {} violations; runs stopped by a re-sent call:\n{}",
        problems.len(),
        notes.join("\n")
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The migration job (the Lambda's) on `day`, over `faults`, without retries.
async fn migration_sweep(world: &World, faults: &Faults, day: i64) -> Result<Value, StepError> {
    let now = TIME.t0() + Duration::days(day);
    support::faults::set_clock(world, &now.to_rfc3339());
    let ctx = context_with(
        world,
        faults,
        now,
        RetryConfig::disabled(),
        migration_policy(),
    )
    .await;
    keyrotor::lambda::run_job(&ctx, Job::Migration, json!({})).await
}

/// The migration world with a second (never used) key, walked to `guarded` (day 34).
async fn two_keys_guarded() -> (MigrationWorld, String) {
    let w = migration_world().await;
    let second = seed::access_key(&w.iam, MIGRATING).await.id;
    apply(&w.world, &Faults::none(), TIME.t0() + Duration::days(1))
        .await
        .unwrap();
    support::faults::set_clock(&w.world, &(TIME.t0() + Duration::days(3)).to_rfc3339());
    assert!(w.use_role().await);
    for day in [4, 34] {
        migration_sweep(&w.world, &Faults::none(), day)
            .await
            .unwrap();
    }
    assert!(w.guarded().await);
    (w, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deactivation_stopped_after_the_first_key_is_still_rolled_back_whole() {
    // Where the deactivation's second UpdateAccessKey comes in the call order, from an
    // undisturbed run in a world of its own.
    let (probe, _) = two_keys_guarded().await;
    let faults = Faults::none();
    migration_sweep(&probe.world, &faults, 41).await.unwrap();
    let second_update = faults
        .calls()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.op == "iam:UpdateAccessKey")
        .map(|(i, _)| i)
        .nth(1)
        .expect("two keys deactivated");

    // The same run, failing on the second key: the first is already inactive.
    let (w, second) = two_keys_guarded().await;
    let faults = Faults::at(second_update, Kind::AccessDenied, Attempts::Every);
    let out = migration_sweep(&w.world, &faults, 41).await.unwrap();
    assert!(
        faults
            .faulted()
            .is_some_and(|c| c.op == "iam:UpdateAccessKey"),
        "{out}"
    );
    // The next run finishes the deactivation (the first key is already inactive).
    migration_sweep(&w.world, &Faults::none(), 42)
        .await
        .unwrap();
    let statuses = |w: MigrationWorld| async move {
        w.iam
            .list_access_keys()
            .user_name(MIGRATING)
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .iter()
            .map(|k| k.status().unwrap().as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(statuses(w.clone()).await, ["Inactive", "Inactive"]);
    // Rollback reactivates both keys, not only the one the last run saw active.
    let ctx = context_with(
        &w.world,
        &Faults::none(),
        TIME.t0() + Duration::days(43),
        RetryConfig::disabled(),
        migration_policy(),
    )
    .await;
    let iam = keyrotor::aws::iam::IamClient::of(&ctx.aws);
    let identity = keyrotor::aws::sts::StsIdentity::new(ctx.aws.sts());
    let state = keyrotor::aws::dynamodb::DynamoStateStore::new(
        ctx.aws.dynamodb(),
        ctx.policy.audit.state_table.clone(),
    );
    let audit = DynamoAuditStore::new(ctx.aws.dynamodb(), ctx.policy.audit.table.clone());
    let ports = keyrotor::steps::migration::MigrationPorts {
        identity: &identity,
        iam: &iam,
        keys: &iam,
        roles: &iam,
        state: &state,
        notifier: &keyrotor::aws::sns::NoNotifier,
        audit: &audit,
        directory: None,
    };
    let record = keyrotor::steps::migration::rollback(
        &ports,
        &ctx.policy,
        MIGRATING,
        TIME.t0() + Duration::days(43),
        &keyrotor::ports::SystemClock::Real,
    )
    .await
    .unwrap();
    assert!(
        record.deactivated.contains(&second),
        "{:?}",
        record.deactivated
    );
    assert!(
        record.deactivated.contains(&w.key.0),
        "{:?}",
        record.deactivated
    );
    assert_eq!(statuses(w.clone()).await, ["Active", "Active"]);
}

/// The hook world with a second key, never used, created a day before `now`.
async fn hook_world_two_keys(now: DateTime<Utc>) -> (HookWorld, String) {
    let w = hook_world().await;
    support::faults::set_clock(&w.world, &(now - Duration::days(1)).to_rfc3339());
    let spare = seed::access_key(&w.iam, "svc").await.id;
    support::faults::set_clock(&w.world, &now.to_rfc3339());
    (w, spare)
}

async fn create_secret(
    world: &World,
    faults: &Faults,
    now: DateTime<Utc>,
    token: &str,
) -> Result<Value, String> {
    let ctx = context(world, faults, now, RetryConfig::disabled()).await;
    let event = lambda_runtime::LambdaEvent::new(
        json!({"Step": "createSecret", "SecretId": "svc/iam", "ClientRequestToken": token}),
        lambda_runtime::Context::default(),
    );
    keyrotor::lambda::secret_rotation(&ctx, event)
        .await
        .map_err(|d| format!("{}: {}", d.error_type, d.error_message))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_removed_to_make_room_is_audited_on_its_own_chain_and_named_when_the_step_fails() {
    let now = Utc::now();
    // Where CreateAccessKey comes in the call order, from an undisturbed run.
    let (probe, _) = hook_world_two_keys(now).await;
    let token = uuid::Uuid::new_v4().to_string();
    support::faults::start_rotation(&probe.world, "svc/iam", &token);
    let faults = Faults::none();
    create_secret(&probe.world, &faults, now, &token)
        .await
        .unwrap();
    let create = faults
        .calls()
        .iter()
        .position(|c| c.op == "iam:CreateAccessKey")
        .expect("a key was created");

    // The same step, with CreateAccessKey refused after the spare key was deleted.
    let (w, spare) = hook_world_two_keys(now).await;
    support::faults::start_rotation(&w.world, "svc/iam", &token);
    let faults = Faults::at(create, Kind::AccessDenied, Attempts::Every);
    let err = create_secret(&w.world, &faults, now, &token)
        .await
        .unwrap_err();
    assert!(
        err.contains("AccessDenied") || err.contains("access denied"),
        "{err}"
    );
    let records = audit_records(&w.world).await;
    let mut own: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.resource.ends_with(&spare))
        .collect();
    own.sort_by_key(|r| r.seq);
    assert_eq!(
        own.len(),
        2,
        "intent and outcome on the removed key's own chain: {own:?}"
    );
    assert_eq!(
        own[1].outcome,
        Some(keyrotor::domain::audit_record::Outcome::Succeeded)
    );
    assert_eq!(own[0].reason, "make-room-for-rotation");
    let failed = records
        .iter()
        .find(|r| {
            r.resource.contains("svc/iam")
                && r.outcome == Some(keyrotor::domain::audit_record::Outcome::Failed)
        })
        .expect("the step's failed outcome");
    assert!(
        failed.detail.contains(&spare) && failed.detail.contains("deleted to make room"),
        "{}",
        failed.detail
    );
}
