//! `keyrotor migrate`: moving a workload from an IAM user's keys to a role.

use super::args::MigrateCommand;
use super::{CliError, Context, Exit, OutputFormat, emit, output, to_json};
use crate::ports::SystemClock;
use crate::steps;

/// `keyrotor migrate plan|apply|status|rollback`; apply and rollback need mode = "enforce".
pub(super) async fn migrate(ctx: &Context, command: &MigrateCommand) -> Result<Exit, CliError> {
    let now = ctx.now();
    if matches!(
        command,
        MigrateCommand::Apply { .. } | MigrateCommand::Rollback { .. }
    ) {
        ctx.require_enforce("migrate apply and rollback change IAM, so they need mode = \"enforce\"; `keyrotor migrate plan USER` shows what would happen")?;
    }
    let policy = &ctx.policy;
    let output_format = ctx.output;
    let ports = &ctx.wiring.migration();
    let text = match command {
        MigrateCommand::Plan { user } => {
            let plan = steps::migration::plan_user(ports, policy, user, now).await?;
            match output_format {
                OutputFormat::Json => to_json(&plan)?,
                OutputFormat::Table => output::migration_plan_text(&plan),
            }
        }
        MigrateCommand::Apply {
            user,
            allow_external,
        } => {
            let plan = steps::migration::apply_with(
                ports,
                policy,
                user,
                now,
                &SystemClock::Real,
                *allow_external,
            )
            .await?;
            if let Some(why) = plan.role.as_ref().and_then(|r| r.external.as_ref()) {
                eprintln!(
                    "keyrotor: WARNING: --allow-external: the role for {user} trusts an identity outside what keyrotor trusts by default: {why}. Whoever controls it gets {user}'s permissions. This was recorded in the audit trail."
                );
            }
            match output_format {
                OutputFormat::Json => to_json(&plan)?,
                OutputFormat::Table => output::migration_plan_text(&plan),
            }
        }
        MigrateCommand::Status { user } => {
            let funnel = steps::migration::status(ports, policy, user.as_deref(), now).await?;
            match output_format {
                OutputFormat::Json => to_json(&funnel)?,
                OutputFormat::Table => output::funnel_table(&funnel),
            }
        }
        MigrateCommand::Rollback { user } => {
            let (record, note) =
                steps::migration::rollback_report(ports, policy, user, now, &SystemClock::Real)
                    .await?;
            if let Some(note) = note {
                eprintln!("keyrotor: {note}");
            }
            match output_format {
                OutputFormat::Json => to_json(&record)?,
                OutputFormat::Table => format!(
                    "Rolled back the migration of {user}: keys reactivated where keyrotor had deactivated them, guard removed; role {} kept.\n",
                    record.role_arn
                ),
            }
        }
    };
    emit(&text)?;
    Ok(Exit::Success)
}
