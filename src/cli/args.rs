//! The command line as plain data: every clap type of `keyrotor`, parsed once in
//! [`super::main`] and handed to the command modules.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::model::Kind;

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
pub(super) struct Cli {
    /// Policy file [default: ./keyrotor.toml if present, else built-in defaults]
    #[arg(long, global = true, env = "KEYROTOR_CONFIG", value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// AWS profile (as in ~/.aws/config)
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) profile: Option<String>,
    /// AWS region
    #[arg(long, global = true, value_name = "REGION")]
    pub(super) region: Option<String>,
    /// Send every AWS call to this endpoint (e.g. a local emulator)
    #[arg(long, global = true, value_name = "URL")]
    pub(super) endpoint_url: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub(super) output: OutputFormat,
    /// Print the number of AWS calls per operation to stderr when done
    #[arg(long, global = true)]
    pub(super) call_stats: bool,
    /// No progress bars and no informational messages on stderr (errors are still printed)
    #[arg(long, short = 'q', global = true)]
    pub(super) quiet: bool,
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum KindArg {
    ApiKeys,
    IamKeys,
    Migration,
    Certs,
    All,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
    /// Carry out what is due, as the scheduled sweep does: every kind in turn (api-keys,
    /// iam-keys, migration, certs), or one with --kind. `iam-keys` warns, deactivates and
    /// deletes (mode = "enforce" needed, otherwise recorded as dry-run decisions); `certs`
    /// notifies owners once per ladder step. Every action audited
    Sweep {
        /// Sweep only this kind: api-keys, iam-keys, migration or certs [default: every
        /// kind, in that order, in this process]
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
    /// Respond to a leaked or compromised credential: contain it (publish a replacement
    /// where a keyrotor secret holds it, deactivate it — never delete it — and revoke its
    /// older sessions), investigate its CloudTrail activity, notify and record. Needs
    /// mode = "enforce" (otherwise says what it would do)
    #[command(args_conflicts_with_subcommands = true)]
    Respond {
        #[command(subcommand)]
        command: Option<RespondCommand>,
        /// An event as EventBridge delivers it — AWS Health (AWS_RISK_CREDENTIALS_*,
        /// AWS_RISK_IAM_QUARANTINE), a GuardDuty finding, or CloudTrail's AttachUserPolicy
        /// of AWS's quarantine policy — from FILE ('-': stdin)
        #[arg(long, value_name = "FILE")]
        event: Option<PathBuf>,
        /// Contain the key of a break-glass, exempt or out-of-scope user too (a person's
        /// decision; audited)
        #[arg(long)]
        override_exemption: bool,
        /// Contain only: skip the CloudTrail investigation
        #[arg(long)]
        no_investigation: bool,
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
pub(super) enum AuditCommand {
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
pub(super) enum RotateReason {
    /// A routine rotation: the old key keeps working for [api_keys] grace_days
    OnDemand,
    /// The key leaked: published and verified first, then the old key is retired at once
    Compromised,
}

#[derive(Debug, Subcommand)]
pub(super) enum RotateCommand {
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
pub(super) enum Runner {
    /// In this process
    Local,
    /// Start the deployed state machine and follow its execution
    StepFunctions,
}

#[derive(Debug, clap::Args)]
pub(super) struct RemoteArgs {
    /// Run in this process, or through the deployed state machine
    #[arg(long, value_enum, default_value = "local")]
    pub(super) via: Runner,
    /// The state machine to start with --via step-functions (the stack's SweepStateMachineArn
    /// or ApiKeyRotationStateMachineArn output)
    #[arg(long, env = "KEYROTOR_STATE_MACHINE_ARN", value_name = "ARN")]
    pub(super) state_machine_arn: Option<String>,
    /// How long to follow the execution before returning (it goes on running)
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub(super) wait: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Via {
    Local,
    SecretsManager,
}

#[derive(Debug, Subcommand)]
pub(super) enum MigrateCommand {
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

/// Why a credential is responded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum RespondReason {
    /// Seen in public (a repository, a paste, a log)
    Exposed,
    /// Used by someone else
    Compromised,
}

#[derive(Debug, Subcommand)]
pub(super) enum RespondCommand {
    /// An IAM access key: replace (when bound to a keyrotor secret), deactivate, revoke
    /// older sessions, investigate
    IamKey {
        /// The access key id (AKIA...)
        access_key_id: String,
        #[arg(long, value_enum, default_value = "compromised")]
        reason: RespondReason,
        /// Contain the key of a break-glass, exempt or out-of-scope user too
        #[arg(long)]
        override_exemption: bool,
        /// Contain only: skip the CloudTrail investigation
        #[arg(long)]
        no_investigation: bool,
    },
    /// An API Gateway API key: `rotate api-key --reason compromised` (the replacement is
    /// published and verified, then the old key is retired at once)
    ApiKey {
        /// The API key id, or its exact name
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum ReactivateCommand {
    /// Reactivate an IAM access key keyrotor deactivated (audited); prints when keyrotor
    /// will reconsider it
    IamKey {
        /// The access key id (AKIA...)
        access_key_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Validate the policy file and print the effective policy
    Check,
}

/// The kinds `--kind` names, in the order given, `all` expanded, without duplicates.
pub(super) fn kinds(args: &[KindArg]) -> Vec<Kind> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_all_expands_without_duplicates() {
        assert_eq!(kinds(&[KindArg::IamKeys, KindArg::All]).len(), 4);
        assert_eq!(kinds(&[KindArg::Certs]), vec![Kind::Certs]);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
