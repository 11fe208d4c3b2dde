//! The operations the CLI and the Lambdas run, over ports.
//!
//! A step reads the clock once, calls ports, asks the domain for decisions and writes every
//! decision through the audit log. Steps never touch the SDK.

pub mod accounts;
pub mod api_keys;
pub(crate) mod audited;
pub mod certs;
pub mod discover;
pub(crate) mod guard;
pub mod iam_keys;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
pub mod migration;
pub mod outcome;
pub mod remote;
pub mod report;
pub mod respond;
pub mod secret_rotation;
pub mod status;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::audit::{self, AuditLog, VerifyReport};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef, StoredRecord};
use crate::domain::inventory::Inventory;
use crate::domain::model::Kind;
use crate::domain::plan::{self, Plan};
use crate::domain::policy::Policy;
use crate::ports::{
    AuditQuery, AuditStore, Caller, Clock, Identity, PortError, PortResult, StateStore, TableAdmin,
    TableStatus,
};
use discover::DiscoveryPorts;

/// Safety invariant 7, held by the steps themselves: with `mode = "plan"` nothing is
/// changed. Every step that changes credentials on request (rotate an API key, apply or
/// roll back a migration; the rotation hook checks per protocol step) calls this first, so
/// the gate does not depend on each caller (CLI, Lambda, a future one) remembering it.
pub fn require_enforce(policy: &Policy, what: &str) -> Result<(), StepError> {
    if policy.mode == crate::domain::policy::Mode::Enforce {
        Ok(())
    } else {
        Err(StepError::Blocked(format!(
            "{what}: the policy's mode is \"plan\", which changes nothing; set mode = \"enforce\""
        )))
    }
}

/// Why a step stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The request names something that cannot be acted on; nothing was changed.
    #[error("{0}")]
    InvalidInput(String),
    /// Another run holds the lease on the same credentials.
    #[error("{0}")]
    InProgress(String),
    /// Going on could break a client; a person must look first. Nothing was changed.
    #[error("blocked: {0}")]
    Blocked(String),
    #[error(transparent)]
    Port(#[from] PortError),
}

impl StepError {
    /// Stable machine-readable name (Step Functions Retry/Catch, exit codes).
    pub fn name(&self) -> &'static str {
        match self {
            StepError::InvalidInput(_) => "KeyRotor.InvalidInput",
            StepError::InProgress(_) => "KeyRotor.Conflict",
            StepError::Blocked(_) => "KeyRotor.Blocked",
            StepError::Port(e) => e.name(),
        }
    }
}

/// How long a run may hold a lease before another run may take it over (a crashed run does
/// not block later ones for longer than this).
pub const LEASE_TTL_MINUTES: i64 = 15;

/// Runs `work` while holding lease `name` (on `what`, for the message); another run
/// holding it makes this one stop with [`StepError::InProgress`], having done nothing.
pub(crate) async fn with_lease<T, F>(
    state: &dyn StateStore,
    name: &str,
    what: &str,
    run_id: &str,
    wall: &dyn Clock,
    work: F,
) -> Result<T, StepError>
where
    F: std::future::Future<Output = Result<T, StepError>>,
{
    let ttl = chrono::Duration::minutes(LEASE_TTL_MINUTES);
    let acquired = match state.acquire_lease(name, run_id, wall.now(), ttl).await {
        Ok(acquired) => acquired,
        Err(e) => {
            // The lease may have been written and only the answer lost: give it back, or
            // every later run waits out the TTL. Best effort; the error that stops this run
            // is the first one.
            let _ = state.release_lease(name, run_id).await;
            return Err(e.into());
        }
    };
    if let Err(holder) = acquired {
        return Err(StepError::InProgress(format!(
            "in progress: another keyrotor run ({}) is working on {what} (lease {name} held until {}); wait for it to finish, or run again after that time if it crashed",
            holder.holder,
            holder.expires_at.to_rfc3339()
        )));
    }
    let result = work.await;
    let released = state.release_lease(name, run_id).await;
    let value = result?;
    released?;
    Ok(value)
}

/// Reads and decodes every item of state-table partition `pk`. An item that cannot be
/// decoded stops the caller (acting without it could repeat or skip a step); the error names
/// the item and says `fix`.
pub(crate) async fn read_records<T>(
    state: &dyn StateStore,
    pk: &str,
    decode: impl Fn(&str, u64, &std::collections::BTreeMap<String, String>) -> Result<T, String>,
    fix: &str,
) -> Result<Vec<T>, StepError> {
    state
        .list(pk)
        .await?
        .iter()
        .map(|item| {
            decode(&item.sk, item.version, &item.attrs).map_err(|e| {
                StepError::Port(PortError::InvalidResponse {
                    operation: "state table".into(),
                    message: format!("{pk}: {e}; {fix}"),
                })
            })
        })
        .collect()
}

/// Audit appends in flight at once (different resources never contend).
const AUDIT_CONCURRENCY: usize = 8;

/// A new run id: `run-<UTC time>-<random>`.
pub fn new_run_id(wall: DateTime<Utc>) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("run-{}-{}", wall.format("%Y%m%dT%H%M%SZ"), &random[..8])
}

/// What to plan: which kinds, as of when, and the region of regional services.
#[derive(Debug, Clone, Copy)]
pub struct PlanRequest<'a> {
    pub kinds: &'a [Kind],
    pub now: DateTime<Utc>,
    pub region: &'a str,
}

/// What `plan` produced.
#[derive(Debug)]
pub struct PlanOutcome {
    pub plan: Plan,
    /// What the plan was made from.
    pub inventory: Inventory,
    pub caller: Caller,
    /// Set when the plan was recorded to the audit table.
    pub run_id: Option<String>,
    pub recorded: usize,
}

/// Discovers, plans and, with `record`, writes every decision to the audit table as a
/// dry-run record. Without `record` nothing is written anywhere. IAM key lifecycles are
/// read from `state` when given (a missing state table means none has started).
pub async fn plan(
    identity: &dyn Identity,
    discovery: &DiscoveryPorts<'_>,
    state: Option<&dyn StateStore>,
    audit_store: Option<&dyn AuditStore>,
    policy: &Policy,
    request: &PlanRequest<'_>,
    wall_clock: &dyn Clock,
) -> PortResult<PlanOutcome> {
    let PlanRequest { kinds, now, region } = *request;
    let caller = identity.caller().await?;
    if let Some(store) = audit_store {
        // Fail before any discovery if the audit table is missing.
        store.last("keyrotor#probe").await?;
    }
    let mut inventory = Inventory::empty(caller.account.clone(), region);
    // Lifecycles in progress, when a state table is given; a missing table means none has
    // started yet.
    let state_error = |e: StepError| match e {
        StepError::Port(e) => e,
        e => PortError::InvalidResponse {
            operation: "state table".into(),
            message: e.to_string(),
        },
    };
    if let Some(state) = state {
        if kinds.contains(&Kind::IamKeys) {
            inventory.key_records = match iam_keys::key_records(state, &caller.account).await {
                Err(StepError::Port(PortError::NotFound { .. })) => Vec::new(),
                other => other.map_err(state_error)?,
            };
        }
        if kinds.contains(&Kind::ApiKeys) {
            let (found, problems) = api_keys::load_rotations(state, &caller.account, region)
                .await
                .map_err(state_error)?;
            inventory.api_rotations = found;
            inventory.problems.extend(problems);
        }
        if kinds.contains(&Kind::Migration) || kinds.contains(&Kind::IamKeys) {
            let records = migration::records(state, &caller.account)
                .await
                .map_err(state_error)?;
            inventory.migration_owned = migration::owning_keys(&records);
            if kinds.contains(&Kind::Migration) {
                inventory.migrating = records.into_iter().map(|r| r.user).collect();
            }
        }
    }
    let inventory = discover::discover(discovery, inventory, now, policy, kinds).await?;
    let plan = plan::plan(&inventory, now, policy, kinds);
    let Some(store) = audit_store else {
        return Ok(PlanOutcome {
            plan,
            inventory,
            caller,
            run_id: None,
            recorded: 0,
        });
    };
    let run_id = new_run_id(wall_clock.now());
    let log = AuditLog::new(store, run_id.clone(), caller.arn.clone());
    let recorded = log
        .finish(record_plan(&log, &plan, wall_clock).await, wall_clock.now())
        .await?;
    Ok(PlanOutcome {
        plan,
        inventory,
        caller,
        run_id: Some(run_id),
        recorded,
    })
}

/// The dry-run audit entries for a plan: one per action (`planned`) and one per decision not
/// to act (`skipped`).
pub fn plan_entries(plan: &Plan) -> Vec<Entry> {
    let actions = plan.actions.iter().map(|a| Entry {
        resource: ResourceRef {
            kind: a.kind,
            account: a.account.to_string(),
            region: a.region.clone(),
            id: a.resource.clone(),
        },
        action: a.action.as_str().to_owned(),
        phase: Phase::Decision,
        outcome: Some(Outcome::Planned),
        reason: a.reason.as_str().to_owned(),
        detail: a.detail.clone(),
        before: None,
        after: None,
        dry_run: true,
        policy_time: plan.generated_at,
    });
    let skipped = plan.skipped.iter().map(|s| Entry {
        resource: ResourceRef {
            kind: s.kind,
            account: s.account.to_string(),
            region: s.region.clone(),
            id: s.resource.clone(),
        },
        action: "none".to_owned(),
        phase: Phase::Decision,
        outcome: Some(Outcome::Skipped),
        reason: s.reason.clone(),
        detail: s.detail.clone(),
        before: None,
        after: None,
        dry_run: true,
        policy_time: plan.generated_at,
    });
    actions.chain(skipped).collect()
}

async fn record_plan(log: &AuditLog<'_>, plan: &Plan, wall_clock: &dyn Clock) -> PortResult<usize> {
    let entries = plan_entries(plan);
    let count = entries.len();
    futures::stream::iter(entries.iter())
        .map(|entry| log.append(entry, wall_clock.now()))
        .buffer_unordered(AUDIT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(count)
}

/// Creates the audit and state tables if missing.
pub async fn init(
    tables: &dyn TableAdmin,
    policy: &Policy,
) -> PortResult<[(String, TableStatus); 2]> {
    let audit = tables.ensure_audit_table(&policy.audit.table).await?;
    let state = tables.ensure_state_table(&policy.audit.state_table).await?;
    Ok([
        (policy.audit.table.clone(), audit),
        (policy.audit.state_table.clone(), state),
    ])
}

/// Audit records matching `query`, oldest first.
pub async fn audit_list(
    store: &dyn AuditStore,
    query: &AuditQuery,
) -> PortResult<Vec<StoredRecord>> {
    let mut items = store.query(query).await?;
    items.sort_by(|a, b| match (a, b) {
        (Ok(a), Ok(b)) => {
            (&a.recorded_at, &a.resource, a.seq).cmp(&(&b.recorded_at, &b.resource, b.seq))
        }
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(a), Err(b)) => a.resource.cmp(&b.resource),
    });
    Ok(items)
}

/// Walks every chain of the audit table.
pub async fn audit_verify(store: &dyn AuditStore) -> PortResult<VerifyReport> {
    Ok(audit::verify(store.all().await?))
}
