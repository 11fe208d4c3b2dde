//! `keyrotor sweep`: carries out what is due. With no `--kind`, every kind in turn, in
//! [`Kind::ALL`] order, as the scheduled sweep does; with `--kind`, that kind alone; with
//! `--via step-functions`, the deployed sweep.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::accounts::{self, AccountOutput, Swept};
use super::args::{KindArg, RemoteArgs, Runner, kinds};
use super::wiring::Scope;
use super::{CliError, Context, Exit, OutputFormat, emit, output, remote, to_json};
use crate::domain::model::Kind;
use crate::domain::policy::Policy;

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
    let now = ctx.clock.now();
    let (policy, region) = (&ctx.policy, ctx.region.as_str());
    if policy.accounts.is_multi_account() {
        refuse_emf_across_accounts(emf)?;
        let runs = accounts::fan_out(ctx.home(), policy, async |scope: Scope<'_>| {
            accounts::sweep(scope, policy, kind, region, now).await
        })
        .await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let done = accounts::sweep(ctx.home(), policy, kind, region, now).await?;
    write_emf(emf, &done.metrics)?;
    emit(match ctx.output {
        OutputFormat::Json => &done.json,
        OutputFormat::Table => &done.table,
    })?;
    if done.failed > 0 {
        eprintln!("keyrotor: error: {}", output::clean_lines(&done.failure));
        return Ok(Exit::Failed);
    }
    Ok(Exit::Success)
}

/// No `--kind`: every kind, one after the other; a kind that fails does not stop the
/// others. The exit code is the worst of the kinds'.
async fn every_kind(ctx: &Context, emf: Option<&Path>) -> Result<Exit, CliError> {
    let now = ctx.clock.now();
    let (policy, region) = (&ctx.policy, ctx.region.as_str());
    if policy.accounts.is_multi_account() {
        refuse_emf_across_accounts(emf)?;
        let runs = accounts::fan_out(ctx.home(), policy, async |scope: Scope<'_>| {
            SweptAll::run(scope, policy, region, now).await
        })
        .await?;
        return accounts::emit_runs(&runs, ctx.output);
    }
    let done = SweptAll::run(ctx.home(), policy, region, now).await?;
    let metrics: Vec<String> = done
        .kinds
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .flat_map(|s| s.metrics.iter().cloned())
        .collect();
    write_emf(emf, &metrics)?;
    emit(match ctx.output {
        OutputFormat::Json => &done.json,
        OutputFormat::Table => &done.table,
    })?;
    let mut exit = Exit::Success;
    for (kind, result) in &done.kinds {
        match result {
            Ok(swept) if swept.failed > 0 => {
                eprintln!(
                    "keyrotor: error: {kind}: {}",
                    output::clean_lines(&swept.failure)
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

/// A sweep of every kind in one account: each kind's outcome in [`Kind::ALL`] order, and
/// the combined output (JSON: an object keyed by kind; table: one section per kind).
pub(super) struct SweptAll {
    kinds: Vec<(Kind, Result<Swept, CliError>)>,
    json: String,
    table: String,
}

impl SweptAll {
    /// Sweeps every kind in `scope`'s account, one after the other.
    async fn run(
        scope: Scope<'_>,
        policy: &Policy,
        region: &str,
        now: DateTime<Utc>,
    ) -> Result<SweptAll, CliError> {
        let mut kinds = Vec::new();
        for kind in Kind::ALL {
            kinds.push((
                kind,
                accounts::sweep(scope, policy, kind, region, now).await,
            ));
        }
        let mut json = serde_json::Map::new();
        let mut table = String::new();
        for (kind, result) in &kinds {
            match result {
                Ok(swept) => {
                    let value = serde_json::from_str(&swept.json)
                        .map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))?;
                    json.insert(kind.to_string(), value);
                    table.push_str(&format!("== {kind}\n"));
                    table.push_str(&swept.table);
                }
                Err(e) => {
                    json.insert(
                        kind.to_string(),
                        serde_json::json!({
                            "status": "failed",
                            "error": e.to_string(),
                            "exit_code": e.exit_code().code(),
                        }),
                    );
                    table.push_str(&format!(
                        "== {kind}: failed: {}\n",
                        output::clean(&e.to_string())
                    ));
                }
            }
            table.push('\n');
        }
        Ok(SweptAll {
            json: to_json(&json)?,
            table,
            kinds,
        })
    }
}

impl AccountOutput for SweptAll {
    fn json(&self) -> &str {
        &self.json
    }
    fn table(&self) -> &str {
        &self.table
    }
    // A kind that could not be swept at all counts as one failed action.
    fn failed_actions(&self) -> usize {
        self.kinds
            .iter()
            .map(|(_, r)| r.as_ref().map_or(1, |s| s.failed))
            .sum()
    }
}
