//! What every command works with, worked out once: the policy and output settings
//! ([`Settings`], no AWS), the time commands act at ([`Clock`]), and for the commands that
//! talk to AWS the [`Context`]: the configuration, the region and the [`Wiring`] every
//! step's ports come from.

use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};

use super::print::{emit, render};
use super::{CliError, Exit, OutputFormat};
use crate::aws::dynamodb::DynamoAuditStore;
use crate::aws::{Aws, Connection};
use crate::domain::policy::{Mode, Policy};
use crate::wiring::Wiring;

/// Parses a duration such as `30m`, `24h`, `7d` or `2w`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    }
}

pub(super) fn parse_time(text: &str, source: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CliError::Usage(format!(
                "{source} = {text:?} is not an RFC 3339 time ({e}); use e.g. 2026-11-25T00:00:00Z"
            ))
        })
}

/// The time commands act at, worked out in one place: `KEYROTOR_NOW` (RFC 3339) when set
/// and not blank, else the system clock; a command's `--at` goes over both.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    pub(super) fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// Reads `KEYROTOR_NOW`; a value that is not an RFC 3339 time is bad input.
    pub(super) fn from_env() -> Result<Clock, CliError> {
        let fixed = match std::env::var("KEYROTOR_NOW") {
            Ok(v) if !v.trim().is_empty() => Some(parse_time(&v, "KEYROTOR_NOW")?),
            _ => None,
        };
        Ok(Clock { fixed })
    }

    /// Now, as far as the command is concerned.
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }

    /// `--at` when given, else [`Clock::now`].
    pub(super) fn at(&self, at: Option<&str>) -> Result<DateTime<Utc>, CliError> {
        match at {
            Some(at) => parse_time(at, "--at"),
            None => Ok(self.now()),
        }
    }
}

/// The policy: `--config`, or `./keyrotor.toml` when present, or the built-in defaults.
pub(super) fn load_policy(path: Option<&PathBuf>) -> Result<(Policy, String), CliError> {
    let path = match path {
        Some(p) => p.clone(),
        None => {
            let default = PathBuf::from("keyrotor.toml");
            if !default.exists() {
                return Ok((Policy::default(), "built-in defaults".into()));
            }
            default
        }
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::Usage(format!(
            "cannot read policy file {shown}: {e}; pass an existing file with --config (see examples/keyrotor.toml)"
        ))
    })?;
    let policy = Policy::from_toml(&text, &shown)?;
    Ok((policy, shown))
}

/// What the command line says about every command, before any AWS set-up.
pub(super) struct Settings {
    pub(super) policy: Policy,
    /// Where the policy came from, for messages.
    pub(super) policy_source: String,
    pub(super) output: OutputFormat,
    pub(super) quiet: bool,
}

impl Settings {
    /// Renders `value` as `--output` asks: pretty JSON, or `table(value)`, and prints it.
    pub(super) fn render<T: serde::Serialize>(
        &self,
        value: &T,
        table: impl FnOnce(&T) -> String,
    ) -> Result<(), CliError> {
        render(self.output, value, table)
    }

    /// Prints what a command made, as `--output` asks, from its two renderings.
    pub(super) fn print(
        &self,
        json: impl FnOnce() -> Result<String, CliError>,
        table: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        emit(&match self.output {
            OutputFormat::Json => json()?,
            OutputFormat::Table => table(),
        })
    }
}

/// Everything a command that talks to AWS works with, built once per process.
pub(super) struct Context {
    settings: Settings,
    clock: Clock,
    /// The region AWS calls go to (the caller's, from the profile or `--region`).
    pub(super) region: String,
    /// The adapters of the caller's account, and every job's ports.
    pub(super) wiring: Wiring,
}

impl std::ops::Deref for Context {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Context {
    /// Sets up the clock, the AWS configuration and the wiring.
    pub(super) async fn new(
        settings: Settings,
        connection: &Connection,
    ) -> Result<Context, CliError> {
        let clock = Clock::from_env()?;
        let aws = Aws::load(connection)
            .await
            .with_pacing(&settings.policy.pacing);
        let Some(region) = aws.region() else {
            return Err(CliError::Usage(
                "no AWS region configured; pass --region, set AWS_REGION, or set a region in your profile".into(),
            ));
        };
        Ok(Context {
            wiring: Wiring::new(&aws, &settings.policy),
            settings,
            clock,
            region,
        })
    }

    /// The policy time a command acts at: `--at` when given, else `KEYROTOR_NOW`, else
    /// the wall clock. Every command asks here, so a forecast moves them all.
    pub(super) fn policy_time(&self, at: Option<&str>) -> Result<DateTime<Utc>, CliError> {
        self.clock.at(at)
    }

    /// [`Context::policy_time`] of a command without `--at`.
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The caller's AWS configuration.
    pub(super) fn aws(&self) -> &Aws {
        self.wiring.home_aws()
    }

    /// keyrotor's audit table.
    pub(super) fn audit(&self) -> &DynamoAuditStore {
        self.wiring.audit()
    }

    /// Refuses a command that changes AWS unless the policy says `mode = "enforce"`;
    /// `why` says what it would change and what to run instead.
    pub(super) fn require_enforce(&self, why: &str) -> Result<(), CliError> {
        if self.policy.mode == Mode::Enforce {
            return Ok(());
        }
        Err(CliError::Usage(format!(
            "{}: mode = \"plan\": {why}",
            self.policy_source
        )))
    }
}

/// How to reach AWS, not yet acted on: only commands that need it connect.
pub(super) struct Connect {
    pub(super) settings: Settings,
    pub(super) connection: Connection,
    pub(super) call_stats: bool,
}

impl Connect {
    /// Builds the [`Context`] and runs `command` in it; with `--call-stats`, prints the AWS
    /// calls made, after a failure too (the calls made before it are worth knowing).
    pub(super) async fn run<F>(self, command: F) -> Result<Exit, CliError>
    where
        F: AsyncFnOnce(&Context) -> Result<Exit, CliError>,
    {
        let ctx = Context::new(self.settings, &self.connection).await?;
        let result = command(&ctx).await;
        if self.call_stats {
            let counts = ctx.aws().counter.snapshot();
            let total: u64 = counts.values().sum();
            eprintln!(
                "{}",
                serde_json::json!({ "aws_calls": counts, "total": total })
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30m"), Some(Duration::minutes(30)));
        assert_eq!(parse_duration("7d"), Some(Duration::days(7)));
        assert_eq!(parse_duration("2w"), Some(Duration::weeks(2)));
        assert_eq!(parse_duration("7"), None);
        assert_eq!(parse_duration("d"), None);
        assert_eq!(parse_duration("3y"), None);
        assert_eq!(parse_duration("99999999999999999999d"), None);
    }

    #[test]
    fn bad_time_names_its_source_and_the_fix() {
        let err = parse_time("tomorrow", "KEYROTOR_NOW")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("KEYROTOR_NOW") && err.contains("2026-11-25T00:00:00Z"),
            "{err}"
        );
    }

    #[test]
    fn at_goes_over_the_fixed_clock() {
        let fixed = parse_time("2026-01-01T00:00:00Z", "test").unwrap();
        let clock = Clock { fixed: Some(fixed) };
        assert_eq!(clock.now(), fixed);
        assert_eq!(clock.at(None).unwrap(), fixed);
        let at = clock.at(Some("2026-02-01T00:00:00Z")).unwrap();
        assert_eq!(at, parse_time("2026-02-01T00:00:00Z", "test").unwrap());
        assert!(
            clock
                .at(Some("soon"))
                .unwrap_err()
                .to_string()
                .contains("--at")
        );
    }
}
