//! The `keyrotor` command: parses the arguments ([`args`]), builds the [`Context`] every
//! command works in once (policy, clock, AWS, output format) and hands the command to its
//! module (`cmd_*`). Exit codes are [`Exit`], the README's table.

mod accounts;
mod args;
mod cmd_audit;
mod cmd_local;
mod cmd_migrate;
mod cmd_read;
mod cmd_rotate;
mod cmd_sweep;
mod exit;
mod output;
mod progress;
mod remote;
mod report_html;
mod wiring;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use clap::Parser;

use crate::aws::dynamodb::DynamoAuditStore;
use crate::aws::{Aws, Connection};
use crate::domain::policy::{Mode, Policy, PolicyError};
use crate::ports::PortError;
use crate::steps::StepError;

pub use args::OutputFormat;
use args::{AuditCommand, Cli, Command, PolicyCommand, ReactivateCommand, RotateCommand};
pub use exit::Exit;
use wiring::Scope;

/// An error that ends the command, with its exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Aws(#[from] PortError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    InProgress(String),
    #[error("blocked: {0}")]
    Blocked(String),
}

impl From<StepError> for CliError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::InvalidInput(m) => CliError::Usage(m),
            StepError::InProgress(m) => CliError::InProgress(m),
            StepError::Blocked(m) => CliError::Blocked(m),
            StepError::Port(e) => CliError::Aws(e),
        }
    }
}

impl CliError {
    fn exit_code(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Policy(_) => Exit::BadInput,
            CliError::Aws(_) => Exit::Aws,
            CliError::Io(_) | CliError::Blocked(_) => Exit::Failed,
            CliError::InProgress(_) => Exit::LeaseHeld,
        }
    }
}

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

fn parse_time(text: &str, source: &str) -> Result<DateTime<Utc>, CliError> {
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
struct Clock {
    fixed: Option<DateTime<Utc>>,
}

impl Clock {
    /// Reads `KEYROTOR_NOW`; a value that is not an RFC 3339 time is bad input.
    fn from_env() -> Result<Clock, CliError> {
        let fixed = match std::env::var("KEYROTOR_NOW") {
            Ok(v) if !v.trim().is_empty() => Some(parse_time(&v, "KEYROTOR_NOW")?),
            _ => None,
        };
        Ok(Clock { fixed })
    }

    /// Now, as far as the command is concerned.
    fn now(&self) -> DateTime<Utc> {
        self.fixed.unwrap_or_else(Utc::now)
    }

    /// `--at` when given, else [`Clock::now`].
    fn at(&self, at: Option<&str>) -> Result<DateTime<Utc>, CliError> {
        match at {
            Some(at) => parse_time(at, "--at"),
            None => Ok(self.now()),
        }
    }
}

/// The policy: `--config`, or `./keyrotor.toml` when present, or the built-in defaults.
fn load_policy(path: Option<&PathBuf>) -> Result<(Policy, String), CliError> {
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
struct Settings {
    policy: Policy,
    /// Where the policy came from, for messages.
    policy_source: String,
    output: OutputFormat,
    quiet: bool,
}

impl Settings {
    /// Renders `value` as `--output` asks: pretty JSON, or `table(value)`, and prints it.
    fn render<T: serde::Serialize>(
        &self,
        value: &T,
        table: impl FnOnce(&T) -> String,
    ) -> Result<(), CliError> {
        render(self.output, value, table)
    }
}

/// Renders `value` in `format` and prints it.
fn render<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    emit(&match format {
        OutputFormat::Json => to_json(value)?,
        OutputFormat::Table => table(value),
    })
}

/// Everything a command that talks to AWS works with, built once per process.
struct Context {
    settings: Settings,
    clock: Clock,
    aws: Aws,
    /// The region AWS calls go to (the caller's, from the profile or `--region`).
    region: String,
    audit: DynamoAuditStore,
}

impl std::ops::Deref for Context {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl Context {
    /// Sets up the clock, the AWS configuration and the audit table.
    async fn new(settings: Settings, connection: &Connection) -> Result<Context, CliError> {
        let clock = Clock::from_env()?;
        let aws = Aws::load(connection)
            .await
            .with_pacing(&settings.policy.pacing);
        let Some(region) = aws.region() else {
            return Err(CliError::Usage(
                "no AWS region configured; pass --region, set AWS_REGION, or set a region in your profile".into(),
            ));
        };
        let audit = DynamoAuditStore::new(aws.dynamodb(), settings.policy.audit.table.clone());
        Ok(Context {
            settings,
            clock,
            aws,
            region,
            audit,
        })
    }

    /// The caller's own account.
    fn home(&self) -> Scope<'_> {
        Scope::home(&self.aws, &self.audit)
    }

    /// Refuses a command that changes AWS unless the policy says `mode = "enforce"`;
    /// `why` says what it would change and what to run instead.
    fn require_enforce(&self, why: &str) -> Result<(), CliError> {
        if self.policy.mode == Mode::Enforce {
            return Ok(());
        }
        Err(CliError::Usage(format!(
            "{}: mode = \"plan\": {why}",
            self.policy_source
        )))
    }
}

/// Writes to stdout; a closed pipe (`keyrotor plan | head`) is not an error.
fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Io(format!("cannot write output: {e}"))),
    }
}

/// An informational line on stderr, unless `--quiet`.
fn note(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("{text}");
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))
}

/// The dispatcher: commands that need no AWS run at once; the others get a [`Context`].
async fn run(cli: Cli) -> Result<Exit, CliError> {
    let (policy, policy_source) = load_policy(cli.config.as_ref())?;
    let settings = Settings {
        policy,
        policy_source,
        output: cli.output,
        quiet: cli.quiet,
    };
    let aws = Connect {
        settings,
        connection: Connection {
            profile: cli.profile,
            region: cli.region,
            endpoint_url: cli.endpoint_url,
        },
        call_stats: cli.call_stats,
    };
    match cli.command {
        Command::Policy {
            command: PolicyCommand::Check,
        } => cmd_local::policy_check(&aws.settings),
        Command::Completions { shell } => cmd_local::completions(shell),
        Command::Schedule { cron } => cmd_local::schedule(&aws.settings, &cron),
        Command::Init => aws.run(async |ctx| cmd_audit::init(ctx).await).await,
        Command::Plan { kind, at, record } => {
            aws.run(async |ctx| cmd_read::plan(ctx, &kind, at.as_deref(), record).await)
                .await
        }
        Command::Report { html, recent } => {
            aws.run(async |ctx| cmd_read::report(ctx, html.as_deref(), recent).await)
                .await
        }
        Command::Certs {
            within,
            regions,
            fail_within,
        } => {
            aws.run(async |ctx| {
                cmd_read::certs(ctx, within.as_deref(), &regions, fail_within).await
            })
            .await
        }
        Command::Sweep { kind, emf, remote } => {
            aws.run(async |ctx| cmd_sweep::sweep(ctx, kind, emf, &remote).await)
                .await
        }
        Command::Rotate {
            command: RotateCommand::Secret { secret, via },
        } => {
            aws.run(async |ctx| cmd_rotate::secret(ctx, &secret, via).await)
                .await
        }
        Command::Rotate {
            command:
                RotateCommand::ApiKey {
                    key,
                    reason,
                    remote,
                },
        } => {
            aws.run(async |ctx| cmd_rotate::api_key(ctx, &key, reason, &remote).await)
                .await
        }
        Command::Reactivate {
            command: ReactivateCommand::IamKey { access_key_id },
        } => {
            aws.run(async |ctx| cmd_rotate::reactivate_iam_key(ctx, &access_key_id).await)
                .await
        }
        Command::Migrate { command } => {
            aws.run(async |ctx| cmd_migrate::migrate(ctx, &command).await)
                .await
        }
        Command::Audit {
            command:
                AuditCommand::List {
                    resource,
                    run,
                    since,
                },
        } => {
            aws.run(async |ctx| cmd_audit::list(ctx, resource, run, since.as_deref()).await)
                .await
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => aws.run(async |ctx| cmd_audit::verify(ctx).await).await,
    }
}

/// How to reach AWS, not yet acted on: only commands that need it connect.
struct Connect {
    settings: Settings,
    connection: Connection,
    call_stats: bool,
}

impl Connect {
    /// Builds the [`Context`] and runs `command` in it; with `--call-stats`, prints the AWS
    /// calls made, after a failure too (the calls made before it are worth knowing).
    async fn run<F>(self, command: F) -> Result<Exit, CliError>
    where
        F: AsyncFnOnce(&Context) -> Result<Exit, CliError>,
    {
        let ctx = Context::new(self.settings, &self.connection).await?;
        let result = command(&ctx).await;
        if self.call_stats {
            let counts = ctx.aws.counter.snapshot();
            let total: u64 = counts.values().sum();
            eprintln!(
                "{}",
                serde_json::json!({ "aws_calls": counts, "total": total })
            );
        }
        result
    }
}

/// Logs to stderr (`KEYROTOR_LOG`, default warnings); progress bars when stderr is a
/// terminal and `--quiet` is not given.
fn init_tracing(quiet: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYROTOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error,keyrotor=warn"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
        progress::Bars::new().with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(crate::progress::TARGET, tracing::Level::DEBUG),
        )
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(bars)
        .try_init();
}

/// Entry point of the `keyrotor` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.quiet);
    {
        use std::io::IsTerminal;
        output::enable_colour(
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").as_deref() != Ok("dumb"),
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyrotor: error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => {
            // Errors quote account data (names, tags): no control characters reach the terminal.
            eprintln!("keyrotor: error: {}", output::clean_lines(&e.to_string()));
            e.exit_code().into()
        }
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
