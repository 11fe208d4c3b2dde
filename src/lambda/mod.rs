//! Lambda entry points: thin wiring of adapters to steps, and errors with stable names.
//!
//! Configuration comes from the environment: `KEYROTOR_POLICY` (the policy's TOML text, as
//! the SAM template sets it) or `KEYROTOR_CONFIG` (a policy file; built-in defaults when
//! neither is set), `KEYROTOR_AUDIT_TABLE` and
//! `KEYROTOR_STATE_TABLE` (override the policy's table names), `KEYROTOR_EVENT_BUS` (the
//! bus events go to when the policy names none), and the usual AWS variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL` for a local emulator). `KEYROTOR_NOW` fixes the policy
//! time, as for the CLI.

pub mod input;

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};

use crate::audit::AuditLog;
use crate::aws::acm::AcmInventory;
use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::dynamodb::{DynamoAuditStore, DynamoStateStore};
use crate::aws::iam::IamClient;
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sts::{StsIdentity, StsKeyTester};
use crate::aws::{Aws, Connection};
use crate::domain::api_rotation::{RotationStage, Trigger};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::Kind;
use crate::domain::policy::Policy;
use crate::metrics::Tally;
use crate::ports::{Clock, SystemClock};
use crate::ports::{Identity, Notification, Notifier};
use crate::steps::StepError;
use crate::steps::secret_rotation::{self, Caller, HookPorts, Request};

/// A failed invocation: `error_type` is the stable name Step Functions and Secrets Manager
/// see (`KeyRotor.InvalidInput`, `KeyRotor.Blocked`, `KeyRotor.Retryable`, ...).
pub fn diagnostic(e: &StepError) -> Diagnostic {
    Diagnostic {
        error_type: e.name().to_owned(),
        error_message: e.to_string(),
    }
}

/// The policy of a function: `KEYROTOR_POLICY` (the TOML text itself, as the template
/// passes it), else `KEYROTOR_CONFIG` (a file), else the defaults; table names from the
/// environment win.
pub fn policy_from_env() -> Result<Policy, StepError> {
    let inline = std::env::var("KEYROTOR_POLICY")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let mut policy = match std::env::var("KEYROTOR_CONFIG") {
        _ if inline.is_some() => {
            Policy::from_toml(inline.as_deref().unwrap_or_default(), "KEYROTOR_POLICY")
                .map_err(|e| StepError::InvalidInput(e.to_string()))?
        }
        Ok(path) if !path.trim().is_empty() => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                StepError::InvalidInput(format!("KEYROTOR_CONFIG = {path}: cannot read it: {e}"))
            })?;
            Policy::from_toml(&text, &path).map_err(|e| StepError::InvalidInput(e.to_string()))?
        }
        _ => Policy::default(),
    };
    if let Ok(t) = std::env::var("KEYROTOR_AUDIT_TABLE")
        && !t.trim().is_empty()
    {
        policy.audit.table = t;
    }
    if let Ok(t) = std::env::var("KEYROTOR_STATE_TABLE")
        && !t.trim().is_empty()
    {
        policy.audit.state_table = t;
    }
    // The stack's own bus, whose resource policy admits only keyrotor's roles: events go
    // there unless the policy names another bus.
    if let Ok(bus) = std::env::var("KEYROTOR_EVENT_BUS")
        && !bus.trim().is_empty()
        && policy.notifications.event_bus.is_none()
    {
        policy.notifications.event_bus = Some(bus.trim().to_owned());
    }
    Ok(policy)
}

/// Shared by every invocation of a function instance.
pub struct Context {
    pub aws: Aws,
    pub policy: Policy,
    pub region: String,
    /// `KEYROTOR_NOW` (RFC 3339), for forecasts and tests: the policy time of every
    /// invocation. Unset: the real time.
    pub fixed_now: Option<chrono::DateTime<chrono::Utc>>,
    /// `KEYROTOR_PLAN_BUCKET`: where plans with more than `inline_items` API keys are
    /// written for the Distributed Map. Unset: every plan stays inline.
    pub items_bucket: Option<String>,
    /// `KEYROTOR_INLINE_ITEMS` (default 40).
    pub inline_items: usize,
    /// The function's own identity, read once at start-up, which also opens the first
    /// HTTPS connection and seeds the TLS library before the first request is served.
    /// `None` (the read failed, or a test): read in every invocation.
    pub caller: Option<crate::ports::Caller>,
}

impl Context {
    /// Loads configuration once, at cold start.
    pub async fn load() -> Result<Context, StepError> {
        let policy = policy_from_env()?;
        let aws = Aws::load(&Connection::default())
            .await
            .with_pacing(&policy.pacing);
        let region = aws
            .region()
            .ok_or_else(|| StepError::InvalidInput("no AWS region: set AWS_REGION".into()))?;
        let fixed_now = match std::env::var("KEYROTOR_NOW") {
            Ok(v) if !v.trim().is_empty() => Some(
                chrono::DateTime::parse_from_rfc3339(v.trim())
                    .map_err(|e| {
                        StepError::InvalidInput(format!(
                            "KEYROTOR_NOW = {v:?} is not an RFC 3339 time ({e})"
                        ))
                    })?
                    .with_timezone(&chrono::Utc),
            ),
            _ => None,
        };
        let inline_items = match std::env::var("KEYROTOR_INLINE_ITEMS") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                StepError::InvalidInput(format!("KEYROTOR_INLINE_ITEMS = {v:?} is not a number"))
            })?,
            _ => 40,
        };
        // Best effort: a failure here is reported by the first invocation that needs it,
        // with its own error, rather than failing the start-up.
        let caller = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            StsIdentity::new(aws.sts()).caller(),
        )
        .await
        .ok()
        .and_then(Result::ok);
        Ok(Context {
            caller,
            aws,
            policy,
            region,
            fixed_now,
            items_bucket: std::env::var("KEYROTOR_PLAN_BUCKET")
                .ok()
                .filter(|b| !b.trim().is_empty()),
            inline_items,
        })
    }
}

/// The jobs keyrotor's Lambda functions run, one binary each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// `keyrotor-plan`: plan the account; list the API keys whose rotation has a step due.
    Plan,
    /// `keyrotor-iam-keys`: the IAM key sweep.
    IamKeys,
    /// `keyrotor-api-key`: advance one API key's rotation (`{"key": "..."}`).
    ApiKey,
    /// `keyrotor-migration`: the migration sweep.
    Migration,
    /// `keyrotor-certs`: the certificate sweep.
    Certs,
    /// `keyrotor-record-failure`: audit and notify a failed execution.
    RecordFailure,
    /// `keyrotor-secret-rotation`: the Secrets Manager rotation hook.
    SecretRotation,
}

/// Runs the Lambda runtime loop for `job`.
pub async fn serve(job: Job) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ctx = Context::load().await.map_err(|e| {
        let d = diagnostic(&e);
        format!("{}: {}", d.error_type, d.error_message)
    })?;
    let ctx = &ctx;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move {
            let result = match job {
                Job::SecretRotation => secret_rotation(ctx, event).await,
                job => match run_counted(ctx, job, event.payload).await {
                    Ok((out, tally)) => {
                        // CloudWatch Embedded Metric Format: one document per line of stdout.
                        for doc in tally.iter().flat_map(|t| t.documents(Utc::now())) {
                            println!("{doc}");
                        }
                        Ok(out)
                    }
                    Err(e) => Err(diagnostic(&e)),
                },
            };
            if let Err(d) = &result {
                tracing::warn!(error_type = %d.error_type, "invocation failed");
            }
            result
        },
    ))
    .await
}

impl Context {
    /// Who the function runs as: read at start-up, else now.
    fn identity(&self) -> Box<dyn Identity> {
        match &self.caller {
            Some(c) => Box::new(crate::aws::sts::KnownIdentity(c.clone())),
            None => Box::new(StsIdentity::new(self.aws.sts())),
        }
    }

    /// The policy time of one invocation: `KEYROTOR_NOW`, else the real time. With
    /// `KEYROTOR_EVENT_TIME=1` (local runs, where Wait states are shortened) an event field
    /// `"at"` may move it forward, never back.
    fn now(&self, input: &input::JobInput) -> DateTime<Utc> {
        let base = self.fixed_now.unwrap_or_else(Utc::now);
        input.at.map_or(base, |at| at.max(base))
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, StepError> {
    serde_json::to_value(value).map_err(|e| {
        StepError::Port(crate::ports::PortError::Other {
            operation: "encode".into(),
            message: e.to_string(),
        })
    })
}

/// Entries listed in a job's result; the rest are counted (and in the audit trail).
const MAX_LISTED: usize = 100;

/// Runs one job; the result carries identifiers and stages only, never a value.
pub async fn run_job(ctx: &Context, job: Job, event: Value) -> Result<Value, StepError> {
    run_counted(ctx, job, event).await.map(|(out, _)| out)
}

/// [`run_job`], with what the run did counted for metrics (`None`: nothing to count).
pub async fn run_counted(
    ctx: &Context,
    job: Job,
    event: Value,
) -> Result<(Value, Option<Tally>), StepError> {
    let event_time = std::env::var("KEYROTOR_EVENT_TIME").as_deref() == Ok("1");
    let input = input::decode(job, &event, event_time)?;
    let now = ctx.now(&input);
    let multi = ctx.policy.accounts.is_multi_account();
    match job {
        Job::Plan => plan_job(ctx, now).await,
        Job::IamKeys | Job::Migration | Job::Certs if multi => {
            across_accounts(ctx, job, &input, now, &event).await
        }
        Job::ApiKey if let Some(account) = &input.account => {
            let caller = ctx.identity().caller().await?;
            // Only an account the policy covers, checked before any role is assumed.
            if &caller.account != account {
                let directory = crate::aws::organizations::OrganizationAccounts::of(&ctx.aws);
                let targets = crate::steps::accounts::targets(
                    &ctx.policy.accounts,
                    &caller.account,
                    &directory,
                )
                .await?;
                input::check_account(account, &targets)?;
            }
            let member = crate::aws::organizations::enter(
                &ctx.aws,
                &ctx.policy.accounts,
                caller.partition(),
                account,
                &caller.account == account,
            )
            .await?;
            run_in(ctx, job, &input, now, member.as_ref(), &event).await
        }
        _ => run_in(ctx, job, &input, now, None, &event).await,
    }
}

/// The plan job: the API keys whose rotation has a step due, in every account of
/// `[accounts]` (each item names its account), inline or, when large, in S3.
async fn plan_job(ctx: &Context, now: DateTime<Utc>) -> Result<(Value, Option<Tally>), StepError> {
    let policy = &ctx.policy;
    let clock = SystemClock::Real;
    let (home_account, keys, due, accounts) = if policy.accounts.is_multi_account() {
        let runs = in_each_account(ctx, async |member| plan_keys(ctx, now, member).await).await?;
        let mut keys = Vec::new();
        let mut due = 0;
        let mut summary = Vec::new();
        for run in runs {
            let mut entry = account_entry(&run);
            if let Ok(planned) = run.result {
                due += planned.due;
                entry["api_keys_due"] = planned.due.into();
                keys.extend(planned.keys);
            }
            summary.push(entry);
        }
        let home = ctx.identity().caller().await?.account.to_string();
        (home, keys, due, Some(summary))
    } else {
        let planned = plan_keys(ctx, now, None).await?;
        (planned.account, planned.keys, planned.due, None)
    };
    // A large plan goes to S3 for the sweep's Distributed Map: a state payload is limited
    // to 256 KiB and an inline Map to 40 concurrent iterations.
    let large = keys.len() > ctx.inline_items && ctx.items_bucket.is_some();
    let mut out = json!({
        "account": home_account,
        "region": ctx.region,
        "generated_at": now.to_rfc3339(),
        "mode": policy.mode,
        "api_keys": if large { Vec::new() } else { keys.clone() },
        "api_key_count": keys.len(),
        "api_keys_due": due,
        "large": large,
        "at": now.to_rfc3339(),
    });
    if let Some(accounts) = accounts {
        out["failed_accounts"] = accounts
            .iter()
            .filter(|a| a["status"] == "failed")
            .count()
            .into();
        out["accounts"] = Value::Array(accounts);
    }
    if large && let Some(bucket) = &ctx.items_bucket {
        let key = format!(
            "plans/{home_account}/{}.json",
            crate::steps::new_run_id(clock.now())
        );
        let store = crate::aws::s3::S3Items::new(ctx.aws.s3());
        crate::ports::ItemStore::put(&store, bucket, &key, &Value::Array(keys).to_string()).await?;
        out["items"] = json!({"bucket": bucket, "key": key});
    }
    Ok((out, None))
}

/// A sweep job in every account of `[accounts]`: per account its result or its error,
/// the totals, and the metrics of all of them. A failing account does not stop the others.
async fn across_accounts(
    ctx: &Context,
    job: Job,
    input: &input::JobInput,
    now: DateTime<Utc>,
    event: &Value,
) -> Result<(Value, Option<Tally>), StepError> {
    let runs = in_each_account(ctx, async |member| {
        run_in(ctx, job, input, now, member, event).await
    })
    .await?;
    let (mut total, mut failed, mut failed_accounts) = (0, 0, 0);
    let mut tally: Option<Tally> = None;
    let mut accounts = Vec::new();
    for run in runs {
        let mut entry = account_entry(&run);
        match run.result {
            Ok((out, t)) => {
                total += out["total"].as_u64().unwrap_or(0);
                failed += out["failed"].as_u64().unwrap_or(0);
                entry["result"] = out;
                if let Some(t) = t {
                    match &mut tally {
                        Some(all) => all.merge(t),
                        None => tally = Some(t),
                    }
                }
            }
            Err(_) => failed_accounts += 1,
        }
        accounts.push(entry);
    }
    Ok((
        json!({
            "accounts": accounts,
            "total": total,
            "failed": failed + failed_accounts,
            "failed_accounts": failed_accounts,
        }),
        tally,
    ))
}

/// `work` in every account of `[accounts]` (member role, bounded concurrency), each run
/// with its own result. `work` gets the member account's [`Aws`], or `None` for the
/// function's own account.
async fn in_each_account<T, F>(
    ctx: &Context,
    work: F,
) -> Result<Vec<crate::steps::accounts::AccountRun<T>>, StepError>
where
    F: AsyncFn(Option<&Aws>) -> Result<T, StepError>,
{
    let policy = &ctx.policy;
    let identity = ctx.identity();
    let directory = crate::aws::organizations::OrganizationAccounts::of(&ctx.aws);
    let (targets, partition) =
        crate::steps::accounts::resolve(&policy.accounts, &*identity, &directory).await?;
    let (partition, work) = (&partition, &work);
    Ok(
        crate::steps::accounts::across(&targets, policy.accounts.concurrency, |t| async move {
            let member = crate::aws::organizations::enter(
                &ctx.aws,
                &policy.accounts,
                partition,
                &t.account,
                t.home,
            )
            .await?;
            work(member.as_ref()).await
        })
        .await,
    )
}

/// An account's line in a multi-account job result: which, and whether it succeeded.
fn account_entry<T>(run: &crate::steps::accounts::AccountRun<T>) -> Value {
    let mut entry = json!({
        "account": run.target.account.as_str(),
        "name": run.target.name,
        "status": if run.result.is_ok() { "succeeded" } else { "failed" },
    });
    if let Err(e) = &run.result {
        entry["error_type"] = e.name().into();
        entry["error"] = e.to_string().into();
    }
    entry
}

/// The API keys whose rotation has a step due in one account (`member`, or the function's
/// own), as the sweep's items.
struct PlannedKeys {
    account: String,
    keys: Vec<Value>,
    due: usize,
}

async fn plan_keys(
    ctx: &Context,
    now: DateTime<Utc>,
    member: Option<&Aws>,
) -> Result<PlannedKeys, StepError> {
    let aws = member.unwrap_or(&ctx.aws);
    let policy = &ctx.policy;
    let identity: Box<dyn Identity> = match member {
        None => ctx.identity(),
        Some(aws) => Box::new(StsIdentity::new(aws.sts())),
    };
    let iam = IamClient::of(aws);
    let gateway = ApiGatewayClient::of(aws);
    let secrets = SecretsManagerInventory::of(aws);
    let certs = AcmInventory::new(aws.clone());
    let state = DynamoStateStore::new(ctx.aws.dynamodb(), policy.audit.state_table.clone());
    let discovery = crate::steps::discover::DiscoveryPorts {
        iam: &iam,
        api_keys: &gateway,
        certs: &certs,
        secrets: &secrets,
    };
    let outcome = crate::steps::plan(
        &*identity,
        &discovery,
        Some(&state),
        None,
        policy,
        &crate::steps::PlanRequest {
            kinds: &[Kind::ApiKeys],
            now,
            region: &ctx.region,
        },
        &SystemClock::Real,
    )
    .await?;
    let day = now.format("%Y%m%d");
    // In mode = "plan" no rotation is started: the plan is reported only.
    let enforce = policy.mode == crate::domain::policy::Mode::Enforce;
    let account = outcome.caller.account.to_string();
    let keys = outcome
        .plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys && enforce)
        .map(|a| {
            json!({
                "key": a.resource,
                "account": account,
                // One execution per key and day: Step Functions itself rejects a second
                // one with the same name.
                "execution": format!("api-key-{}-{day}", a.resource),
                "action": a.action.as_str(),
                "at": now.to_rfc3339(),
            })
        })
        .collect();
    let due = outcome
        .plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys)
        .count();
    Ok(PlannedKeys { account, keys, due })
}

/// One job in a `member` account (`None`: the function's own); keyrotor's tables and
/// notification channels are the function's own (`ctx.aws`).
async fn run_in(
    ctx: &Context,
    job: Job,
    input: &input::JobInput,
    now: DateTime<Utc>,
    member: Option<&Aws>,
    event: &Value,
) -> Result<(Value, Option<Tally>), StepError> {
    let home = &ctx.aws;
    let aws = member.unwrap_or(home);
    let policy = &ctx.policy;
    let clock = SystemClock::Real;
    // The function's own account: its identity is known since start-up.
    let identity: Box<dyn Identity> = match member {
        None => ctx.identity(),
        Some(aws) => Box::new(StsIdentity::new(aws.sts())),
    };
    let identity = &*identity;
    let iam = IamClient::of(aws);
    let gateway = ApiGatewayClient::of(aws);
    let secrets = SecretsManagerInventory::of(aws);
    let state = DynamoStateStore::new(home.dynamodb(), policy.audit.state_table.clone());
    let audit = DynamoAuditStore::new(home.dynamodb(), policy.audit.table.clone());
    let notifier_box = crate::aws::sns::notifier_for(home, &policy.notifications);
    let notifier: &dyn crate::ports::Notifier = &*notifier_box;
    match job {
        Job::IamKeys => {
            let ports = crate::steps::iam_keys::IamKeyPorts {
                identity,
                iam: &iam,
                secrets: &secrets,
                admin: &iam,
                state: &state,
                notifier,
                audit: &audit,
            };
            let done = crate::steps::iam_keys::sweep(&ports, policy, now, &clock).await?;
            let mut tally = Tally::new(Kind::IamKeys.as_str());
            for a in &done.applied {
                tally.count(a.status);
            }
            // Escalations of keys in use keyrotor will not touch: a person must act.
            tally.blocked += done
                .plan
                .actions
                .iter()
                .filter(|a| a.blocked.is_some())
                .count() as u64;
            // The state payload stays small (256 KiB limit): the first entries and the
            // counts; the audit trail has every action.
            Ok((
                json!({
                    "run_id": done.run_id,
                    "mode": done.mode,
                    "total": done.applied.len(),
                    "applied": to_value(&done.applied.iter().take(MAX_LISTED).collect::<Vec<_>>())?,
                    "failed": done.failed(),
                }),
                Some(tally),
            ))
        }
        Job::ApiKey => {
            if policy.mode != crate::domain::policy::Mode::Enforce {
                return Err(StepError::Blocked(
                    "the policy's mode is \"plan\": API keys are not rotated; set mode = \"enforce\"".into(),
                ));
            }
            let key = input.key.as_deref().unwrap_or_default();
            let ports = crate::steps::api_keys::ApiKeyPorts {
                identity,
                keys: &gateway,
                secret_list: &secrets,
                admin: &gateway,
                secrets: &secrets,
                state: &state,
                audit: &audit,
                notifier,
            };
            let done = crate::steps::api_keys::rotate(
                &ports,
                policy,
                &ctx.region,
                key,
                Trigger::Age,
                now,
                &clock,
            )
            .await?;
            match done.status {
                "failed" => {
                    return Err(StepError::Port(done.cause.clone().unwrap_or_else(|| {
                        crate::ports::PortError::Other {
                            operation: format!("rotation of {key}"),
                            message: done.error.clone().unwrap_or_default(),
                        }
                    })));
                }
                "conflict" => {
                    return Err(StepError::InProgress(done.error.unwrap_or_default()));
                }
                _ => {}
            }
            let wait = done.next_at.map_or(0, |t| (t - now).num_seconds().max(0));
            let mut tally = Tally::new(Kind::ApiKeys.as_str());
            for _ in &done.steps {
                tally.count("succeeded");
            }
            if done.status != "done" {
                tally.count(done.status);
            }
            let out = json!({
                "key": done.key,
                "stage": done.stage,
                "new_key": done.new_key,
                "steps": to_value(&done.steps)?,
                "next": done.next,
                "next_at": done.next_at,
                "wait_seconds": wait,
                "done": done.stage == Some(RotationStage::Deleted),
                "at": done.next_at.unwrap_or(now).to_rfc3339(),
            });
            Ok((out, Some(tally)))
        }
        Job::Migration => {
            // The organization is listed from the function's own account, once per run and
            // only when a migration trusts a role in another account.
            let organization = crate::aws::organizations::OrganizationAccounts::of(home);
            let ports = crate::steps::migration::MigrationPorts {
                identity,
                iam: &iam,
                keys: &iam,
                roles: &iam,
                state: &state,
                notifier,
                audit: &audit,
                directory: policy
                    .accounts
                    .organization
                    .then_some(&organization as &dyn crate::ports::AccountDirectory),
            };
            let done = crate::steps::migration::sweep(&ports, policy, now, &clock).await?;
            let mut tally = Tally::new(Kind::Migration.as_str());
            for t in &done.transitions {
                tally.count(t.status);
            }
            Ok((
                json!({
                    "run_id": done.run_id,
                    "mode": done.mode,
                    "total": done.transitions.len(),
                    // One definition of "failed" (failed, conflict, blocked), as the CLI's:
                    // the fan-out adds it up over the accounts.
                    "failed": done.failed(),
                    "transitions": to_value(&done.transitions.iter().take(MAX_LISTED).collect::<Vec<_>>())?,
                }),
                Some(tally),
            ))
        }
        Job::Certs => {
            let certs = AcmInventory::new(aws.clone());
            let ports = crate::steps::certs::SweepPorts {
                identity,
                certs: &certs,
                state: &state,
                notifier,
                audit: &audit,
            };
            let done = crate::steps::certs::sweep(&ports, policy, &ctx.region, now, &clock).await?;
            let mut tally = Tally::new(Kind::Certs.as_str());
            for n in &done.notifications {
                tally.count(n.status);
            }
            tally.min_days_to_expiry = done
                .report
                .certificates
                .iter()
                .filter_map(|c| c.days_left)
                .min();
            tally.extra = done.metrics.clone();
            Ok((
                json!({
                    "run_id": done.run_id,
                    "total": done.notifications.len(),
                    "notifications": to_value(&done.notifications.iter().take(MAX_LISTED).collect::<Vec<_>>())?,
                    "failed": done.failed(),
                }),
                Some(tally),
            ))
        }
        Job::RecordFailure => {
            let out =
                record_failure(identity, &audit, notifier, input, &ctx.region, now, &clock).await?;
            let kind = event
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            let mut tally = Tally::new(kind);
            tally.count(if out["blocked"] == true {
                "blocked"
            } else {
                "failed"
            });
            Ok((out, Some(tally)))
        }
        Job::SecretRotation => Err(StepError::InvalidInput(
            "the rotation hook takes Secrets Manager events".into(),
        )),
        // Routed to plan_job by run_counted, which lists the keys of every account.
        Job::Plan => plan_job(ctx, now).await,
    }
}

/// Audits and notifies a failed state: `{"what": ..., "resource": ..., "error": {"Error",
/// "Cause"}}` from a Catch, with the resource's `"account"` when it is not the function's.
async fn record_failure(
    identity: &dyn Identity,
    audit: &dyn crate::ports::AuditStore,
    notifier: &dyn Notifier,
    input: &input::JobInput,
    region: &str,
    now: DateTime<Utc>,
    clock: &dyn Clock,
) -> Result<Value, StepError> {
    let failure = input
        .failure
        .as_ref()
        .ok_or_else(|| StepError::InvalidInput("event: no failed state".into()))?;
    let account = input.account.as_ref();
    let caller = identity.caller().await?;
    let (name, cause, kind) = (&failure.error, &failure.cause, failure.kind);
    // Stopped before a change (a person must look) rather than failed.
    let blocked = name == "KeyRotor.Blocked" || name == "KeyRotor.InvalidInput";
    // The chain of the resource itself: API keys and certificates are regional.
    let region = match kind {
        Kind::ApiKeys | Kind::Certs => region.to_owned(),
        _ => "global".to_owned(),
    };
    let log = AuditLog::new(
        audit,
        crate::steps::new_run_id(clock.now()),
        caller.arn.clone(),
    );
    let resource = failure.resource.clone();
    log.append(
        &Entry {
            resource: ResourceRef {
                kind,
                // The failed resource's account: a member account's, when the state names it.
                account: account.map_or_else(|| caller.account.to_string(), |a| a.to_string()),
                region,
                id: resource.clone(),
            },
            action: failure.what.clone(),
            phase: Phase::Decision,
            outcome: Some(if blocked {
                Outcome::Blocked
            } else {
                Outcome::Failed
            }),
            reason: name.clone(),
            detail: cause.clone(),
            before: None,
            after: None,
            dry_run: false,
            policy_time: now,
        },
        clock.now(),
    )
    .await?;
    log.anchor(clock.now()).await?;
    let sent = notifier
        .notify(&Notification {
            event: if blocked {
                "action-blocked".into()
            } else {
                "action-failed".into()
            },
            resource: resource.clone(),
            owner: None,
            subject: format!(
                "keyrotor: {} of {resource} {} ({name})",
                failure.what,
                if blocked { "was blocked" } else { "failed" }
            )
                .chars()
                .take(100)
                .collect(),
            message: format!(
                "{} of {resource} stopped with {name}: {cause}\nNothing further is done for it until a person looks; see `keyrotor audit list --resource {resource}`.",
                failure.what
            ),
            at: Some(now),
            undo: Some(
                "nothing was changed by the stopped step; fix the cause, then run the sweep or `keyrotor rotate` again".into(),
            ),
        })
        .await;
    Ok(
        json!({"recorded": true, "resource": resource, "error": name, "blocked": blocked, "notified": sent.is_ok()}),
    )
}

/// The Secrets Manager rotation hook: one protocol step per invocation.
pub async fn secret_rotation(
    ctx: &Context,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let request = Request::from_event(event.payload).map_err(|e| diagnostic(&e))?;
    let aws = &ctx.aws;
    let secrets = SecretsManagerInventory::of(aws);
    let iam = IamClient::of(aws);
    let gateway = ApiGatewayClient::of(aws);
    let ports = HookPorts {
        identity: &*ctx.identity(),
        secrets: &secrets,
        iam: &iam,
        iam_admin: &iam,
        tester: &StsKeyTester::new(aws.config.clone()),
        api_keys: &gateway,
        api_admin: &gateway,
        state: &DynamoStateStore::new(aws.dynamodb(), ctx.policy.audit.state_table.clone()),
        audit: &DynamoAuditStore::new(aws.dynamodb(), ctx.policy.audit.table.clone()),
        notifier: &*crate::aws::sns::notifier_for(aws, &ctx.policy.notifications),
    };
    let clock = SystemClock::Real;
    let done = secret_rotation::run_step(
        &ports,
        &ctx.policy,
        &request,
        Caller::SecretsManager,
        &ctx.region,
        ctx.fixed_now.unwrap_or_else(|| clock.now()),
        &clock,
    )
    .await
    .map_err(|e| diagnostic(&e))?;
    tracing::info!(
        step = done.step.as_str(),
        secret = %done.secret,
        status = done.status,
        "rotation step finished"
    );
    serde_json::to_value(&done).map_err(|e| Diagnostic {
        error_type: "KeyRotor.Failed".into(),
        error_message: e.to_string(),
    })
}

/// Structured logs to stderr (CloudWatch Logs in Lambda); never any secret value.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYROTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,keyrotor=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_writer(std::io::stderr)
        .try_init();
}
