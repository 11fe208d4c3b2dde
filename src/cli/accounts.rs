//! One account's sweep and plan, and running them across accounts: the same code serves
//! the caller's account alone and an `[accounts]` fan-out ([`Wiring::in_each_account`]),
//! where each member account is entered through its role while keyrotor's tables and
//! notification channels stay in the caller's account.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::print::{emit, to_json, to_value};
use super::{CliError, Exit, OutputFormat, output};
use crate::domain::model::Kind;
use crate::domain::plan::Plan;
use crate::domain::policy::Policy;
use crate::metrics::Tally;
use crate::ports::SystemClock;
use crate::steps::accounts::AccountRun;
use crate::steps::api_keys::ApiKeySweep;
use crate::steps::certs::CertSweep;
use crate::steps::iam_keys::IamSweep;
use crate::steps::migration::MigrationSweep;
use crate::steps::outcome::JobOutcome;
use crate::steps::{self};
use crate::wiring::Wiring;

/// What a sweep of one kind did in one account: the step's own result, typed. It prints
/// as that result (`--output json`) or its table, and counts failures as every caller
/// does ([`JobOutcome`]).
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Swept {
    IamKeys(IamSweep),
    ApiKeys(ApiKeySweep),
    Migration(MigrationSweep),
    Certs(CertSweep),
}

impl Swept {
    fn outcome(&self) -> &dyn JobOutcome {
        match self {
            Swept::IamKeys(s) => s,
            Swept::ApiKeys(s) => s,
            Swept::Migration(s) => s,
            Swept::Certs(s) => s,
        }
    }

    /// What failed, and what happens next.
    pub(super) fn failure(&self) -> String {
        let n = self.failed();
        match self {
            Swept::IamKeys(_) => format!(
                "{n} action(s) failed (see the table and the audit trail); they are retried by the next sweep"
            ),
            Swept::ApiKeys(_) => format!(
                "{n} rotation(s) failed or are blocked (see the table and the audit trail); failed steps are retried by the next sweep"
            ),
            Swept::Migration(_) => format!(
                "{n} migration step(s) failed or met another run (see the table and the audit trail); they are retried by the next sweep"
            ),
            Swept::Certs(_) => {
                format!("{n} notification(s) failed; they are retried by the next sweep")
            }
        }
    }

    /// The EMF lines of the certificate sweep (`--emf`).
    pub(super) fn metrics(&self) -> Vec<String> {
        match self {
            Swept::Certs(s) => s.metrics.iter().map(|m| m.to_string()).collect(),
            _ => Vec::new(),
        }
    }
}

impl JobOutcome for Swept {
    fn run_id(&self) -> Option<&str> {
        self.outcome().run_id()
    }
    fn kind(&self) -> Kind {
        self.outcome().kind()
    }
    fn failed(&self) -> usize {
        self.outcome().failed()
    }
    fn tally(&self) -> Tally {
        self.outcome().tally()
    }
}

/// One account's output of a command that can run in several accounts.
pub(super) trait AccountOutput {
    /// The output as a JSON value, to embed in the accounts' list.
    fn value(&self) -> Result<serde_json::Value, CliError>;
    /// `--output json` (pretty) of a single account.
    fn json(&self) -> Result<String, CliError>;
    fn table(&self) -> String;
    /// Actions that failed or are blocked.
    fn failed_actions(&self) -> usize;
}

impl AccountOutput for Swept {
    fn value(&self) -> Result<serde_json::Value, CliError> {
        to_value(self)
    }
    fn json(&self) -> Result<String, CliError> {
        to_json(self)
    }
    fn table(&self) -> String {
        match self {
            Swept::IamKeys(s) => output::iam_sweep_table(s),
            Swept::ApiKeys(s) => output::api_sweep_table(s),
            Swept::Migration(s) => output::migration_sweep_table(s),
            Swept::Certs(s) => output::sweep_table(s),
        }
    }
    fn failed_actions(&self) -> usize {
        self.failed()
    }
}

impl AccountOutput for Planned {
    fn value(&self) -> Result<serde_json::Value, CliError> {
        to_value(&self.plan)
    }
    fn json(&self) -> Result<String, CliError> {
        to_json(&self.plan)
    }
    fn table(&self) -> String {
        output::plan_table(&self.plan)
    }
    // A plan acts on nothing.
    fn failed_actions(&self) -> usize {
        0
    }
}

/// Sweeps `kind` in `wiring`'s account.
pub(super) async fn sweep(
    wiring: &Wiring,
    policy: &Policy,
    kind: Kind,
    region: &str,
    now: DateTime<Utc>,
) -> Result<Swept, CliError> {
    let clock = SystemClock::Real;
    Ok(match kind {
        Kind::IamKeys => {
            Swept::IamKeys(steps::iam_keys::sweep(&wiring.iam_keys(), policy, now, &clock).await?)
        }
        Kind::ApiKeys => Swept::ApiKeys(
            steps::api_keys::sweep(&wiring.api_keys(), policy, region, now, &clock).await?,
        ),
        Kind::Migration => Swept::Migration(
            steps::migration::sweep(&wiring.migration(), policy, now, &clock).await?,
        ),
        Kind::Certs => Swept::Certs(
            steps::certs::sweep(&wiring.cert_sweep(), policy, region, now, &clock).await?,
        ),
    })
}

/// A plan of one account.
pub(super) struct Planned {
    pub plan: Plan,
    /// The dry-run records' run, with `--record`.
    pub run_id: Option<String>,
    pub recorded: usize,
}

/// Plans `kinds` in `wiring`'s account (read-only; `record` writes dry-run decisions).
pub(super) async fn plan(
    wiring: &Wiring,
    policy: &Policy,
    kinds: &[Kind],
    now: DateTime<Utc>,
    region: &str,
    record: bool,
) -> Result<Planned, CliError> {
    let outcome = steps::plan(
        wiring.identity(),
        &wiring.discovery(),
        Some(wiring.state()),
        record.then_some(wiring.audit() as &dyn crate::ports::AuditStore),
        policy,
        &steps::PlanRequest { kinds, now, region },
        &SystemClock::Real,
    )
    .await?;
    Ok(Planned {
        plan: outcome.plan,
        run_id: outcome.run_id,
        recorded: outcome.recorded,
    })
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
                        entry["result"] = done.value()?;
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
                    format!(" ({})", output::clean(&run.target.name))
                };
                match &run.result {
                    Ok(done) => {
                        text.push_str(&format!(
                            "== Account {}{name}: succeeded\n",
                            run.target.account.as_str()
                        ));
                        text.push_str(&done.table());
                    }
                    Err(e) => text.push_str(&format!(
                        "== Account {}{name}: failed: {}\n",
                        run.target.account.as_str(),
                        output::clean(&e.to_string())
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
