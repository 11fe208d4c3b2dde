//! Commands that need no AWS: `policy check`, `completions`, `schedule`.

use super::args::Cli;
use super::{CliError, Clock, Exit, OutputFormat, Settings, emit, to_json};
use crate::domain::schedule::EventSchedule;

/// `keyrotor policy check`: the effective policy, with where it came from.
pub(super) fn policy_check(settings: &Settings) -> Result<Exit, CliError> {
    let text = match settings.output {
        OutputFormat::Json => to_json(&settings.policy)?,
        OutputFormat::Table => format!(
            "{}: valid\n{}",
            settings.policy_source,
            toml::to_string_pretty(&settings.policy).map_err(|e| CliError::Io(e.to_string()))?
        ),
    };
    emit(&text)?;
    Ok(Exit::Success)
}

/// `keyrotor completions SHELL`: the completion script of the whole command line.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, CliError> {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "keyrotor", &mut out);
    emit(&String::from_utf8_lossy(&out))?;
    Ok(Exit::Success)
}

/// `keyrotor schedule --cron EXPR`: the expression checked, and its next five runs.
pub(super) fn schedule(settings: &Settings, cron: &str) -> Result<Exit, CliError> {
    let schedule = EventSchedule::parse(cron).map_err(|e| {
        CliError::Usage(format!(
            "--cron: {e}; see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html"
        ))
    })?;
    let now = Clock::from_env()?.now();
    let next = schedule.upcoming(now, 5);
    if next.is_empty() {
        return Err(CliError::Usage(format!(
            "--cron: {} never fires after {}",
            schedule.expression,
            now.format("%Y-%m-%d %H:%M UTC")
        )));
    }
    emit(&match settings.output {
        OutputFormat::Json => to_json(&serde_json::json!({
            "expression": schedule.expression,
            "next": next,
        }))?,
        OutputFormat::Table => format!(
            "{} is valid. Next runs (UTC):\n{}",
            schedule.expression,
            next.iter()
                .map(|t| format!("  {}\n", t.format("%Y-%m-%d %H:%M %a")))
                .collect::<String>()
        ),
    })?;
    Ok(Exit::Success)
}
