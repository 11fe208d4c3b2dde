//! The read-only commands: `plan`, `report`, `certs`.

use std::path::Path;

use chrono::Duration;

use super::args::{KindArg, kinds};
use super::wiring::{Readers, Scope};
use super::{
    CliError, Context, Exit, OutputFormat, accounts, emit, note, output, parse_duration,
    report_html,
};
use crate::aws::acm::AcmInventory;
use crate::aws::dynamodb::DynamoStateStore;
use crate::aws::sts::StsIdentity;
use crate::ports::SystemClock;
use crate::steps;

/// `keyrotor plan`: what keyrotor would do now (or `--at`), in every account of
/// `[accounts]`; `record` writes each decision as a dry-run record.
pub(super) async fn plan(
    ctx: &Context,
    kind: &[KindArg],
    at: Option<&str>,
    record: bool,
) -> Result<Exit, CliError> {
    let now = ctx.clock.at(at)?;
    let kinds = kinds(kind);
    let plan_in = async |scope: Scope<'_>| {
        let outcome = accounts::plan(scope, &ctx.policy, &kinds, now, &ctx.region, record).await?;
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
        let runs = accounts::fan_out(ctx.home(), &ctx.policy, plan_in).await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let outcome = plan_in(ctx.home()).await?;
    emit(match ctx.output {
        OutputFormat::Json => &outcome.json,
        OutputFormat::Table => &outcome.table,
    })?;
    Ok(Exit::Success)
}

/// `keyrotor report`: the account's credential posture, optionally also as an HTML page.
pub(super) async fn report(
    ctx: &Context,
    html: Option<&Path>,
    recent: usize,
) -> Result<Exit, CliError> {
    let now = ctx.clock.now();
    let readers = Readers::new(&ctx.aws);
    let discovery = readers.ports();
    let identity = StsIdentity::new(ctx.aws.sts());
    let state = DynamoStateStore::new(ctx.aws.dynamodb(), ctx.policy.audit.state_table.clone());
    let posture = steps::report::posture(
        &identity,
        &discovery,
        &state,
        &ctx.audit,
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
    let now = ctx.clock.now();
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
    let certs = AcmInventory::new(ctx.aws.clone());
    let identity = StsIdentity::new(ctx.aws.sts());
    let report = steps::certs::report(
        &identity,
        &certs,
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
