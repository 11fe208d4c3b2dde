//! `keyrotor sweep`: carries out what is due. With no `--kind`, every kind in turn, in
//! [`Kind::ALL`] order, as the scheduled sweep does; with `--kind`, that kind alone; with
//! `--via step-functions`, the deployed sweep.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::accounts::{self, AccountOutput, Swept};
use super::args::{KindArg, RemoteArgs, Runner, kinds};
use super::print::{emit, to_json, to_value};
use super::{CliError, Context, Exit, output, remote};
use crate::domain::model::Kind;
use crate::domain::policy::Policy;
use crate::steps::outcome::JobOutcome;
use crate::wiring::Wiring;

/// `keyrotor sweep [--kind K] [--emf FILE] [--via ...]`.
pub(super) async fn sweep(
    ctx: &Context,
    kind: Option<KindArg>,
    emf: Option<PathBuf>,
    remote: &RemoteArgs,
) -> Result<Exit, CliError> {
    if remote.via == Runner::StepFunctions {
        if kind.is_some_and(|k| k != KindArg::All) {
            return Err(CliError::Usage(
                "--via step-functions runs the deployed sweep, which does every kind; drop --kind"
                    .into(),
            ));
        }
        let name = format!("sweep-cli-{}", Utc::now().format("%Y%m%dT%H%M%S"));
        return remote::run(ctx, remote, &name, &serde_json::json!({})).await;
    }
    match kind {
        None | Some(KindArg::All) => every_kind(ctx, emf.as_deref()).await,
        Some(kind) => one_kind(ctx, kinds(&[kind])[0], emf.as_deref()).await,
    }
}

/// `--kind K`: one kind, in every account of `[accounts]`.
async fn one_kind(ctx: &Context, kind: Kind, emf: Option<&Path>) -> Result<Exit, CliError> {
    if emf.is_some() && kind != Kind::Certs {
        return Err(CliError::Usage("--emf applies to --kind certs only".into()));
    }
    let now = ctx.now();
    let (policy, region) = (&ctx.policy, ctx.region.as_str());
    if policy.accounts.is_multi_account() {
        refuse_emf_across_accounts(emf)?;
        let runs = ctx
            .wiring
            .in_each_account(async |w: &Wiring| accounts::sweep(w, policy, kind, region, now).await)
            .await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let done = accounts::sweep(&ctx.wiring, policy, kind, region, now).await?;
    write_emf(emf, &done.metrics())?;
    ctx.print(|| done.json(), || done.table())?;
    if done.failed() > 0 {
        eprintln!("keyrotor: error: {}", output::clean_lines(&done.failure()));
        return Ok(Exit::Failed);
    }
    Ok(Exit::Success)
}

/// No `--kind`: every kind, one after the other; a kind that fails does not stop the
/// others. The exit code is the worst of the kinds'.
async fn every_kind(ctx: &Context, emf: Option<&Path>) -> Result<Exit, CliError> {
    let now = ctx.now();
    let (policy, region) = (&ctx.policy, ctx.region.as_str());
    if policy.accounts.is_multi_account() {
        refuse_emf_across_accounts(emf)?;
        let runs = ctx
            .wiring
            .in_each_account(async |w: &Wiring| SweptAll::run(w, policy, region, now).await)
            .await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let done = SweptAll::run(&ctx.wiring, policy, region, now).await?;
    let metrics: Vec<String> = done
        .kinds
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(Swept::metrics)
        .collect();
    write_emf(emf, &metrics)?;
    ctx.print(|| done.json(), || done.table())?;
    let mut exit = Exit::Success;
    for (kind, result) in &done.kinds {
        match result {
            Ok(swept) if swept.failed() > 0 => {
                eprintln!(
                    "keyrotor: error: {kind}: {}",
                    output::clean_lines(&swept.failure())
                );
                exit = exit.worst(Exit::Failed);
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!(
                    "keyrotor: error: {kind}: {}",
                    output::clean_lines(&e.to_string())
                );
                exit = exit.worst(e.exit_code());
            }
        }
    }
    Ok(exit)
}

fn refuse_emf_across_accounts(emf: Option<&Path>) -> Result<(), CliError> {
    if emf.is_some() {
        return Err(CliError::Usage(
            "--emf needs a single-account policy; the deployed functions emit the metrics of every account".into(),
        ));
    }
    Ok(())
}

/// `--emf FILE`: one Embedded Metric Format line per metric, to FILE or stdout (`-`).
fn write_emf(emf: Option<&Path>, metrics: &[String]) -> Result<(), CliError> {
    let Some(path) = emf else {
        return Ok(());
    };
    let lines: String = metrics.iter().map(|m| format!("{m}\n")).collect();
    if path.as_os_str() == "-" {
        emit(&lines)
    } else {
        std::fs::write(path, lines)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))
    }
}

/// A sweep of every kind in one account: each kind's outcome in [`Kind::ALL`] order
/// (JSON: an object keyed by kind; table: one section per kind).
pub(super) struct SweptAll {
    kinds: Vec<(Kind, Result<Swept, CliError>)>,
}

impl SweptAll {
    /// Sweeps every kind in `wiring`'s account, one after the other.
    async fn run(
        wiring: &Wiring,
        policy: &Policy,
        region: &str,
        now: DateTime<Utc>,
    ) -> Result<SweptAll, CliError> {
        let mut kinds = Vec::new();
        for kind in Kind::ALL {
            kinds.push((
                kind,
                accounts::sweep(wiring, policy, kind, region, now).await,
            ));
        }
        Ok(SweptAll { kinds })
    }
}

impl AccountOutput for SweptAll {
    fn value(&self) -> Result<serde_json::Value, CliError> {
        let mut json = serde_json::Map::new();
        for (kind, result) in &self.kinds {
            let value = match result {
                Ok(swept) => to_value(swept)?,
                Err(e) => serde_json::json!({
                    "status": "failed",
                    "error": e.to_string(),
                    "exit_code": e.exit_code().code(),
                }),
            };
            json.insert(kind.to_string(), value);
        }
        Ok(serde_json::Value::Object(json))
    }
    fn json(&self) -> Result<String, CliError> {
        to_json(&self.value()?)
    }
    fn table(&self) -> String {
        let mut table = String::new();
        for (kind, result) in &self.kinds {
            match result {
                Ok(swept) => {
                    table.push_str(&format!("== {kind}\n"));
                    table.push_str(&swept.table());
                }
                Err(e) => table.push_str(&format!(
                    "== {kind}: failed: {}\n",
                    output::clean(&e.to_string())
                )),
            }
            table.push('\n');
        }
        table
    }
    // A kind that could not be swept at all counts as one failed action.
    fn failed_actions(&self) -> usize {
        self.kinds
            .iter()
            .map(|(_, r)| r.as_ref().map_or(1, JobOutcome::failed))
            .sum()
    }
}
