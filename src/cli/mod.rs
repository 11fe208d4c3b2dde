//! The `keyrotor` command: argument parsing, wiring of adapters to steps, exit codes.
//!
//! Exit codes (stable, documented in the README):
//! 0 success; 1 `audit verify` found tampering; 2 bad input (arguments, policy file,
//! `KEYROTOR_NOW`); 3 AWS refused or could not be reached (credentials, access, network,
//! missing table); 4 any other failure (including failed notifications); 5 `certs
//! --fail-within` found a certificate expiring within the limit.

mod accounts;
mod output;
mod progress;
mod report_html;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::aws::acm::AcmInventory;
use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::dynamodb::{DynamoAuditStore, DynamoStateStore, DynamoTables};
use crate::aws::iam::IamClient;
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sns::NoNotifier;
use crate::aws::sts::StsIdentity;
use crate::aws::{Aws, Connection};
use crate::domain::api_rotation::Trigger;
use crate::domain::model::Kind;
use crate::domain::policy::{Policy, PolicyError};
use crate::ports::{AuditQuery, PortError, SystemClock};
use crate::steps::{self, StepError, discover::DiscoveryPorts};

/// Output format of every command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "keyrotor",
    version,
    about = "Automated key and credential rotation for AWS",
    long_about = "keyrotor plans and carries out the rotation of API Gateway API keys, the retirement of stale IAM access keys, the migration of IAM users to temporary credentials and the follow-up of expiring ACM certificates, recording every decision in a tamper-evident audit table.\n\nCredentials, profile and region resolve like the AWS CLI. KEYROTOR_NOW (RFC 3339) overrides the clock for forecasts."
)]
struct Cli {
    /// Policy file [default: ./keyrotor.toml if present, else built-in defaults]
    #[arg(long, global = true, env = "KEYROTOR_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// AWS profile (as in ~/.aws/config)
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    /// AWS region
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// Send every AWS call to this endpoint (e.g. a local emulator)
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Print the number of AWS calls per operation to stderr when done
    #[arg(long, global = true)]
    call_stats: bool,
    /// No progress bars and no informational messages on stderr (errors are still printed)
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    ApiKeys,
    IamKeys,
    Migration,
    Certs,
    All,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what keyrotor would do now, and why (read-only)
    Plan {
        /// Kinds of credential to plan (repeatable)
        #[arg(long, value_enum, default_value = "all")]
        kind: Vec<KindArg>,
        /// Plan as of this time (RFC 3339) instead of now
        #[arg(long, value_name = "RFC3339")]
        at: Option<String>,
        /// Write each decision to the audit table as a dry-run record
        #[arg(long)]
        record: bool,
    },
    /// Report certificates by urgency: days left, ladder step, why ACM will not renew, what to do (read-only)
    Certs {
        /// Only certificates expiring within this duration [default: the farthest ladder step]
        #[arg(long, value_name = "DURATION")]
        within: Option<String>,
        /// Regions to check, comma-separated [default: [certs] regions, else --region]
        #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
        regions: Vec<String>,
        /// Exit 5 when a certificate expires within this many days (or has expired), for CI
        #[arg(long, value_name = "DAYS")]
        fail_within: Option<i64>,
    },
    /// The account's credential posture: key ages against the 90-day line, lifecycle
    /// states, API key rotations, certificate expiry, the migration funnel, recent audited
    /// actions, and a compliance summary (CIS 1.12/1.14, Security Hub IAM.3/IAM.22/ACM.1).
    /// Read-only
    Report {
        /// Also write the report as one self-contained HTML page (inline SVG charts) to FILE
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// How many recent audited actions to list
        #[arg(long, default_value_t = 25, value_name = "N")]
        recent: usize,
    },
    /// Carry out what is due for one kind: `iam-keys` (warn, deactivate, delete; mode =
    /// "enforce" needed, otherwise recorded as dry-run decisions) or `certs` (owners notified
    /// once per ladder step). Every action audited
    Sweep {
        /// Kind to sweep in this process: api-keys, iam-keys, migration or certs (with
        /// --via step-functions the deployed sweep does every kind)
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// Also write one CloudWatch Embedded Metric Format line per certificate to FILE ('-': stdout)
        #[arg(long, value_name = "FILE")]
        emf: Option<PathBuf>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Rotate a credential now (needs mode = "enforce")
    Rotate {
        #[command(subcommand)]
        command: RotateCommand,
    },
    /// Move a workload from an IAM user's keys to a role with temporary credentials
    Migrate {
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Undo a keyrotor deactivation
    Reactivate {
        #[command(subcommand)]
        command: ReactivateCommand,
    },
    /// Check an EventBridge schedule expression and show its next 5 run times (UTC)
    Schedule {
        /// cron(min hour day-of-month month day-of-week year) or rate(n unit); the bare six
        /// cron fields are accepted too
        #[arg(long, value_name = "EXPR", default_value = crate::domain::schedule::DEFAULT_SCHEDULE)]
        cron: String,
    },
    /// Create the audit and state tables if they do not exist (idempotent)
    Init,
    /// Print a shell completion script: `keyrotor completions bash > /etc/bash_completion.d/keyrotor`,
    /// `keyrotor completions zsh > "${fpath[1]}/_keyrotor"`, `keyrotor completions fish > ~/.config/fish/completions/keyrotor.fish`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Read and verify the audit trail
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the policy file and print the effective policy
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// List audit records, oldest first
    List {
        /// Only this resource: its id (access key id, API key id, certificate ARN) or full key
        #[arg(long, value_name = "ID")]
        resource: Option<String>,
        /// Only this run
        #[arg(long, value_name = "ID")]
        run: Option<String>,
        /// Only records written within this duration (e.g. 30m, 24h, 7d, 2w)
        #[arg(long, value_name = "DURATION")]
        since: Option<String>,
    },
    /// Walk every hash chain; exit 1 when a record was altered, removed or reordered
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RotateReason {
    /// A routine rotation: the old key keeps working for [api_keys] grace_days
    OnDemand,
    /// The key leaked: published and verified first, then the old key is retired at once
    Compromised,
}

#[derive(Debug, Subcommand)]
enum RotateCommand {
    /// Replace an API key: create, attach to every usage plan, publish to its secret
    /// (AWSPENDING), verify, promote (AWSCURRENT); the old key is retired after the grace
    /// period by a later sweep. Continues a rotation already in progress
    ApiKey {
        /// The API key id, or its exact name
        key: String,
        #[arg(long, value_enum, default_value = "on-demand")]
        reason: RotateReason,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Rotate a secret tagged keyrotor:type (iam-access-key or apigw-api-key): the four
    /// steps of the Secrets Manager protocol, in this process (or through the deployed hook)
    Secret {
        /// Secret name or ARN
        secret: String,
        /// `local`: run the steps here; `secrets-manager`: call RotateSecret so Secrets
        /// Manager runs the deployed rotation hook
        #[arg(long, value_enum, default_value = "local")]
        via: Via,
    },
}

/// Where a sweep or a rotation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runner {
    /// In this process
    Local,
    /// Start the deployed state machine and follow its execution
    StepFunctions,
}

#[derive(Debug, clap::Args)]
struct RemoteArgs {
    /// Run in this process, or through the deployed state machine
    #[arg(long, value_enum, default_value = "local")]
    via: Runner,
    /// The state machine to start with --via step-functions (the stack's SweepStateMachineArn
    /// or ApiKeyRotationStateMachineArn output)
    #[arg(long, env = "KEYROTOR_STATE_MACHINE_ARN", value_name = "ARN")]
    state_machine_arn: Option<String>,
    /// How long to follow the execution before returning (it goes on running)
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    wait: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Via {
    Local,
    SecretsManager,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Show the user's permissions and key usage, the role keyrotor would create (trust
    /// policy, permissions, session length) and the client-side profile (read-only)
    Plan { user: String },
    /// Create the role (idempotent, tagged) and start tracking its adoption (needs
    /// mode = "enforce")
    Apply {
        user: String,
        /// Trust a workload identity outside the organization, [migration] allowed_accounts
        /// and allowed_oidc_subjects for this user anyway (warned about and audited)
        #[arg(long)]
        allow_external: bool,
    },
    /// The migration funnel: every candidate and every migration in progress
    Status { user: Option<String> },
    /// Reactivate the keys keyrotor deactivated and remove the guard; the role stays
    Rollback { user: String },
}

#[derive(Debug, Subcommand)]
enum ReactivateCommand {
    /// Reactivate an IAM access key keyrotor deactivated (audited); prints when keyrotor
    /// will reconsider it
    IamKey {
        /// The access key id (AKIA...)
        access_key_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Validate the policy file and print the effective policy
    Check,
}

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
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Policy(_) => 2,
            CliError::Aws(_) => 3,
            CliError::Io(_) | CliError::Blocked(_) => 4,
            CliError::InProgress(_) => 6,
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

fn kinds(args: &[KindArg]) -> Vec<Kind> {
    let mut out: Vec<Kind> = Vec::new();
    for arg in args {
        let add: &[Kind] = match arg {
            KindArg::All => &Kind::ALL,
            KindArg::ApiKeys => &[Kind::ApiKeys],
            KindArg::IamKeys => &[Kind::IamKeys],
            KindArg::Migration => &[Kind::Migration],
            KindArg::Certs => &[Kind::Certs],
        };
        for k in add {
            if !out.contains(k) {
                out.push(*k);
            }
        }
    }
    out
}

/// `--via step-functions`: starts the deployed machine, follows it, prints the result and
/// the audit records it produced. Exit 0 when it succeeded, 4 when it failed, 7 when it is
/// still running after --wait.
async fn run_remote(
    aws: &Aws,
    audit: &DynamoAuditStore,
    remote: &RemoteArgs,
    name: &str,
    input: &serde_json::Value,
    format: OutputFormat,
    quiet: bool,
) -> Result<ExitCode, CliError> {
    let Some(machine) = &remote.state_machine_arn else {
        return Err(CliError::Usage(
            "--via step-functions needs --state-machine-arn (or KEYROTOR_STATE_MACHINE_ARN): the SweepStateMachineArn or ApiKeyRotationStateMachineArn output of the stack".into(),
        ));
    };
    let wait = parse_duration(&remote.wait).ok_or_else(|| {
        CliError::Usage(format!(
            "--wait {:?} is not a duration; use e.g. 30m, 1h",
            remote.wait
        ))
    })?;
    let orchestrator = crate::aws::sfn::StepFunctions::new(aws.sfn());
    let mut progress = |s: &crate::ports::ExecutionStatus| {
        note(
            quiet,
            &format!("keyrotor: execution {} is {}", s.arn, s.status),
        );
    };
    let done = steps::remote::run(
        &orchestrator,
        audit,
        machine,
        name,
        input,
        wait,
        &SystemClock::Real,
        &mut progress,
    )
    .await?;
    emit(&match format {
        OutputFormat::Json => to_json(&serde_json::json!({
            "execution": done,
            "audit_records": output::records_json(&done.records),
        }))?,
        OutputFormat::Table => {
            let mut text = format!("Execution {}: {}\n", done.execution, done.status);
            if let Some(e) = &done.error {
                text.push_str(&format!(
                    "Error: {e}: {}\n",
                    done.cause.as_deref().unwrap_or("")
                ));
            }
            if let Some(o) = &done.output {
                text.push_str(&format!("Output: {o}\n"));
            }
            text.push_str("\nAudit records written since it started:\n");
            text.push_str(&output::records_table(&done.records));
            text
        }
    })?;
    Ok(if done.succeeded() {
        ExitCode::SUCCESS
    } else if done.finished() {
        ExitCode::from(4)
    } else {
        eprintln!(
            "keyrotor: the execution is still running after {}; follow it with `aws stepfunctions describe-execution --execution-arn {}`",
            remote.wait, done.execution
        );
        ExitCode::from(7)
    })
}

/// Where a command works: `work` is the account whose credentials keyrotor manages (the
/// caller's, or a member account entered through its role); `home` holds keyrotor's own
/// tables and notification channels (the caller's account), and `audit` is its audit table.
#[derive(Clone, Copy)]
struct Scope<'a> {
    work: &'a Aws,
    home: &'a Aws,
    audit: &'a DynamoAuditStore,
}

impl<'a> Scope<'a> {
    /// The caller's own account.
    fn home(aws: &'a Aws, audit: &'a DynamoAuditStore) -> Scope<'a> {
        Scope {
            work: aws,
            home: aws,
            audit,
        }
    }

    fn state(&self, policy: &Policy) -> DynamoStateStore {
        DynamoStateStore::new(self.home.dynamodb(), policy.audit.state_table.clone())
    }

    fn notifier(&self, policy: &Policy) -> Box<dyn crate::ports::Notifier> {
        crate::aws::sns::notifier_for(self.home, &policy.notifications)
    }
}

/// Runs `f` with the ports of a migration.
async fn with_migration_ports<F, T>(scope: Scope<'_>, policy: &Policy, f: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&steps::migration::MigrationPorts<'_>) -> Result<T, CliError>,
{
    let iam = IamClient::of(scope.work);
    let identity = StsIdentity::new(scope.work.sts());
    let state = scope.state(policy);
    let notifier = scope.notifier(policy);
    // The organization is listed from keyrotor's own account, and only when a role in
    // another account is to be trusted.
    let organization = crate::aws::organizations::OrganizationAccounts::of(scope.home);
    let ports = steps::migration::MigrationPorts {
        identity: &identity,
        iam: &iam,
        keys: &iam,
        roles: &iam,
        state: &state,
        notifier: &*notifier,
        audit: scope.audit,
        directory: policy
            .accounts
            .organization
            .then_some(&organization as &dyn crate::ports::AccountDirectory),
    };
    f(&ports).await
}

/// The read-only adapters discovery uses.
struct Readers {
    iam: IamClient,
    api_keys: ApiGatewayClient,
    certs: AcmInventory,
    secrets: SecretsManagerInventory,
}

impl Readers {
    fn new(aws: &Aws) -> Readers {
        Readers {
            iam: IamClient::of(aws),
            api_keys: ApiGatewayClient::of(aws),
            certs: AcmInventory::new(aws.clone()),
            secrets: SecretsManagerInventory::of(aws),
        }
    }

    fn ports(&self) -> DiscoveryPorts<'_> {
        DiscoveryPorts {
            iam: &self.iam,
            api_keys: &self.api_keys,
            certs: &self.certs,
            secrets: &self.secrets,
        }
    }
}

/// Runs `f` with the ports of API key rotation.
async fn with_api_key_ports<F, T>(scope: Scope<'_>, policy: &Policy, f: F) -> Result<T, CliError>
where
    F: AsyncFnOnce(&steps::api_keys::ApiKeyPorts<'_>) -> Result<T, CliError>,
{
    let gateway = ApiGatewayClient::of(scope.work);
    let secrets = SecretsManagerInventory::of(scope.work);
    let identity = StsIdentity::new(scope.work.sts());
    let state = scope.state(policy);
    let notifier = scope.notifier(policy);
    let ports = steps::api_keys::ApiKeyPorts {
        identity: &identity,
        keys: &gateway,
        secret_list: &secrets,
        admin: &gateway,
        secrets: &secrets,
        state: &state,
        audit: scope.audit,
        notifier: &*notifier,
    };
    f(&ports).await
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

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let (policy, policy_source) = load_policy(cli.config.as_ref())?;
    if let Command::Policy {
        command: PolicyCommand::Check,
    } = &cli.command
    {
        let text = match cli.output {
            OutputFormat::Json => to_json(&policy)?,
            OutputFormat::Table => format!(
                "{policy_source}: valid\n{}",
                toml::to_string_pretty(&policy).map_err(|e| CliError::Io(e.to_string()))?
            ),
        };
        emit(&text)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Completions { shell } = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command, "keyrotor", &mut out);
        emit(&String::from_utf8_lossy(&out))?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Schedule { cron } = &cli.command {
        let schedule = crate::domain::schedule::EventSchedule::parse(cron).map_err(|e| {
            CliError::Usage(format!(
                "--cron: {e}; see https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html"
            ))
        })?;
        let now = match std::env::var("KEYROTOR_NOW") {
            Ok(v) if !v.trim().is_empty() => parse_time(&v, "KEYROTOR_NOW")?,
            _ => Utc::now(),
        };
        let next = schedule.upcoming(now, 5);
        if next.is_empty() {
            return Err(CliError::Usage(format!(
                "--cron: {} never fires after {}",
                schedule.expression,
                now.format("%Y-%m-%d %H:%M UTC")
            )));
        }
        emit(&match cli.output {
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
        return Ok(ExitCode::SUCCESS);
    }
    let env_now = match std::env::var("KEYROTOR_NOW") {
        Ok(v) if !v.trim().is_empty() => Some(parse_time(&v, "KEYROTOR_NOW")?),
        _ => None,
    };

    let aws = Aws::load(&Connection {
        profile: cli.profile.clone(),
        region: cli.region.clone(),
        endpoint_url: cli.endpoint_url.clone(),
    })
    .await
    .with_pacing(&policy.pacing);
    let Some(region) = aws.region() else {
        return Err(CliError::Usage(
            "no AWS region configured; pass --region, set AWS_REGION, or set a region in your profile".into(),
        ));
    };
    let audit_store = DynamoAuditStore::new(aws.dynamodb(), policy.audit.table.clone());

    let (call_stats, counter) = (cli.call_stats, aws.counter.clone());
    let result = execute(
        cli,
        policy,
        policy_source,
        aws,
        region,
        audit_store,
        env_now,
    )
    .await;
    // After a failure too: the calls made before it are worth knowing.
    if call_stats {
        let counts = counter.snapshot();
        let total: u64 = counts.values().sum();
        eprintln!(
            "{}",
            serde_json::json!({ "aws_calls": counts, "total": total })
        );
    }
    result
}

/// The command itself, once the policy, the clock and the AWS configuration are set up.
async fn execute(
    cli: Cli,
    policy: Policy,
    policy_source: String,
    aws: Aws,
    region: String,
    audit_store: DynamoAuditStore,
    env_now: Option<DateTime<Utc>>,
) -> Result<ExitCode, CliError> {
    match cli.command {
            Command::Policy { .. } | Command::Schedule { .. } | Command::Completions { .. } => {
                unreachable!("handled above")
            }
            Command::Plan { kind, at, record } => {
                let now = match at {
                    Some(at) => parse_time(&at, "--at")?,
                    None => env_now.unwrap_or_else(Utc::now),
                };
                let kinds = kinds(&kind);
                let home = Scope::home(&aws, &audit_store);
                let plan_in = async |scope: Scope<'_>| {
                    let outcome = accounts::plan(scope, &policy, &kinds, now, &region, record).await?;
                    if let Some(run) = &outcome.run_id {
                        note(
                            cli.quiet,
                            &format!(
                                "recorded {} decision(s) to audit table {} as run {run} (dry run)",
                                outcome.recorded, policy.audit.table
                            ),
                        );
                    }
                    Ok(outcome)
                };
                if policy.accounts.is_multi_account() {
                    let runs = accounts::fan_out(home, &policy, plan_in).await?;
                    return accounts::emit_runs(&runs, cli.output);
                }
                let outcome = plan_in(home).await?;
                emit(match cli.output {
                    OutputFormat::Json => &outcome.json,
                    OutputFormat::Table => &outcome.table,
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Report { html, recent } => {
                let now = env_now.unwrap_or_else(Utc::now);
                let readers = Readers::new(&aws);
                let discovery = readers.ports();
                let identity = StsIdentity::new(aws.sts());
                let state = DynamoStateStore::new(aws.dynamodb(), policy.audit.state_table.clone());
                let posture = steps::report::posture(
                    &identity,
                    &discovery,
                    &state,
                    &audit_store,
                    &policy,
                    &steps::report::ReportRequest {
                        now,
                        region: &region,
                        recent,
                    },
                    &SystemClock::Real,
                )
                .await?;
                if let Some(path) = &html {
                    std::fs::write(path, report_html::render(&posture)).map_err(|e| {
                        CliError::Io(format!("--html {}: cannot write: {e}", path.display()))
                    })?;
                }
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&posture)?,
                    OutputFormat::Table => output::posture_table(&posture),
                })?;
                if let Some(path) = &html {
                    note(
                        cli.quiet,
                        &format!("keyrotor: report written to {}", path.display()),
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Certs {
                within,
                regions,
                fail_within,
            } => {
                let now = env_now.unwrap_or_else(Utc::now);
                let within_days = match within {
                    None => i64::from(policy.certs.ladder_days.first().copied().unwrap_or(45)),
                    Some(w) => parse_duration(&w)
                        .filter(|d| *d >= Duration::zero())
                        .ok_or_else(|| {
                            CliError::Usage(format!(
                                "--within {w:?} is not a duration; use e.g. 45d, 2w"
                            ))
                        })?
                        .num_days(),
                };
                let certs = AcmInventory::new(aws.clone());
                let identity = StsIdentity::new(aws.sts());
                let report = steps::certs::report(
                    &identity,
                    &certs,
                    &policy,
                    &regions,
                    &region,
                    now,
                    within_days,
                )
                .await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&report)?,
                    OutputFormat::Table => {
                        output::certs_table(&report, &format!(" expiring within {within_days} days"))
                    }
                })?;
                let failing = fail_within.is_some_and(|limit| {
                    report
                        .certificates
                        .iter()
                        .any(|c| c.days_left.is_some_and(|d| d <= limit))
                });
                Ok(if failing {
                    ExitCode::from(5)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Command::Rotate {
                command: RotateCommand::Secret { secret, via },
            } => {
                if policy.mode != crate::domain::policy::Mode::Enforce {
                    return Err(CliError::Usage(format!(
                        "{policy_source}: mode = \"plan\": rotating a secret creates credentials, so it needs mode = \"enforce\""
                    )));
                }
                let now = env_now.unwrap_or_else(Utc::now);
                let secrets = SecretsManagerInventory::of(&aws);
                if via == Via::SecretsManager {
                    use crate::ports::SecretVersions;
                    let version = secrets.rotate_now(&secret).await?;
                    emit(&match cli.output {
                        OutputFormat::Json => to_json(
                            &serde_json::json!({"secret": secret, "version": version, "via": "secrets-manager"}),
                        )?,
                        OutputFormat::Table => format!(
                            "Secrets Manager started rotating {secret} (version {version}) through its rotation function; follow it with `keyrotor audit list --since 1h`\n"
                        ),
                    })?;
                    return Ok(ExitCode::SUCCESS);
                }
                let iam = IamClient::of(&aws);
                let gateway = ApiGatewayClient::of(&aws);
                let identity = StsIdentity::new(aws.sts());
                let tester = crate::aws::sts::StsKeyTester::new(aws.config.clone());
                let state = DynamoStateStore::new(aws.dynamodb(), policy.audit.state_table.clone());
                let ports = steps::secret_rotation::HookPorts {
                    identity: &identity,
                    secrets: &secrets,
                    iam: &iam,
                    iam_admin: &iam,
                    tester: &tester,
                    api_keys: &gateway,
                    api_admin: &gateway,
                    state: &state,
                    audit: &audit_store,
                    notifier: &*crate::aws::sns::notifier_for(&aws, &policy.notifications),
                };
                let done = steps::secret_rotation::rotate_locally(
                    &ports,
                    &policy,
                    &secret,
                    &region,
                    now,
                    &SystemClock::Real,
                )
                .await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&done)?,
                    OutputFormat::Table => output::secret_steps_table(&done),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Rotate {
                command:
                    RotateCommand::ApiKey {
                        key,
                        reason,
                        remote,
                    },
            } if remote.via == Runner::StepFunctions => {
                if reason == RotateReason::Compromised {
                    return Err(CliError::Usage(
                        "--reason compromised runs in this process only (the deployed rotation keeps its grace period); drop --via step-functions".into(),
                    ));
                }
                let now = env_now.unwrap_or_else(Utc::now);
                // The rotation machine works in the account its input names: the caller's.
            let caller = crate::ports::Identity::caller(&StsIdentity::new(aws.sts())).await?;
            let input = serde_json::json!({
                "key": key,
                "account": caller.account.as_str(),
                "at": now.to_rfc3339(),
            });
                let name = format!("api-key-{key}-{}", now.format("%Y%m%d"));
                run_remote(&aws, &audit_store, &remote, &name, &input, cli.output, cli.quiet).await
            }
            Command::Rotate {
                command: RotateCommand::ApiKey { key, reason, .. },
            } => {
                if policy.mode != crate::domain::policy::Mode::Enforce {
                    return Err(CliError::Usage(format!(
                        "{policy_source}: mode = \"plan\": rotating creates and retires keys, so it needs mode = \"enforce\"; see what would happen with `keyrotor plan --kind api-keys`"
                    )));
                }
                let now = env_now.unwrap_or_else(Utc::now);
                let trigger = match reason {
                    RotateReason::OnDemand => Trigger::OnDemand,
                    RotateReason::Compromised => Trigger::Compromised,
                };
                with_api_key_ports(Scope::home(&aws, &audit_store), &policy, async |ports| {
                    let done = steps::api_keys::rotate(
                        ports,
                        &policy,
                        &region,
                        &key,
                        trigger,
                        now,
                        &SystemClock::Real,
                    )
                    .await?;
                    emit(&match cli.output {
                        OutputFormat::Json => to_json(&done)?,
                        OutputFormat::Table => output::rotation_text(&done),
                    })?;
                    if done.status != "done" {
                        eprintln!(
                            "keyrotor: error: the rotation stopped ({}); run the command again to continue it",
                            done.error.as_deref().unwrap_or(done.status)
                        );
                        return Ok(ExitCode::from(4));
                    }
                    Ok(ExitCode::SUCCESS)
                })
                .await
            }
            Command::Sweep { remote, kind, .. } if remote.via == Runner::StepFunctions => {
                if kind.is_some_and(|k| k != KindArg::All) {
                    return Err(CliError::Usage(
                        "--via step-functions runs the deployed sweep, which does every kind; drop --kind".into(),
                    ));
                }
                let now = Utc::now();
                let name = format!("sweep-cli-{}", now.format("%Y%m%dT%H%M%S"));
                run_remote(&aws, &audit_store, &remote, &name, &serde_json::json!({}), cli.output, cli.quiet).await
            }
            Command::Sweep { kind: None, .. } => Err(CliError::Usage(
                "choose what to sweep: --kind api-keys, iam-keys, migration or certs (or --via step-functions for everything)".into(),
            )),
            Command::Sweep {
                kind: Some(KindArg::All),
                ..
            } => Err(CliError::Usage(
                "sweep one kind at a time: --kind api-keys, iam-keys, migration or certs".into(),
            )),
            Command::Sweep {
                kind: Some(kind),
                emf,
                ..
            } => {
                if emf.is_some() && kind != KindArg::Certs {
                    return Err(CliError::Usage("--emf applies to --kind certs only".into()));
                }
                let now = env_now.unwrap_or_else(Utc::now);
                let kind = kinds(&[kind])[0];
                let home = Scope::home(&aws, &audit_store);
                if policy.accounts.is_multi_account() {
                    if emf.is_some() {
                        return Err(CliError::Usage(
                            "--emf needs a single-account policy; the deployed functions emit the metrics of every account".into(),
                        ));
                    }
                    let runs = accounts::fan_out(home, &policy, async |scope: Scope<'_>| {
                        accounts::sweep(scope, &policy, kind, &region, now).await
                    })
                    .await?;
                    return accounts::emit_runs(&runs, cli.output);
                }
                let done = accounts::sweep(home, &policy, kind, &region, now).await?;
                if let Some(path) = emf {
                    let lines: String = done.metrics.iter().map(|m| format!("{m}\n")).collect();
                    if path.as_os_str() == "-" {
                        emit(&lines)?;
                    } else {
                        std::fs::write(&path, lines).map_err(|e| {
                            CliError::Io(format!("cannot write {}: {e}", path.display()))
                        })?;
                    }
                }
                emit(match cli.output {
                    OutputFormat::Json => &done.json,
                    OutputFormat::Table => &done.table,
                })?;
                if done.failed > 0 {
                    eprintln!("keyrotor: error: {}", output::clean_lines(&done.failure));
                    return Ok(ExitCode::from(4));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate { command } => {
                let now = env_now.unwrap_or_else(Utc::now);
                if matches!(
                    command,
                    MigrateCommand::Apply { .. } | MigrateCommand::Rollback { .. }
                ) && policy.mode != crate::domain::policy::Mode::Enforce
                {
                    return Err(CliError::Usage(format!(
                        "{policy_source}: mode = \"plan\": migrate apply and rollback change IAM, so they need mode = \"enforce\"; `keyrotor migrate plan USER` shows what would happen"
                    )));
                }
                let output_format = cli.output;
                with_migration_ports(Scope::home(&aws, &audit_store), &policy, async |ports| {
                    let text = match &command {
                        MigrateCommand::Plan { user } => {
                            let plan = steps::migration::plan_user(ports, &policy, user, now).await?;
                            match output_format {
                                OutputFormat::Json => to_json(&plan)?,
                                OutputFormat::Table => output::migration_plan_text(&plan),
                            }
                        }
                        MigrateCommand::Apply { user, allow_external } => {
                            let plan = steps::migration::apply_with(ports, &policy, user, now, &SystemClock::Real, *allow_external).await?;
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
                            let funnel = steps::migration::status(ports, &policy, user.as_deref(), now).await?;
                            match output_format {
                                OutputFormat::Json => to_json(&funnel)?,
                                OutputFormat::Table => output::funnel_table(&funnel),
                            }
                        }
                        MigrateCommand::Rollback { user } => {
                            let (record, note) = steps::migration::rollback_report(ports, user, now, &SystemClock::Real).await?;
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
                    Ok(ExitCode::SUCCESS)
                })
                .await
            }
            Command::Reactivate {
                command: ReactivateCommand::IamKey { access_key_id },
            } => {
                let now = env_now.unwrap_or_else(Utc::now);
                let iam = IamClient::of(&aws);
                let identity = StsIdentity::new(aws.sts());
                let state = DynamoStateStore::new(aws.dynamodb(), policy.audit.state_table.clone());
                let secrets = SecretsManagerInventory::of(&aws);
                let ports = steps::iam_keys::IamKeyPorts {
                    identity: &identity,
                    iam: &iam,
                    secrets: &secrets,
                    admin: &iam,
                    state: &state,
                    notifier: &NoNotifier,
                    audit: &audit_store,
                };
                let done = steps::iam_keys::reactivate(
                    &ports,
                    &policy,
                    &access_key_id,
                    now,
                    &SystemClock::Real,
                )
                .await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&done)?,
                    OutputFormat::Table => output::reactivated_text(&done),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Init => {
                let tables = DynamoTables::new(aws.dynamodb());
                let done = steps::init(&tables, &policy).await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&output::init_json(&done))?,
                    OutputFormat::Table => output::init_table(&done, &region),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit {
                command:
                    AuditCommand::List {
                        resource,
                        run,
                        since,
                    },
            } => {
                let since = match since {
                    None => None,
                    Some(s) => {
                        let d = parse_duration(&s).ok_or_else(|| {
                            CliError::Usage(format!(
                                "--since {s:?} is not a duration; use a number and a unit: 30m, 24h, 7d, 2w"
                            ))
                        })?;
                        Some(Utc::now() - d)
                    }
                };
                let records = steps::audit_list(
                    &audit_store,
                    &AuditQuery {
                        resource,
                        run,
                        since,
                    },
                )
                .await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&output::records_json(&records))?,
                    OutputFormat::Table => output::records_table(&records),
                })?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Audit {
                command: AuditCommand::Verify,
            } => {
                let report = steps::audit_verify(&audit_store).await?;
                emit(&match cli.output {
                    OutputFormat::Json => to_json(&report)?,
                    OutputFormat::Table => output::verify_text(&report, &policy.audit.table),
                })?;
                Ok(if report.ok() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                })
            }
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
            return ExitCode::from(4);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            // Errors quote account data (names, tags): no control characters reach the terminal.
            eprintln!("keyrotor: error: {}", output::clean_lines(&e.to_string()));
            ExitCode::from(e.exit_code())
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
    fn kind_all_expands_without_duplicates() {
        assert_eq!(kinds(&[KindArg::IamKeys, KindArg::All]).len(), 4);
        assert_eq!(kinds(&[KindArg::Certs]), vec![Kind::Certs]);
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
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
