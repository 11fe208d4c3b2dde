//! Lambda entry points: thin wiring of adapters to steps, and errors with stable names.
//!
//! Configuration comes from the environment: `KEYROTOR_CONFIG` (a policy file bundled with
//! the function; built-in defaults when unset), `KEYROTOR_AUDIT_TABLE` and
//! `KEYROTOR_STATE_TABLE` (override the policy's table names), and the usual AWS variables
//! (`AWS_REGION`, `AWS_ENDPOINT_URL` for a local emulator). `KEYROTOR_NOW` fixes the policy
//! time, as for the CLI.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::dynamodb::{DynamoAuditStore, DynamoStateStore};
use crate::aws::iam::IamClient;
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sts::{StsIdentity, StsKeyTester};
use crate::aws::{Aws, Connection};
use crate::domain::policy::Policy;
use crate::ports::{Clock, SystemClock};
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

/// The policy of a function: `KEYROTOR_CONFIG`, else the defaults; table names from the
/// environment win.
pub fn policy_from_env() -> Result<Policy, StepError> {
    let mut policy = match std::env::var("KEYROTOR_CONFIG") {
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
}

impl Context {
    /// Loads configuration once, at cold start.
    pub async fn load() -> Result<Context, StepError> {
        let policy = policy_from_env()?;
        let aws = Aws::load(&Connection::default()).await;
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
        Ok(Context {
            aws,
            policy,
            region,
            fixed_now,
        })
    }
}

/// The Secrets Manager rotation hook: one protocol step per invocation.
pub async fn secret_rotation(
    ctx: &Context,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let request = Request::from_event(event.payload).map_err(|e| diagnostic(&e))?;
    let aws = &ctx.aws;
    let secrets = SecretsManagerInventory::new(aws.secretsmanager());
    let iam = IamClient::new(aws.iam());
    let gateway = ApiGatewayClient::new(aws.apigateway());
    let ports = HookPorts {
        identity: &StsIdentity::new(aws.sts()),
        secrets: &secrets,
        iam: &iam,
        iam_admin: &iam,
        tester: &StsKeyTester::new(aws.config.clone()),
        api_keys: &gateway,
        api_admin: &gateway,
        state: &DynamoStateStore::new(aws.dynamodb(), ctx.policy.audit.state_table.clone()),
        audit: &DynamoAuditStore::new(aws.dynamodb(), ctx.policy.audit.table.clone()),
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
