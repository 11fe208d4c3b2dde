//! The sweep jobs (IAM keys, migrations, certificates) and the API key job: each runs its
//! step over the ports of [`Wiring`], in the function's account or in every account of
//! `[accounts]`, and returns its typed output with what it did counted for metrics.

use chrono::{DateTime, Utc};

use super::output::{AcrossAccounts, ApiKeyOutput, Returned};
use super::{Context, Counted, input, to_value};
use crate::domain::api_rotation::Trigger;
use crate::domain::model::AccountId;
use crate::metrics::Tally;
use crate::ports::SystemClock;
use crate::steps::outcome::JobOutcome;
use crate::steps::status::Status;
use crate::steps::{self, StepError};
use crate::wiring::Wiring;

/// `keyrotor-iam-keys`.
pub(super) async fn iam_keys(ctx: &Context, wiring: &Wiring, now: DateTime<Utc>) -> Counted {
    sweep(ctx, wiring, async |w: &Wiring| {
        steps::iam_keys::sweep(&w.iam_keys(), &ctx.policy, now, &SystemClock::Real).await
    })
    .await
}

/// `keyrotor-migration`.
pub(super) async fn migration(ctx: &Context, wiring: &Wiring, now: DateTime<Utc>) -> Counted {
    sweep(ctx, wiring, async |w: &Wiring| {
        steps::migration::sweep(&w.migration(), &ctx.policy, now, &SystemClock::Real).await
    })
    .await
}

/// `keyrotor-certs`.
pub(super) async fn certs(ctx: &Context, wiring: &Wiring, now: DateTime<Utc>) -> Counted {
    sweep(ctx, wiring, async |w: &Wiring| {
        let ports = w.cert_sweep();
        let done =
            steps::certs::sweep(&ports, &ctx.policy, &ctx.region, now, &SystemClock::Real).await;
        Ok(done?)
    })
    .await
}

/// A sweep in the function's own account, or in every account of `[accounts]`: per
/// account its result or its error, the totals, and the metrics of all of them. A failing
/// account does not stop the others.
async fn sweep<T: Returned>(
    ctx: &Context,
    wiring: &Wiring,
    run: impl AsyncFn(&Wiring) -> Result<T, StepError>,
) -> Counted {
    // Each run's id, in the invocation's span (one account) or in a log line inside the
    // account's span, so the logs lead to the audit records.
    let run = async |w: &Wiring| {
        let done = run(w).await?;
        let run_id = done.run_id().unwrap_or_default();
        tracing::Span::current().record("run_id", run_id);
        tracing::info!(run_id, failed = done.failed(), "swept");
        Ok::<T, StepError>(done)
    };
    if !ctx.policy.accounts.is_multi_account() {
        let done = run(wiring).await?;
        let tally = done.tally();
        return Ok((to_value(&done.returned())?, Some(tally)));
    }
    let runs = wiring.in_each_account(run).await?;
    let mut tally: Option<Tally> = None;
    for t in runs
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .map(JobOutcome::tally)
    {
        match &mut tally {
            Some(all) => all.merge(t),
            None => tally = Some(t),
        }
    }
    Ok((to_value(&AcrossAccounts::of(runs))?, tally))
}

/// `keyrotor-api-key`: advances one key's rotation, in the account the input names (only
/// one the policy covers, checked before any role is assumed) or the function's own.
#[tracing::instrument(skip_all, fields(key = %key, account = account.map(|a| a.as_str())))]
pub(super) async fn api_key(
    ctx: &Context,
    wiring: &Wiring,
    key: &str,
    account: Option<&AccountId>,
    now: DateTime<Utc>,
) -> Counted {
    let member = match account {
        Some(account) => {
            let caller = wiring.home_identity().caller().await?;
            if &caller.account != account {
                let targets = steps::accounts::targets(
                    &ctx.policy.accounts,
                    &caller.account,
                    wiring.listing(),
                )
                .await?;
                input::check_account(account, &targets)?;
            }
            crate::aws::organizations::enter(
                wiring.home_aws(),
                &ctx.policy.accounts,
                caller.partition(),
                account,
                &caller.account == account,
            )
            .await?
        }
        None => None,
    };
    match member {
        Some(aws) => rotate(ctx, &wiring.member(&aws), key, now).await,
        None => rotate(ctx, wiring, key, now).await,
    }
}

async fn rotate(ctx: &Context, wiring: &Wiring, key: &str, now: DateTime<Utc>) -> Counted {
    let policy = &ctx.policy;
    if policy.mode != crate::domain::policy::Mode::Enforce {
        return Err(StepError::Blocked(
            "the policy's mode is \"plan\": API keys are not rotated; set mode = \"enforce\""
                .into(),
        ));
    }
    let done = steps::api_keys::rotate(
        &wiring.api_keys(),
        policy,
        &ctx.region,
        key,
        Trigger::Age,
        now,
        &SystemClock::Real,
    )
    .await?;
    // A failed or conflicting step fails the invocation, so the state machine retries
    // or catches it; a blocked one is reported in the output.
    match done.status {
        Status::Failed => {
            return Err(StepError::Port(done.cause.clone().unwrap_or_else(|| {
                crate::ports::PortError::Other {
                    operation: format!("rotation of {key}"),
                    message: done.error.clone().unwrap_or_default(),
                }
            })));
        }
        Status::Conflict => {
            return Err(StepError::InProgress(done.error.unwrap_or_default()));
        }
        _ => {}
    }
    let tally = done.tally();
    Ok((to_value(&ApiKeyOutput::of(done, now))?, Some(tally)))
}
