//! API Gateway API key rotation: `keyrotor rotate api-key` and `keyrotor sweep --kind
//! api-keys`, both driving the [`Rotation`] state machine one step at a time.
//!
//! Each step: intent record, the AWS calls (each one safe to repeat: the replacement is
//! found by its name and rotation tag before one is created, the secret version is written
//! with the rotation token, stages and plan membership are read before they are changed),
//! outcome record, then the rotation record (compare-and-set). A rotation stopped anywhere
//! continues from its record on the next run and never creates a second replacement. The
//! old key keeps working until the replacement is published, verified and promoted, and
//! for the grace period after that. One run per key at a time (lease).
//!
//! The folder, by concern: [`rotate`] (on demand) and [`sweep`] (scheduled) are the entry
//! points; `run` records the decisions and starts rotations, `advance` carries out the due
//! steps (each an audited mutation), `effects` holds the AWS calls of each step and the
//! checks that guard them, `replacement` the pieces the rotation hook shares
//! ([`crate::steps::secret_rotation`]), and `store` the typed rotation records.

mod advance;
mod effects;
pub(crate) mod replacement;
mod rotate;
mod run;
pub(crate) mod store;
mod sweep;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StepError;
use super::status::Status;
use crate::domain::api_rotation::{Rotation, RotationStage, RotationStep, Trigger};
use crate::domain::inventory::{DiscoveryProblem, Inventory};
use crate::domain::model::{AccountId, ApiKey, Kind};
use crate::domain::plan::Plan;
use crate::domain::policy::Mode;
use crate::ports::{
    ApiKeyAdmin, ApiKeyInventory, AuditStore, Caller, Identity, Notifier, PortError,
    SecretInventory, SecretVersions, StateStore,
};

pub use replacement::lease_name;
pub use rotate::rotate;
pub use sweep::sweep;

/// API Gateway's quota of API keys per account and region.
pub const API_KEY_QUOTA: usize = 10_000;

/// The ports a rotation uses.
pub struct ApiKeyPorts<'a> {
    pub identity: &'a dyn Identity,
    pub keys: &'a dyn ApiKeyInventory,
    pub secret_list: &'a dyn SecretInventory,
    pub admin: &'a dyn ApiKeyAdmin,
    pub secrets: &'a dyn SecretVersions,
    pub state: &'a dyn StateStore,
    pub audit: &'a dyn AuditStore,
    /// Tells the owner when a key was rotated or a rotation is blocked.
    pub notifier: &'a dyn Notifier,
}

/// What a run did with one key's rotation.
#[derive(Debug, Clone, Serialize)]
pub struct Advanced {
    /// The key being replaced.
    pub key: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// Steps carried out by this run, in order.
    pub steps: Vec<RotationStep>,
    /// The rotation's stage after this run (none: not started).
    pub stage: Option<RotationStage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_key: Option<String>,
    /// The next step and when it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<RotationStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_at: Option<DateTime<Utc>>,
    /// `done` (every due step carried out), `dry-run`, `blocked`, `failed` or `conflict`.
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The AWS error that stopped a `failed` step, as classified.
    #[serde(skip)]
    pub cause: Option<PortError>,
}

/// The sweep's result.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeySweep {
    pub run_id: String,
    pub mode: Mode,
    pub region: String,
    pub plan: Plan,
    pub rotations: Vec<Advanced>,
}

impl ApiKeySweep {
    pub fn failed(&self) -> usize {
        self.rotations
            .iter()
            .filter(|r| r.status.is_failure())
            .count()
    }
}

/// Reads the rotation records of one account and region. An item that cannot be decoded
/// is reported (a discovery problem naming it) and skipped: one bad item never stops the
/// rotations of the other keys. Its own key gets no new rotation meanwhile, because a
/// rotation starts only by creating the item (compare-and-set on an absent item).
pub async fn rotations(
    state: &dyn StateStore,
    account: &AccountId,
    region: &str,
) -> Result<(Vec<Rotation>, Vec<DiscoveryProblem>), StepError> {
    let store = store::RotationStore::new(state, account, region);
    let (found, unreadable) = store.load().await?;
    let pk = store.partition();
    let problems = unreadable
        .into_iter()
        .map(|item| {
            let why = item.why;
            tracing::warn!(item = %item.key, partition = %pk, "unreadable rotation record skipped: {why}");
            DiscoveryProblem {
                kind: Kind::ApiKeys,
                region: region.to_owned(),
                message: format!(
                    "state table {pk}: {why}; API key {} is left alone until the item is fixed or deleted",
                    item.key
                ),
            }
        })
        .collect();
    Ok((found, problems))
}

/// The inventory of API keys, secrets and rotations of one region.
async fn inventory(
    ports: &ApiKeyPorts<'_>,
    caller: &Caller,
    region: &str,
) -> Result<Inventory, StepError> {
    let mut inv = Inventory::empty(caller.account.clone(), region);
    let (found, problems) = rotations(ports.state, &caller.account, region).await?;
    inv.api_rotations = found;
    inv.problems.extend(problems);
    inv.secrets = ports.secret_list.secrets().await?;
    inv.api_keys = ports.keys.api_keys().await?;
    Ok(inv)
}

impl Advanced {
    fn none(key: &ApiKey) -> Advanced {
        Advanced {
            key: key.id.clone(),
            name: key.name.clone(),
            secret: key.bound_secret().map(str::to_owned),
            trigger: None,
            steps: Vec::new(),
            stage: None,
            new_key: None,
            next: None,
            next_at: None,
            status: Status::Done,
            error: None,
            cause: None,
        }
    }
}

/// The rotations the plan shows as due, with the discovery the CLI needs for `plan`.
pub async fn load_rotations(
    state: &dyn StateStore,
    account: &AccountId,
    region: &str,
) -> Result<(Vec<Rotation>, Vec<DiscoveryProblem>), StepError> {
    match rotations(state, account, region).await {
        Err(StepError::Port(PortError::NotFound { .. })) => Ok((Vec::new(), Vec::new())),
        other => other,
    }
}

#[cfg(test)]
mod tests;
