//! The read-only commands: `plan`, `report`, `certs`.

use std::path::Path;

use chrono::Duration;

use super::accounts::{self, AccountOutput};
use super::args::{KindArg, kinds};
use super::{CliError, Context, Exit, note, output, parse_duration, report_html};
use crate::ports::SystemClock;
use crate::steps;
use crate::wiring::Wiring;

/// `keyrotor plan`: what keyrotor would do now (or `--at`), in every account of
/// `[accounts]`; `record` writes each decision as a dry-run record.
pub(super) async fn plan(
    ctx: &Context,
    kind: &[KindArg],
    at: Option<&str>,
    record: bool,
) -> Result<Exit, CliError> {
    let now = ctx.policy_time(at)?;
    let kinds = kinds(kind);
    let plan_in = async |wiring: &Wiring| {
        let outcome = accounts::plan(wiring, &ctx.policy, &kinds, now, &ctx.region, record).await?;
        if let Some(run) = &outcome.run_id {
            note(
                ctx.quiet,
                &format!(
                    "recorded {} decision(s) to audit table {} as run {run} (dry run)",
                    outcome.recorded, ctx.policy.audit.table
                ),
            );
        }
        Ok(outcome)
    };
    if ctx.policy.accounts.is_multi_account() {
        let runs = ctx.wiring.in_each_account(plan_in).await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let outcome = plan_in(&ctx.wiring).await?;
    ctx.print(|| outcome.json(), || outcome.table())?;
    Ok(Exit::Success)
}

/// `keyrotor report`: the account's credential posture, optionally also as an HTML page.
pub(super) async fn report(
    ctx: &Context,
    html: Option<&Path>,
    recent: usize,
) -> Result<Exit, CliError> {
    let now = ctx.now();
    let wiring = &ctx.wiring;
    let posture = steps::report::posture(
        wiring.identity(),
        &wiring.discovery(),
        wiring.state(),
        wiring.audit(),
        &ctx.policy,
        &steps::report::ReportRequest {
            now,
            region: &ctx.region,
            recent,
        },
        &SystemClock::Real,
    )
    .await?;
    if let Some(path) = html {
        std::fs::write(path, report_html::render(&posture))
            .map_err(|e| CliError::Io(format!("--html {}: cannot write: {e}", path.display())))?;
    }
    ctx.render(&posture, output::posture_table)?;
    if let Some(path) = html {
        note(
            ctx.quiet,
            &format!("keyrotor: report written to {}", path.display()),
        );
    }
    Ok(Exit::Success)
}

/// `keyrotor certs`: certificates by urgency; [`Exit::CertExpiring`] when `fail_within`
/// is given and a certificate expires within that many days.
pub(super) async fn certs(
    ctx: &Context,
    within: Option<&str>,
    regions: &[String],
    fail_within: Option<i64>,
) -> Result<Exit, CliError> {
    let now = ctx.now();
    let within_days = match within {
        None => i64::from(ctx.policy.certs.ladder_days.first().copied().unwrap_or(45)),
        Some(w) => parse_duration(w)
            .filter(|d| *d >= Duration::zero())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "--within {w:?} is not a duration; use e.g. 45d, 2w"
                ))
            })?
            .num_days(),
    };
    let report = steps::certs::report(
        ctx.wiring.identity(),
        ctx.wiring.certs(),
        &ctx.policy,
        regions,
        &ctx.region,
        now,
        within_days,
    )
    .await?;
    ctx.render(&report, |r| {
        output::certs_table(r, &format!(" expiring within {within_days} days"))
    })?;
    let failing = fail_within.is_some_and(|limit| {
        report
            .certificates
            .iter()
            .any(|c| c.days_left.is_some_and(|d| d <= limit))
    });
    Ok(if failing {
        Exit::CertExpiring
    } else {
        Exit::Success
    })
}
