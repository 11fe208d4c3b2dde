//! Lambda entry points: thin wiring of adapters to steps, and errors with stable names.
//!
//! Configuration comes from the environment ([`config`]): `KEYROTOR_POLICY` (the policy's
//! TOML text, as the SAM template sets it) or `KEYROTOR_CONFIG` (a policy file; built-in
//! defaults when neither is set), `KEYROTOR_AUDIT_TABLE` and `KEYROTOR_STATE_TABLE`
//! (override the policy's table names), `KEYROTOR_EVENT_BUS` (the bus events go to when
//! the policy names none), and the usual AWS variables (`AWS_REGION`, `AWS_ENDPOINT_URL`
//! for a local emulator). `KEYROTOR_NOW` fixes the policy time, as for the CLI.
//!
//! Each invocation decodes its input ([`input`], fuzzed) before any AWS call, runs its job
//! over the ports of [`crate::wiring::Wiring`] (built once per container by [`serve`]),
//! and returns a typed output ([`output`]) holding identifiers and stages, never a value.

mod config;
mod hook;
pub mod input;
pub mod output;
mod plan;
mod record_failure;
mod respond;
mod sweeps;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::aws::Aws;
use crate::domain::policy::Policy;
use crate::metrics::Tally;
use crate::steps::StepError;
use crate::wiring::Wiring;
use input::Input;

pub use config::policy_from_env;
pub use hook::secret_rotation;

/// A failed invocation: `error_type` is the stable name Step Functions and Secrets Manager
/// see (`KeyRotor.InvalidInput`, `KeyRotor.Blocked`, `KeyRotor.Retryable`, ...).
pub fn diagnostic(e: &StepError) -> Diagnostic {
    Diagnostic {
        error_type: e.name().to_owned(),
        error_message: e.to_string(),
    }
}

/// Shared by every invocation of a function instance.
pub struct Context {
    pub aws: Aws,
    pub policy: Policy,
    pub region: String,
    /// `KEYROTOR_NOW` (RFC 3339), for forecasts and tests: the policy time of every
    /// invocation. Unset: the real time.
    pub fixed_now: Option<DateTime<Utc>>,
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
    /// The adapters and ports of the function's own account. [`serve`] builds it once per
    /// container; [`run_job`] (tests, one-off callers) builds it per call.
    pub fn wiring(&self) -> Wiring {
        Wiring::knowing(&self.aws, &self.policy, self.caller.clone())
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
    /// `keyrotor-respond-decode`: reads the exposures an EventBridge event reports (AWS
    /// Health, GuardDuty, CloudTrail's quarantine `AttachUserPolicy`).
    RespondDecode,
    /// `keyrotor-respond-contain`: contains one exposed key (`{"exposure", "region"}`).
    RespondContain,
    /// `keyrotor-respond-investigate`: adds the key's CloudTrail activity to a response.
    RespondInvestigate,
    /// `keyrotor-respond-notify`: sends a response's "Credential Exposed" notification.
    RespondNotify,
}

impl Job {
    /// The function's name without the `keyrotor-` prefix, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Job::Plan => "plan",
            Job::IamKeys => "iam-keys",
            Job::ApiKey => "api-key",
            Job::Migration => "migration",
            Job::Certs => "certs",
            Job::RecordFailure => "record-failure",
            Job::SecretRotation => "secret-rotation",
            Job::RespondDecode => "respond-decode",
            Job::RespondContain => "respond-contain",
            Job::RespondInvestigate => "respond-investigate",
            Job::RespondNotify => "respond-notify",
        }
    }
}

/// What a container keeps between invocations: the configuration and the wiring built
/// from it (SDK clients, adapters, the caller's identity), so a warm invocation builds
/// nothing.
struct Container {
    ctx: Context,
    wiring: Wiring,
}

/// Runs the Lambda runtime loop for `job`.
pub async fn serve(job: Job) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ctx = Context::load().await.map_err(|e| {
        let d = diagnostic(&e);
        format!("{}: {}", d.error_type, d.error_message)
    })?;
    let container = Container {
        wiring: ctx.wiring(),
        ctx,
    };
    let container = &container;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move {
            let (ctx, wiring) = (&container.ctx, &container.wiring);
            let request_id = event.context.request_id.clone();
            let result = match job {
                Job::SecretRotation => hook::run(ctx, wiring, event.payload, &request_id).await,
                job => match handle(ctx, wiring, job, event.payload, &request_id).await {
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

/// One invocation of a Step Functions job, in a span naming the job and the request.
#[tracing::instrument(
    skip_all,
    fields(job = job.as_str(), request_id = %request_id, run_id = tracing::field::Empty)
)]
async fn handle(
    ctx: &Context,
    wiring: &Wiring,
    job: Job,
    event: Value,
    request_id: &str,
) -> Counted {
    run_wired(ctx, wiring, job, event).await
}

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
    run_wired(ctx, &ctx.wiring(), job, event).await
}

/// Decodes `event` before any AWS call, then runs `job` over `wiring` and serialises its
/// typed output.
async fn run_wired(ctx: &Context, wiring: &Wiring, job: Job, event: Value) -> Counted {
    let event_time = std::env::var("KEYROTOR_EVENT_TIME").as_deref() == Ok("1");
    let decoded = input::decode(job, &event, event_time)?;
    let now = ctx.now(&decoded);
    // Each job's future is boxed: one type per job, not one nested type of them all
    // (which the compiler cannot lay out in the binaries' `main`).
    let job: Pin<Box<dyn Future<Output = Counted> + '_>> = match decoded.for_job(job)? {
        Input::Plan => Box::pin(plan::run(ctx, wiring, now)),
        Input::IamKeys => Box::pin(sweeps::iam_keys(ctx, wiring, now)),
        Input::Migration => Box::pin(sweeps::migration(ctx, wiring, now)),
        Input::Certs => Box::pin(sweeps::certs(ctx, wiring, now)),
        Input::ApiKey { key, account } => {
            Box::pin(async move { sweeps::api_key(ctx, wiring, &key, account.as_ref(), now).await })
        }
        Input::RecordFailure { failure, account } => {
            // The metrics' kind is the state's own word (`plan` stays `plan`).
            let kind = event
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned();
            Box::pin(async move {
                record_failure::run(ctx, wiring, &failure, account.as_ref(), &kind, now).await
            })
        }
        Input::RespondDecode { event } => {
            Box::pin(async move { respond::decode(ctx, wiring, &event, now).await })
        }
        Input::RespondContain { exposure, region } => {
            Box::pin(async move { respond::contain(ctx, wiring, exposure, region, now).await })
        }
        Input::RespondInvestigate { response } => {
            Box::pin(async move { respond::investigate(ctx, wiring, *response, now).await })
        }
        Input::RespondNotify { response } => {
            Box::pin(async move { respond::notify(wiring, &response).await })
        }
    };
    job.await
}

/// A job's output, and what it did counted for metrics (`None`: nothing to count).
type Counted = Result<(Value, Option<Tally>), StepError>;

/// Serialises a typed output at the edge.
fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, StepError> {
    serde_json::to_value(value).map_err(|e| {
        StepError::Port(crate::ports::PortError::Other {
            operation: "encode".into(),
            message: e.to_string(),
        })
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
