//! keyrotor's own tables: `init`, `audit list`, `audit verify`.

use chrono::Utc;

use super::{CliError, Context, Exit, OutputFormat, emit, output, parse_duration, to_json};
use crate::aws::dynamodb::DynamoTables;
use crate::ports::AuditQuery;
use crate::steps;

/// `keyrotor init`: creates the audit and state tables if they do not exist.
pub(super) async fn init(ctx: &Context) -> Result<Exit, CliError> {
    let tables = DynamoTables::new(ctx.aws().dynamodb());
    let done = steps::init(&tables, &ctx.policy).await?;
    emit(&match ctx.output {
        OutputFormat::Json => to_json(&output::init_json(&done))?,
        OutputFormat::Table => output::init_table(&done, &ctx.region),
    })?;
    Ok(Exit::Success)
}

/// `keyrotor audit list`: records, oldest first, filtered by resource, run and age.
pub(super) async fn list(
    ctx: &Context,
    resource: Option<String>,
    run: Option<String>,
    since: Option<&str>,
) -> Result<Exit, CliError> {
    let since = match since {
        None => None,
        Some(s) => {
            let d = parse_duration(s).ok_or_else(|| {
                CliError::Usage(format!(
                    "--since {s:?} is not a duration; use a number and a unit: 30m, 24h, 7d, 2w"
                ))
            })?;
            Some(Utc::now() - d)
        }
    };
    let records = steps::audit_list(
        ctx.audit(),
        &AuditQuery {
            resource,
            run,
            since,
        },
    )
    .await?;
    emit(&match ctx.output {
        OutputFormat::Json => to_json(&output::records_json(&records))?,
        OutputFormat::Table => output::records_table(&records),
    })?;
    Ok(Exit::Success)
}

/// `keyrotor audit verify`: walks every hash chain; [`Exit::Tampered`] when one is broken.
pub(super) async fn verify(ctx: &Context) -> Result<Exit, CliError> {
    let report = steps::audit_verify(ctx.audit()).await?;
    ctx.render(&report, |r| output::verify_text(r, &ctx.policy.audit.table))?;
    Ok(if report.ok() {
        Exit::Success
    } else {
        Exit::Tampered
    })
}
