//! What the jobs return to Step Functions, typed: built from a step's result and
//! serialised only at the edge. Safety invariant 6: an output holds identifiers, stages
//! and counts, never a secret value; and it stays small (a state payload is limited to
//! 256 KiB), so long lists are cut at [`MAX_LISTED`] entries, the audit trail having all.

use serde::Serialize;

use crate::domain::api_rotation::{RotationStage, RotationStep};
use crate::domain::policy::Mode;
use crate::steps::accounts::AccountRun;
use crate::steps::api_keys::Advanced;
use crate::steps::certs::{CertSweep, Notified};
use crate::steps::iam_keys::{Applied, IamSweep};
use crate::steps::migration::{MigrationSweep, Transition};
use crate::steps::outcome::JobOutcome;

/// Entries listed in a job's result; the rest are counted (and in the audit trail).
pub const MAX_LISTED: usize = 100;

/// A sweep's result as a job returns it.
pub trait Returned: JobOutcome {
    type Output: Serialize;
    /// Units of work the run went through.
    fn total(&self) -> usize;
    fn returned(self) -> Self::Output;
}

/// `keyrotor-iam-keys` in one account.
#[derive(Debug, Serialize)]
pub struct IamKeysOutput {
    pub run_id: String,
    pub mode: Mode,
    pub total: usize,
    pub applied: Vec<Applied>,
    pub failed: usize,
}

impl Returned for IamSweep {
    type Output = IamKeysOutput;
    fn total(&self) -> usize {
        self.applied.len()
    }
    fn returned(self) -> IamKeysOutput {
        IamKeysOutput {
            total: self.applied.len(),
            failed: JobOutcome::failed(&self),
            run_id: self.run_id,
            mode: self.mode,
            applied: self.applied.into_iter().take(MAX_LISTED).collect(),
        }
    }
}

/// `keyrotor-migration` in one account.
#[derive(Debug, Serialize)]
pub struct MigrationOutput {
    pub run_id: String,
    pub mode: Mode,
    pub total: usize,
    /// One definition of "failed" (failed, conflict, blocked), as the CLI's: the fan-out
    /// adds it up over the accounts.
    pub failed: usize,
    pub transitions: Vec<Transition>,
}

impl Returned for MigrationSweep {
    type Output = MigrationOutput;
    fn total(&self) -> usize {
        self.transitions.len()
    }
    fn returned(self) -> MigrationOutput {
        MigrationOutput {
            total: self.transitions.len(),
            failed: JobOutcome::failed(&self),
            run_id: self.run_id,
            mode: self.mode,
            transitions: self.transitions.into_iter().take(MAX_LISTED).collect(),
        }
    }
}

/// `keyrotor-certs` in one account.
#[derive(Debug, Serialize)]
pub struct CertsOutput {
    pub run_id: String,
    pub total: usize,
    pub notifications: Vec<Notified>,
    pub failed: usize,
}

impl Returned for CertSweep {
    type Output = CertsOutput;
    fn total(&self) -> usize {
        self.notifications.len()
    }
    fn returned(self) -> CertsOutput {
        CertsOutput {
            total: self.notifications.len(),
            failed: JobOutcome::failed(&self),
            run_id: self.run_id,
            notifications: self.notifications.into_iter().take(MAX_LISTED).collect(),
        }
    }
}

/// A sweep in every account of `[accounts]`.
#[derive(Debug, Serialize)]
pub struct AcrossAccounts<T> {
    pub accounts: Vec<AccountEntry<T>>,
    pub total: usize,
    /// Failed units in the accounts that ran, plus one per account that failed.
    pub failed: usize,
    pub failed_accounts: usize,
}

/// An account's line in a multi-account job result: which, whether it succeeded, and its
/// result or its error.
#[derive(Debug, Serialize)]
pub struct AccountEntry<T> {
    pub account: String,
    pub name: String,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<T>,
}

impl<T> AccountEntry<T> {
    /// `run`'s line, with `result` made from its outcome.
    pub fn of<R>(run: AccountRun<R>, result: impl FnOnce(R) -> T) -> AccountEntry<T> {
        let (status, error_type, error, result) = match run.result {
            Ok(r) => ("succeeded", None, None, Some(result(r))),
            Err(e) => ("failed", Some(e.name()), Some(e.to_string()), None),
        };
        AccountEntry {
            account: run.target.account.as_str().to_owned(),
            name: run.target.name,
            status,
            error_type,
            error,
            result,
        }
    }
}

impl<O> AcrossAccounts<O> {
    /// The totals over `runs`, and each account's line.
    pub fn of<T: Returned<Output = O>>(runs: Vec<AccountRun<T>>) -> AcrossAccounts<O> {
        let failed_accounts = runs.iter().filter(|r| r.result.is_err()).count();
        let failed = crate::steps::outcome::failed_in(&runs) + failed_accounts;
        let total = runs
            .iter()
            .filter_map(|r| r.result.as_ref().ok())
            .map(Returned::total)
            .sum();
        AcrossAccounts {
            accounts: runs
                .into_iter()
                .map(|run| AccountEntry::of(run, Returned::returned))
                .collect(),
            total,
            failed,
            failed_accounts,
        }
    }
}

/// `keyrotor-api-key`: where one key's rotation stands and when its next step is due.
#[derive(Debug, Serialize)]
pub struct ApiKeyOutput {
    pub key: String,
    pub stage: Option<RotationStage>,
    pub new_key: Option<String>,
    pub steps: Vec<RotationStep>,
    pub next: Option<RotationStep>,
    pub next_at: Option<chrono::DateTime<chrono::Utc>>,
    /// For the state machine's Wait state.
    pub wait_seconds: i64,
    pub done: bool,
    /// The policy time the next step runs at (local runs move the clock with it).
    pub at: String,
}

impl ApiKeyOutput {
    pub fn of(done: Advanced, now: chrono::DateTime<chrono::Utc>) -> ApiKeyOutput {
        ApiKeyOutput {
            wait_seconds: done.next_at.map_or(0, |t| (t - now).num_seconds().max(0)),
            done: done.stage == Some(RotationStage::Deleted),
            at: done.next_at.unwrap_or(now).to_rfc3339(),
            key: done.key,
            stage: done.stage,
            new_key: done.new_key,
            steps: done.steps,
            next: done.next,
            next_at: done.next_at,
        }
    }
}

/// `keyrotor-record-failure`.
#[derive(Debug, Serialize)]
pub struct RecordedFailure {
    pub recorded: bool,
    pub resource: String,
    pub error: String,
    pub blocked: bool,
    pub notified: bool,
}

/// One API key whose rotation has a step due: an item of the sweep's Map.
#[derive(Debug, Clone, Serialize)]
pub struct KeyItem {
    pub key: String,
    pub account: String,
    /// One execution per key and day: Step Functions itself rejects a second one with the
    /// same name.
    pub execution: String,
    pub action: String,
    pub at: String,
}

/// Where a large plan's items were written.
#[derive(Debug, Serialize)]
pub struct ItemsAt {
    pub bucket: String,
    pub key: String,
}

/// `keyrotor-plan`.
#[derive(Debug, Serialize)]
pub struct PlanOutput {
    pub account: String,
    pub region: String,
    pub generated_at: String,
    pub mode: Mode,
    /// Empty when `large`: the items are in S3 (`items`).
    pub api_keys: Vec<KeyItem>,
    pub api_key_count: usize,
    pub api_keys_due: usize,
    pub large: bool,
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_accounts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<PlanAccount>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<ItemsAt>,
}

/// An account's line in a multi-account plan.
#[derive(Debug, Serialize)]
pub struct PlanAccount {
    #[serde(flatten)]
    pub line: AccountEntry<()>,
    /// API keys with a step due there (accounts that were planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_keys_due: Option<usize>,
}

/// `keyrotor-respond-decode`: the exposures an event reports, each one item of the respond
/// state machine's Map. Bounded by the event itself (at most 256 KiB).
#[derive(Debug, Serialize)]
pub struct DecodedEvent {
    pub exposures: Vec<crate::domain::respond::Exposure>,
    /// The region of the secrets a replacement is published in: the function's own.
    pub region: String,
}

/// `keyrotor-respond-notify`: one exposure's line in the respond execution's result (the
/// whole response is in the audit trail and the notification).
#[derive(Debug, Serialize)]
pub struct RespondedOutput {
    pub key: String,
    pub user: Option<String>,
    pub run_id: String,
    pub status: crate::steps::status::Status,
    /// The replacement key published, if any.
    pub replacement: Option<String>,
    /// The "Credential Exposed" notification was sent.
    pub notified: bool,
    /// A step of the response failed (the replacement could not be published): a person
    /// must finish it; the execution ends failed.
    pub failed: bool,
}
