//! The commands that act on one credential now: `rotate secret`, `rotate api-key`,
//! `reactivate iam-key`.

use super::args::{RemoteArgs, RotateReason, Runner, Via};
use super::{CliError, Context, Exit, output, remote};
use crate::aws::sns::NoNotifier;
use crate::domain::api_rotation::Trigger;
use crate::ports::SystemClock;
use crate::steps;
use crate::steps::status::Status;

/// `keyrotor rotate secret`: the four steps of the Secrets Manager protocol here, or a
/// RotateSecret call that makes Secrets Manager run the deployed hook.
pub(super) async fn secret(ctx: &Context, secret: &str, via: Via) -> Result<Exit, CliError> {
    ctx.require_enforce("rotating a secret creates credentials, so it needs mode = \"enforce\"")?;
    let now = ctx.now();
    if via == Via::SecretsManager {
        use crate::ports::SecretVersions;
        let version = ctx.wiring.secrets().rotate_now(secret).await?;
        ctx.render(
            &serde_json::json!({"secret": secret, "version": version, "via": "secrets-manager"}),
            |_| format!(
                "Secrets Manager started rotating {secret} (version {version}) through its rotation function; follow it with `keyrotor audit list --since 1h`\n"
            ),
        )?;
        return Ok(Exit::Success);
    }
    let done = steps::secret_rotation::rotate_locally(
        &ctx.wiring.secret_rotation(),
        &ctx.policy,
        secret,
        &ctx.region,
        now,
        &SystemClock::Real,
    )
    .await?;
    ctx.render(&done, |d| output::secret_steps_table(d))?;
    Ok(Exit::Success)
}

/// `keyrotor rotate api-key`: here (continuing a rotation in progress), or through the
/// deployed rotation machine.
pub(super) async fn api_key(
    ctx: &Context,
    key: &str,
    reason: RotateReason,
    remote: &RemoteArgs,
) -> Result<Exit, CliError> {
    if remote.via == Runner::StepFunctions {
        return api_key_remote(ctx, key, reason, remote).await;
    }
    ctx.require_enforce("rotating creates and retires keys, so it needs mode = \"enforce\"; see what would happen with `keyrotor plan --kind api-keys`")?;
    let now = ctx.now();
    let trigger = match reason {
        RotateReason::OnDemand => Trigger::OnDemand,
        RotateReason::Compromised => Trigger::Compromised,
    };
    let done = steps::api_keys::rotate(
        &ctx.wiring.api_keys(),
        &ctx.policy,
        &ctx.region,
        key,
        trigger,
        now,
        &SystemClock::Real,
    )
    .await?;
    ctx.render(&done, output::rotation_text)?;
    if done.status != Status::Done {
        eprintln!(
            "keyrotor: error: the rotation stopped ({}); run the command again to continue it",
            done.error.as_deref().unwrap_or(done.status.as_str())
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Success)
}

/// `rotate api-key --via step-functions`: the rotation machine works in the account its
/// input names, the caller's.
async fn api_key_remote(
    ctx: &Context,
    key: &str,
    reason: RotateReason,
    remote: &RemoteArgs,
) -> Result<Exit, CliError> {
    if reason == RotateReason::Compromised {
        return Err(CliError::Usage(
            "--reason compromised runs in this process only (the deployed rotation keeps its grace period); drop --via step-functions".into(),
        ));
    }
    let now = ctx.now();
    let caller = ctx.wiring.identity().caller().await?;
    let input = serde_json::json!({
        "key": key,
        "account": caller.account.as_str(),
        "at": now.to_rfc3339(),
    });
    let name = format!("api-key-{key}-{}", now.format("%Y%m%d"));
    remote::run(ctx, remote, &name, &input).await
}

/// `keyrotor reactivate iam-key`: undoes a keyrotor deactivation (audited).
pub(super) async fn reactivate_iam_key(
    ctx: &Context,
    access_key_id: &str,
) -> Result<Exit, CliError> {
    let now = ctx.now();
    // A person asked for it and reads the result: nobody else is notified.
    let mut ports = ctx.wiring.iam_keys();
    ports.notifier = &NoNotifier;
    let done =
        steps::iam_keys::reactivate(&ports, &ctx.policy, access_key_id, now, &SystemClock::Real)
            .await?;
    ctx.render(&done, output::reactivated_text)?;
    Ok(Exit::Success)
}
