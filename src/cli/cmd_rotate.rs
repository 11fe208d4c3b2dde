//! The commands that act on one credential now: `rotate secret`, `rotate api-key`,
//! `reactivate iam-key`.

use super::args::{RemoteArgs, RotateReason, Runner, Via};
use super::wiring::with_api_key_ports;
use super::{CliError, Context, Exit, output, remote};
use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::dynamodb::DynamoStateStore;
use crate::aws::iam::IamClient;
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sns::NoNotifier;
use crate::aws::sts::StsIdentity;
use crate::domain::api_rotation::Trigger;
use crate::ports::SystemClock;
use crate::steps;

/// `keyrotor rotate secret`: the four steps of the Secrets Manager protocol here, or a
/// RotateSecret call that makes Secrets Manager run the deployed hook.
pub(super) async fn secret(ctx: &Context, secret: &str, via: Via) -> Result<Exit, CliError> {
    ctx.require_enforce("rotating a secret creates credentials, so it needs mode = \"enforce\"")?;
    let now = ctx.clock.now();
    let aws = &ctx.aws;
    let secrets = SecretsManagerInventory::of(aws);
    if via == Via::SecretsManager {
        use crate::ports::SecretVersions;
        let version = secrets.rotate_now(secret).await?;
        ctx.render(
            &serde_json::json!({"secret": secret, "version": version, "via": "secrets-manager"}),
            |_| format!(
                "Secrets Manager started rotating {secret} (version {version}) through its rotation function; follow it with `keyrotor audit list --since 1h`\n"
            ),
        )?;
        return Ok(Exit::Success);
    }
    let iam = IamClient::of(aws);
    let gateway = ApiGatewayClient::of(aws);
    let identity = StsIdentity::new(aws.sts());
    let tester = crate::aws::sts::StsKeyTester::new(aws.config.clone());
    let state = DynamoStateStore::new(aws.dynamodb(), ctx.policy.audit.state_table.clone());
    let ports = steps::secret_rotation::HookPorts {
        identity: &identity,
        secrets: &secrets,
        iam: &iam,
        iam_admin: &iam,
        tester: &tester,
        api_keys: &gateway,
        api_admin: &gateway,
        state: &state,
        audit: &ctx.audit,
        notifier: &*crate::aws::sns::notifier_for(aws, &ctx.policy.notifications),
    };
    let done = steps::secret_rotation::rotate_locally(
        &ports,
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
    let now = ctx.clock.now();
    let trigger = match reason {
        RotateReason::OnDemand => Trigger::OnDemand,
        RotateReason::Compromised => Trigger::Compromised,
    };
    with_api_key_ports(ctx.home(), &ctx.policy, async |ports| {
        let done = steps::api_keys::rotate(
            ports,
            &ctx.policy,
            &ctx.region,
            key,
            trigger,
            now,
            &SystemClock::Real,
        )
        .await?;
        ctx.render(&done, output::rotation_text)?;
        if done.status != "done" {
            eprintln!(
                "keyrotor: error: the rotation stopped ({}); run the command again to continue it",
                done.error.as_deref().unwrap_or(done.status)
            );
            return Ok(Exit::Failed);
        }
        Ok(Exit::Success)
    })
    .await
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
    let now = ctx.clock.now();
    let caller = crate::ports::Identity::caller(&StsIdentity::new(ctx.aws.sts())).await?;
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
    let now = ctx.clock.now();
    let aws = &ctx.aws;
    let iam = IamClient::of(aws);
    let identity = StsIdentity::new(aws.sts());
    let state = DynamoStateStore::new(aws.dynamodb(), ctx.policy.audit.state_table.clone());
    let secrets = SecretsManagerInventory::of(aws);
    let ports = steps::iam_keys::IamKeyPorts {
        identity: &identity,
        iam: &iam,
        secrets: &secrets,
        admin: &iam,
        state: &state,
        notifier: &NoNotifier,
        audit: &ctx.audit,
    };
    let done =
        steps::iam_keys::reactivate(&ports, &ctx.policy, access_key_id, now, &SystemClock::Real)
            .await?;
    ctx.render(&done, output::reactivated_text)?;
    Ok(Exit::Success)
}
