//! One account's sweep and plan, and running them across accounts: the same code serves
//! the caller's account alone and an `[accounts]` fan-out, where each member account is
//! entered through its role ([`crate::aws::organizations`]) while keyrotor's tables and
//! notification channels stay in the caller's account.

use chrono::{DateTime, Utc};

use super::wiring::{Readers, Scope, with_api_key_ports, with_migration_ports};
use super::{CliError, Exit, OutputFormat, emit, output, to_json};
use crate::aws::acm::AcmInventory;
use crate::aws::iam::IamClient;
use crate::aws::organizations::{self, OrganizationAccounts};
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sts::StsIdentity;
use crate::domain::model::Kind;
use crate::domain::policy::Policy;
use crate::ports::SystemClock;
use crate::steps::{self, accounts::AccountRun};

/// What a sweep of one kind did in one account, rendered both ways.
pub(super) struct Swept {
    /// `--output json` (pretty, with its newline).
    pub json: String,
    pub table: String,
    /// Actions (or notifications, or migration steps) that failed or are blocked.
    pub failed: usize,
    /// What failed, and what happens next.
    pub failure: String,
    /// EMF lines of the certificate sweep.
    pub metrics: Vec<String>,
}

/// One account's output of a command that can run in several accounts.
pub(super) trait AccountOutput {
    /// `--output json` (pretty).
    fn json(&self) -> &str;
    fn table(&self) -> &str;
    /// Actions that failed or are blocked.
    fn failed_actions(&self) -> usize;
}

impl AccountOutput for Swept {
    fn json(&self) -> &str {
        &self.json
    }
    fn table(&self) -> &str {
        &self.table
    }
    fn failed_actions(&self) -> usize {
        self.failed
    }
}

impl AccountOutput for Planned {
    fn json(&self) -> &str {
        &self.json
    }
    fn table(&self) -> &str {
        &self.table
    }
    // A plan acts on nothing.
    fn failed_actions(&self) -> usize {
        0
    }
}

/// Sweeps `kind` in `scope`'s account.
pub(super) async fn sweep(
    scope: Scope<'_>,
    policy: &Policy,
    kind: Kind,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Swept, CliError> {
    let clock = SystemClock::Real;
    match kind {
        Kind::IamKeys => {
            let iam = IamClient::of(scope.work);
            let identity = StsIdentity::new(scope.work.sts());
            let state = scope.state(policy);
            let notifier = scope.notifier(policy);
            let secrets = SecretsManagerInventory::of(scope.work);
            let ports = steps::iam_keys::IamKeyPorts {
                identity: &identity,
                iam: &iam,
                secrets: &secrets,
                admin: &iam,
                state: &state,
                notifier: &*notifier,
                audit: scope.audit,
            };
            let done = steps::iam_keys::sweep(&ports, policy, now, &clock).await?;
            Ok(Swept {
                json: to_json(&done)?,
                table: output::iam_sweep_table(&done),
                failed: done.failed(),
                failure: format!(
                    "{} action(s) failed (see the table and the audit trail); they are retried by the next sweep",
                    done.failed()
                ),
                metrics: Vec::new(),
            })
        }
        Kind::ApiKeys => {
            with_api_key_ports(scope, policy, async |ports| {
                let done = steps::api_keys::sweep(ports, policy, region, now, &clock).await?;
                Ok(Swept {
                    json: to_json(&done)?,
                    table: output::api_sweep_table(&done),
                    failed: done.failed(),
                    failure: format!(
                        "{} rotation(s) failed or are blocked (see the table and the audit trail); failed steps are retried by the next sweep",
                        done.failed()
                    ),
                    metrics: Vec::new(),
                })
            })
            .await
        }
        Kind::Migration => {
            with_migration_ports(scope, policy, async |ports| {
                let done = steps::migration::sweep(ports, policy, now, &clock).await?;
                let failed = done.failed();
                Ok(Swept {
                    json: to_json(&done)?,
                    table: output::migration_sweep_table(&done),
                    failed,
                    failure: format!(
                        "{failed} migration step(s) failed or met another run (see the table and the audit trail); they are retried by the next sweep"
                    ),
                    metrics: Vec::new(),
                })
            })
            .await
        }
        Kind::Certs => {
            let certs = AcmInventory::new(scope.work.clone());
            let identity = StsIdentity::new(scope.work.sts());
            let state = scope.state(policy);
            let notifier = scope.notifier(policy);
            let ports = steps::certs::SweepPorts {
                identity: &identity,
                certs: &certs,
                state: &state,
                notifier: &*notifier,
                audit: scope.audit,
            };
            let done = steps::certs::sweep(&ports, policy, region, now, &clock).await?;
            Ok(Swept {
                json: to_json(&done)?,
                table: output::sweep_table(&done),
                failed: done.failed(),
                failure: format!(
                    "{} notification(s) failed; they are retried by the next sweep",
                    done.failed()
                ),
                metrics: done.metrics.iter().map(|m| m.to_string()).collect(),
            })
        }
    }
}

/// A plan of one account, rendered both ways.
pub(super) struct Planned {
    pub json: String,
    pub table: String,
    /// The dry-run records' run, with `--record`.
    pub run_id: Option<String>,
    pub recorded: usize,
}

/// Plans `kinds` in `scope`'s account (read-only; `record` writes dry-run decisions).
pub(super) async fn plan(
    scope: Scope<'_>,
    policy: &Policy,
    kinds: &[Kind],
    now: DateTime<Utc>,
    region: &str,
    record: bool,
) -> Result<Planned, CliError> {
    let readers = Readers::new(scope.work);
    let discovery = readers.ports();
    let identity = StsIdentity::new(scope.work.sts());
    let state = scope.state(policy);
    let outcome = steps::plan(
        &identity,
        &discovery,
        Some(&state),
        record.then_some(scope.audit as &dyn crate::ports::AuditStore),
        policy,
        &steps::PlanRequest { kinds, now, region },
        &SystemClock::Real,
    )
    .await?;
    Ok(Planned {
        json: to_json(&outcome.plan)?,
        table: output::plan_table(&outcome.plan),
        run_id: outcome.run_id.clone(),
        recorded: outcome.recorded,
    })
}

/// Runs `work` in every account of `[accounts]`, at most `concurrency` at once: the
/// caller's own account with its credentials, the others as the member role. A member
/// account that cannot be entered or whose work fails is reported as failed; the others
/// go on.
pub(super) async fn fan_out<T, F>(
    home: Scope<'_>,
    policy: &Policy,
    work: F,
) -> Result<Vec<AccountRun<T, CliError>>, CliError>
where
    F: AsyncFn(Scope<'_>) -> Result<T, CliError>,
{
    let identity = StsIdentity::new(home.home.sts());
    let directory = OrganizationAccounts::of(home.home);
    let (targets, partition) =
        steps::accounts::resolve(&policy.accounts, &identity, &directory).await?;
    let (work, partition) = (&work, &partition);
    Ok(
        steps::accounts::across(&targets, policy.accounts.concurrency, |target| async move {
            let member = organizations::enter(
                home.home,
                &policy.accounts,
                partition,
                &target.account,
                target.home,
            )
            .await?;
            work(Scope {
                work: member.as_ref().unwrap_or(home.home),
                home: home.home,
                audit: home.audit,
            })
            .await
        })
        .await,
    )
}

/// Prints the runs of a multi-account command: per account its own output (or its error),
/// then a summary. [`Exit::Failed`] when an account failed or had failed actions.
pub(super) fn emit_runs<T: AccountOutput>(
    runs: &[AccountRun<T, CliError>],
    format: OutputFormat,
) -> Result<Exit, CliError> {
    let failed_accounts = runs.iter().filter(|r| r.result.is_err()).count();
    let failed_total: usize = runs
        .iter()
        .filter_map(|r| r.result.as_ref().ok())
        .map(T::failed_actions)
        .sum();
    let text = match format {
        OutputFormat::Json => {
            let mut accounts = Vec::new();
            for run in runs {
                let mut entry = serde_json::json!({
                    "account": run.target.account.as_str(),
                    "name": run.target.name,
                    "home": run.target.home,
                });
                match &run.result {
                    Ok(done) => {
                        entry["status"] = "succeeded".into();
                        entry["failed_actions"] = done.failed_actions().into();
                        entry["result"] = serde_json::from_str(done.json())
                            .map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))?;
                    }
                    Err(e) => {
                        entry["status"] = "failed".into();
                        entry["error"] = e.to_string().into();
                        entry["exit_code"] = e.exit_code().code().into();
                    }
                }
                accounts.push(entry);
            }
            to_json(&serde_json::json!({
                "accounts": accounts,
                "succeeded": runs.len() - failed_accounts,
                "failed": failed_accounts,
            }))?
        }
        OutputFormat::Table => {
            let mut text = String::new();
            for run in runs {
                let name = if run.target.name.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", super::output::clean(&run.target.name))
                };
                match &run.result {
                    Ok(done) => {
                        text.push_str(&format!(
                            "== Account {}{name}: succeeded\n",
                            run.target.account.as_str()
                        ));
                        text.push_str(done.table());
                    }
                    Err(e) => text.push_str(&format!(
                        "== Account {}{name}: failed: {}\n",
                        run.target.account.as_str(),
                        super::output::clean(&e.to_string())
                    )),
                }
                text.push('\n');
            }
            text.push_str(&format!(
                "{} account(s): {} succeeded, {} failed\n",
                runs.len(),
                runs.len() - failed_accounts,
                failed_accounts
            ));
            text
        }
    };
    emit(&text)?;
    if failed_accounts > 0 || failed_total > 0 {
        eprintln!(
            "keyrotor: error: {failed_accounts} account(s) failed and {failed_total} action(s) failed in the others (see the output and the audit trail); the next run retries them"
        );
        return Ok(Exit::Failed);
    }
    Ok(Exit::Success)
}
