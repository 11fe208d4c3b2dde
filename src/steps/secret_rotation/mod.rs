//! The Secrets Manager rotation hook: the four steps of AWS's rotation protocol
//! (createSecret, setSecret, testSecret, finishSecret) for secrets tagged
//! `keyrotor:type = iam-access-key` (`{"userName", "accessKeyId", "secretAccessKey"}`) or
//! `apigw-api-key` (`{"apiKeyId", "value"}`).
//!
//! Protocol rules, checked on every step: the token must be a version of the secret staged
//! AWSPENDING; a token already AWSCURRENT is a no-op; rotation must be enabled (when invoked
//! by Secrets Manager). Every step is idempotent. The previous credential is never disabled
//! here: finishSecret schedules it (IAM: deactivation after `rotation_grace_days`; API key:
//! retirement after `grace_days`), and the sweep carries it out.
//!
//! The folder, by concern: this module holds the public types, [`run_step`] and
//! [`rotate_locally`]; `protocol` audits each step and dispatches it by credential kind;
//! `versions` reads the secret's versions and moves its staging labels; `iam` and
//! `iam_attempt` rotate IAM access keys; `api_key` rotates API keys, sharing the rotation
//! records and the replacement with [`crate::steps::api_keys`].

mod api_key;
mod iam;
mod iam_attempt;
mod protocol;
mod versions;

pub(crate) use iam::{keys_in_staged_versions, secret_names as iam_secret_names};

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::status::Status;
use super::{StepError, new_run_id};
use crate::audit::AuditLog;
use crate::domain::api_rotation::is_token;
use crate::domain::model::{AccountId, TAG_TYPE};
use crate::domain::policy::{Mode, Policy};
use crate::ports::{
    ApiKeyAdmin, ApiKeyInventory, AuditStore, Clock, IamInventory, IamKeyAdmin, Identity,
    KeyTester, SecretDescription, SecretVersions, StateStore,
};

/// `keyrotor:type` of a secret holding an IAM access key.
pub const TYPE_IAM: &str = "iam-access-key";
/// `keyrotor:type` of a secret holding an API Gateway API key.
pub const TYPE_API_KEY: &str = crate::domain::binding::TYPE_API_KEY;

/// The step Secrets Manager asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProtocolStep {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl ProtocolStep {
    pub const ALL: [ProtocolStep; 4] = [
        ProtocolStep::CreateSecret,
        ProtocolStep::SetSecret,
        ProtocolStep::TestSecret,
        ProtocolStep::FinishSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolStep::CreateSecret => "createSecret",
            ProtocolStep::SetSecret => "setSecret",
            ProtocolStep::TestSecret => "testSecret",
            ProtocolStep::FinishSecret => "finishSecret",
        }
    }
}

/// A rotation request: one step for one secret version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub step: ProtocolStep,
    pub secret_id: String,
    pub token: String,
}

impl Request {
    /// Reads a Lambda event; the error names the field that is missing or wrong.
    pub fn from_event(event: serde_json::Value) -> Result<Request, StepError> {
        let parsed: SecretsManagerSecretRotationEvent = serde_json::from_value(event)
            .map_err(|e| {
                StepError::InvalidInput(format!(
                    "rotation event: {e}; expected {{\"Step\": \"createSecret|setSecret|testSecret|finishSecret\", \"SecretId\": ..., \"ClientRequestToken\": ...}}"
                ))
            })?;
        let step = ProtocolStep::ALL
            .into_iter()
            .find(|s| s.as_str() == parsed.step)
            .ok_or_else(|| {
                StepError::InvalidInput(format!(
                    "rotation event: Step {:?} is not one of createSecret, setSecret, testSecret, finishSecret",
                    parsed.step
                ))
            })?;
        for (name, value) in [
            ("SecretId", &parsed.secret_id),
            ("ClientRequestToken", &parsed.client_request_token),
        ] {
            if value.trim().is_empty() {
                return Err(StepError::InvalidInput(format!(
                    "rotation event: {name} is empty"
                )));
            }
        }
        Ok(Request {
            step,
            secret_id: parsed.secret_id,
            token: parsed.client_request_token,
        })
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub step: ProtocolStep,
    pub secret: String,
    pub token: String,
    /// `done`, or `no-op` with the reason in `detail`.
    pub status: Status,
    pub detail: String,
}

/// The ports the hook uses.
pub struct HookPorts<'a> {
    pub identity: &'a dyn Identity,
    pub secrets: &'a dyn SecretVersions,
    pub iam: &'a dyn IamInventory,
    pub iam_admin: &'a dyn IamKeyAdmin,
    pub tester: &'a dyn KeyTester,
    pub api_keys: &'a dyn ApiKeyInventory,
    pub api_admin: &'a dyn ApiKeyAdmin,
    pub state: &'a dyn StateStore,
    pub audit: &'a dyn AuditStore,
    /// Tells the owner when the secret's credential was replaced.
    pub notifier: &'a dyn crate::ports::Notifier,
}

/// Who invoked the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Secrets Manager (RotateSecret): the token version exists, staged AWSPENDING.
    SecretsManager,
    /// `keyrotor rotate secret`: createSecret writes the token version itself, and the
    /// secret need not have rotation enabled.
    Local,
    /// `keyrotor respond --override-exemption`: as [`Caller::Local`], and a person decided
    /// that the user's exemption (break-glass, exempt tag, out of scope) does not stop the
    /// replacement of a leaked key; the root user still does.
    LocalOverridingExemption,
}

/// The two credential shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretType {
    Iam,
    ApiKey,
}

/// One invocation's context.
struct Hook<'a> {
    ports: &'a HookPorts<'a>,
    policy: &'a Policy,
    now: DateTime<Utc>,
    wall: &'a dyn Clock,
    log: AuditLog<'a>,
    account: AccountId,
    region: String,
    request: &'a Request,
    secret: SecretDescription,
    kind: SecretType,
    /// Changes this step made to AWS besides its main one (named in a failed outcome).
    effects: std::sync::Mutex<Vec<String>>,
    /// A person overrode the user's exemption ([`Caller::LocalOverridingExemption`]).
    exemption_overridden: bool,
}

/// Runs one protocol step.
pub async fn run_step(
    ports: &HookPorts<'_>,
    policy: &Policy,
    request: &Request,
    caller_kind: Caller,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<StepResult, StepError> {
    let invalid = |m: String| StepError::InvalidInput(m);
    let secret = ports
        .secrets
        .describe(&request.secret_id)
        .await?
        .ok_or_else(|| invalid(format!("secret {:?} does not exist", request.secret_id)))?;
    if caller_kind == Caller::SecretsManager && !secret.rotation_enabled {
        return Err(invalid(format!(
            "rotation is not enabled for secret {}; enable it (aws secretsmanager rotate-secret --rotation-lambda-arn ...) before invoking the hook",
            secret.name
        )));
    }
    let kind = match secret.tags.get(TAG_TYPE).map(String::as_str) {
        Some(TYPE_IAM) => SecretType::Iam,
        Some(TYPE_API_KEY) => SecretType::ApiKey,
        other => {
            return Err(invalid(format!(
                "secret {} has tag {TAG_TYPE} = {:?}; keyrotor rotates secrets tagged {TAG_TYPE} = {TYPE_IAM} or {TYPE_API_KEY}",
                secret.name,
                other.unwrap_or("(missing)")
            )));
        }
    };
    if kind == SecretType::ApiKey && !is_token(&request.token) {
        return Err(invalid(format!(
            "ClientRequestToken {:?} of secret {} is not 8 to 64 letters, digits or dashes; keyrotor uses it as the replacement API key's tag, so rotate with such a token (Secrets Manager's own are UUIDs)",
            request.token, secret.name
        )));
    }
    let name = secret.name.clone();
    let result = |status, detail: String| StepResult {
        step: request.step,
        secret: name.clone(),
        token: request.token.clone(),
        status,
        detail,
    };
    match secret.versions.get(&request.token) {
        // finishSecret still makes sure the previous credential is scheduled for retirement
        // (a run that stopped right after promoting did not get to it).
        Some(stages)
            if stages.iter().any(|s| s == "AWSCURRENT")
                && request.step != ProtocolStep::FinishSecret =>
        {
            return Ok(result(
                Status::NoOp,
                format!("version {} is already AWSCURRENT", request.token),
            ));
        }
        Some(stages)
            if !stages
                .iter()
                .any(|s| s == "AWSPENDING" || s == "AWSCURRENT") =>
        {
            return Err(invalid(format!(
                "version {} of secret {} is not staged AWSPENDING (stages: {stages:?}); it is not a rotation in progress",
                request.token, secret.name
            )));
        }
        None if !(caller_kind != Caller::SecretsManager
            && request.step == ProtocolStep::CreateSecret) =>
        {
            return Err(invalid(format!(
                "ClientRequestToken {} is not a version of secret {}",
                request.token, secret.name
            )));
        }
        _ => {}
    }
    // Creating, deleting and promoting credentials are changes: a fresh deployment
    // (mode = "plan") plans and reports only.
    if policy.mode != Mode::Enforce && request.step != ProtocolStep::TestSecret {
        return Err(StepError::Blocked(format!(
            "{} of secret {}: the policy's mode is \"plan\"; set mode = \"enforce\" to let the hook change credentials",
            request.step.as_str(),
            secret.name
        )));
    }
    let who = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let hook = Hook {
        ports,
        policy,
        now,
        wall,
        log: AuditLog::new(ports.audit, run_id.clone(), who.arn.clone()),
        account: who.account.clone(),
        region: region.to_owned(),
        request,
        secret,
        kind,
        effects: Default::default(),
        exemption_overridden: caller_kind == Caller::LocalOverridingExemption,
    };
    // Every step on an API key runs under the key's lease, like the API key rotation's
    // (schedule, CLI): while one of those is under way, this step answers "in progress"
    // and Secrets Manager retries it.
    let lease = match kind {
        SecretType::ApiKey => hook.api_key_lease(&who.account).await?,
        SecretType::Iam => None,
    };
    let detail = match lease {
        Some((lease, what)) => {
            super::with_lease(ports.state, &lease, &what, &run_id, wall, hook.step()).await
        }
        None => hook.step().await,
    };
    let detail = hook.log.finish(detail, wall.now()).await?;
    Ok(result(
        if detail.starts_with("no-op") {
            Status::NoOp
        } else {
            Status::Done
        },
        detail,
    ))
}

/// `keyrotor rotate secret`: the four steps in this process, with a new token, as Secrets
/// Manager would run them through the hook. One run per secret at a time (lease).
pub async fn rotate_locally(
    ports: &HookPorts<'_>,
    policy: &Policy,
    secret_id: &str,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<StepResult>, StepError> {
    rotate_here(
        ports,
        policy,
        secret_id,
        region,
        now,
        wall,
        None,
        Caller::Local,
    )
    .await
}

/// [`rotate_locally`] with the caller's `token`, for a caller that may run again after
/// stopping halfway (a response to a leaked key, retried): it derives the same token on
/// every retry, as Secrets Manager retries a rotation with the same token, so the hook
/// recognises the key the stopped run made (published, or removed as its own leftover)
/// instead of being blocked by it under the 2-key limit. Any other AWSPENDING version is
/// cleared by createSecret, never continued: a pending value someone else wrote (a key of
/// their choosing) is never published.
///
/// `override_exemption`: a person decided the user's exemption does not stop the
/// replacement ([`Caller::LocalOverridingExemption`]).
#[allow(clippy::too_many_arguments)]
pub async fn rotate_locally_with_token(
    ports: &HookPorts<'_>,
    policy: &Policy,
    secret_id: &str,
    token: &str,
    override_exemption: bool,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<StepResult>, StepError> {
    let caller = if override_exemption {
        Caller::LocalOverridingExemption
    } else {
        Caller::Local
    };
    rotate_here(
        ports,
        policy,
        secret_id,
        region,
        now,
        wall,
        Some(token),
        caller,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn rotate_here(
    ports: &HookPorts<'_>,
    policy: &Policy,
    secret_id: &str,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
    token: Option<&str>,
    caller: Caller,
) -> Result<Vec<StepResult>, StepError> {
    let secret = ports.secrets.describe(secret_id).await?.ok_or_else(|| {
        StepError::InvalidInput(format!("secret {secret_id:?} does not exist in {region}"))
    })?;
    let run_id = new_run_id(wall.now());
    let token = match token {
        Some(token) => token.to_owned(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    let work = async {
        let mut done = Vec::new();
        for step in ProtocolStep::ALL {
            let request = Request {
                step,
                secret_id: secret.arn.clone(),
                token: token.clone(),
            };
            done.push(run_step(ports, policy, &request, caller, region, now, wall).await?);
        }
        Ok(done)
    };
    super::with_lease(
        ports.state,
        &format!("secret#{}", secret.arn),
        &format!("secret {}", secret.name),
        &run_id,
        wall,
        work,
    )
    .await
}

#[cfg(test)]
mod tests;
