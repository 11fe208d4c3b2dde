//! `keyrotor-secret-rotation`: the Secrets Manager rotation hook, one protocol step per
//! invocation, over the ports of [`Wiring::secret_rotation`].

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

use super::{Context, diagnostic};
use crate::ports::{Clock, SystemClock};
use crate::steps::secret_rotation::{self, Caller, Request};
use crate::wiring::Wiring;

/// The Secrets Manager rotation hook, with the function's own wiring built for this call
/// (tests and one-off callers; [`super::serve`] reuses the container's).
pub async fn secret_rotation(
    ctx: &Context,
    event: LambdaEvent<Value>,
) -> Result<Value, Diagnostic> {
    let request_id = event.context.request_id.clone();
    run(ctx, &ctx.wiring(), event.payload, &request_id).await
}

/// One protocol step. The span names the secret (its id or ARN, never its value), the
/// step and the version token, which are identifiers.
#[tracing::instrument(skip_all, fields(job = "secret-rotation", request_id = %request_id, secret, step))]
pub(super) async fn run(
    ctx: &Context,
    wiring: &Wiring,
    payload: Value,
    request_id: &str,
) -> Result<Value, Diagnostic> {
    let request = Request::from_event(payload).map_err(|e| diagnostic(&e))?;
    let span = tracing::Span::current();
    span.record("secret", request.secret_id.as_str());
    span.record("step", request.step.as_str());
    let clock = SystemClock::Real;
    let done = secret_rotation::run_step(
        &wiring.secret_rotation(),
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
        status = %done.status,
        "rotation step finished"
    );
    serde_json::to_value(&done).map_err(|e| Diagnostic {
        error_type: "KeyRotor.Failed".into(),
        error_message: e.to_string(),
    })
}
