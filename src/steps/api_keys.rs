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

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{StepError, new_run_id, with_lease};
use crate::audit::AuditLog;
use crate::domain::action::ActionType;
use crate::domain::api_rotation::{
    ApiKeySecret, Rotation, RotationStage, RotationStep, TAG_REPLACES, TAG_ROTATION, Trigger,
};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::inventory::{DiscoveryProblem, Inventory};
use crate::domain::model::{AccountId, ApiKey, Kind};
use crate::domain::plan::{self, Plan};
use crate::domain::policy::{Mode, Policy};
use crate::domain::scope;
use crate::ports::{
    ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory, AuditStore, Caller, Clock, Identity, Notification,
    Notifier, PortError, SecretInventory, SecretValue, SecretVersions, StateStore,
};

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
    pub status: &'static str,
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
            .filter(|r| matches!(r.status, "failed" | "blocked" | "conflict"))
            .count()
    }
}

/// Why a step did not complete.
pub(crate) enum Stop {
    /// Proceeding would risk a client: nothing more is done until a person looks.
    Blocked(String),
    Port(PortError),
}

impl From<PortError> for Stop {
    fn from(e: PortError) -> Self {
        Stop::Port(e)
    }
}

/// The lease serialising work on one API key.
pub fn lease_name(account: &AccountId, region: &str, key: &str) -> String {
    format!("api-key#{account}#{region}#{key}")
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
    let pk = Rotation::partition(account.as_str(), region);
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for item in state.list(&pk).await? {
        match Rotation::from_item(&item.sk, item.version, &item.attrs) {
            Ok(r) => found.push(r),
            Err(why) => {
                tracing::warn!(item = %item.sk, partition = %pk, "unreadable rotation record skipped: {why}");
                problems.push(DiscoveryProblem {
                    kind: Kind::ApiKeys,
                    region: region.to_owned(),
                    message: format!(
                        "state table {pk}: {why}; API key {} is left alone until the item is fixed or deleted",
                        item.sk
                    ),
                });
            }
        }
    }
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

/// Rotates one key now, on demand: `key_ref` is an API key id or an exact name. Continues
/// the key's rotation if one is in progress. Carries out every step that is due: through
/// promotion, and for `Trigger::Compromised` also the retirement of the old key.
pub async fn rotate(
    ports: &ApiKeyPorts<'_>,
    policy: &Policy,
    region: &str,
    key_ref: &str,
    trigger: Trigger,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Advanced, StepError> {
    super::require_enforce(policy, &format!("rotating API key {key_ref}"))?;
    let caller = ports.identity.caller().await?;
    let inv = inventory(ports, &caller, region).await?;
    // A key its own rotation already deleted (a repeated or duplicate execution): done.
    if let Some(r) = inv
        .api_rotations
        .iter()
        .find(|r| r.old_key == key_ref.trim() && r.stage == RotationStage::Deleted)
        && !inv.api_keys.iter().any(|k| k.id == r.old_key)
    {
        return Ok(Advanced {
            key: r.old_key.clone(),
            name: r.name.clone(),
            secret: Some(r.secret.clone()),
            trigger: Some(r.trigger),
            steps: Vec::new(),
            stage: Some(RotationStage::Deleted),
            new_key: r.new_key.clone(),
            next: None,
            next_at: None,
            status: "done",
            error: None,
            cause: None,
        });
    }
    let gone;
    let key = match resolve(&inv.api_keys, key_ref, region) {
        Ok(key) => key,
        // A run that deleted the old key stopped before recording it (the response or the
        // record was lost): the rotation goes on, and its Delete step finds nothing left.
        Err(e) => match inv
            .api_rotations
            .iter()
            .find(|r| r.old_key == key_ref.trim() && r.stage == RotationStage::Retired)
        {
            Some(r) => {
                gone = ApiKey {
                    id: r.old_key.clone(),
                    name: r.name.clone(),
                    enabled: false,
                    created: r.started_at,
                    last_updated: None,
                    tags: Default::default(),
                    usage_plans: Vec::new(),
                };
                &gone
            }
            None => return Err(e),
        },
    };
    let run_id = new_run_id(wall.now());
    let run = Run {
        ports,
        policy,
        now,
        wall,
        log: AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone()),
        account: caller.account.clone(),
        region: region.to_owned(),
    };
    let existing = inv
        .api_rotations
        .iter()
        .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted);
    let work = async {
        let rotation = match existing {
            Some(r) if trigger == Trigger::Compromised && r.trigger != Trigger::Compromised => {
                run.escalate_to_compromised(r).await?
            }
            Some(r) => r.clone(),
            None => {
                if let Err(why) = preflight(ports, key, &inv, policy, now).await? {
                    return Err(StepError::InvalidInput(format!(
                        "API key {} ({}) cannot be rotated: {why}",
                        key.id, key.name
                    )));
                }
                run.start(key, trigger).await?
            }
        };
        let done = run.advance(rotation).await?;
        match done.status {
            "blocked" => Err(StepError::Blocked(format!(
                "rotation of API key {} ({}) is blocked: {}",
                key.id,
                key.name,
                done.error.clone().unwrap_or_default()
            ))),
            _ => Ok(done),
        }
    };
    let done = with_lease(
        ports.state,
        &lease_name(&caller.account, region, &key.id),
        &format!("API key {} ({})", key.id, key.name),
        &run_id,
        wall,
        work,
    )
    .await;
    run.log.finish(done, wall.now()).await
}

/// Finds a key by id, or by exact name when the name is unique.
fn resolve<'a>(keys: &'a [ApiKey], key_ref: &str, region: &str) -> Result<&'a ApiKey, StepError> {
    let key_ref = key_ref.trim();
    if let Some(k) = keys.iter().find(|k| k.id == key_ref) {
        return Ok(k);
    }
    let named: Vec<&ApiKey> = keys.iter().filter(|k| k.name == key_ref).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(StepError::InvalidInput(format!(
            "no API key with id or name {key_ref:?} in {region}; list them with `keyrotor plan --kind api-keys` or `aws apigateway get-api-keys`"
        ))),
        many => Err(StepError::InvalidInput(format!(
            "{} API keys are named {key_ref:?} in {region} ({}); pass the id instead",
            many.len(),
            many.iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Whether a rotation of `key` may start: `Err(reason)` names what is wrong and how to fix
/// it. Reads only.
async fn preflight(
    ports: &ApiKeyPorts<'_>,
    key: &ApiKey,
    inv: &Inventory,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Result<(), String>, PortError> {
    if let Some(e) = scope::api_key_exclusion(&key.name, &key.tags, now, policy) {
        return Ok(Err(format!(
            "it is out of keyrotor's scope ({}): {}",
            e.code(),
            e.detail()
        )));
    }
    let Some(secret) = key.bound_secret() else {
        return Ok(Err(
            "it is not managed: tag it keyrotor:secret = <name of the secret its consumers read>"
                .into(),
        ));
    };
    if !key.enabled {
        return Ok(Err(
            "it is disabled; keyrotor rotates enabled keys only".into()
        ));
    }
    if key.usage_plans.is_empty() {
        return Ok(Err(
            "it is in no usage plan, so a replacement would not work for any API either; attach it to its usage plans first".into(),
        ));
    }
    let limit = API_KEY_QUOTA.saturating_sub(policy.api_keys.key_headroom as usize);
    if inv.api_keys.len() >= limit {
        return Ok(Err(format!(
            "the region has {} API keys, within [api_keys] key_headroom = {} of API Gateway's quota of {API_KEY_QUOTA}; delete unused keys or ask for a quota increase",
            inv.api_keys.len(),
            policy.api_keys.key_headroom
        )));
    }
    let Some(current) = ports
        .secrets
        .value(secret, None, Some("AWSCURRENT"))
        .await?
    else {
        return Ok(Err(format!(
            "its secret {secret:?} (tag keyrotor:secret) does not exist or has no string value; create it with {{\"apiKeyId\": \"{}\", \"value\": ...}}",
            key.id
        )));
    };
    let current = match ApiKeySecret::parse(current.expose()) {
        Ok(c) => c,
        Err(why) => {
            return Ok(Err(format!(
                "the AWSCURRENT value of secret {secret:?} {why}; fix the secret, then run again"
            )));
        }
    };
    if current.api_key_id != key.id {
        return Ok(Err(format!(
            "secret {secret:?} holds API key {}, not {}; fix the secret or the tag",
            current.api_key_id, key.id
        )));
    }
    // The tag on the key is the key owner's word; the secret must agree to hold the key.
    super::guard::api_key_bound(
        ports.admin,
        ports.secrets,
        &key.id,
        secret,
        inv.account.as_str(),
    )
    .await
}

/// Plans the API keys of `region` and carries out every rotation step that is due: new
/// rotations for keys past `max_age_days`, and the next steps (including retire and
/// delete, when their time has come) of rotations in progress.
pub async fn sweep(
    ports: &ApiKeyPorts<'_>,
    policy: &Policy,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<ApiKeySweep, StepError> {
    let caller = ports.identity.caller().await?;
    let inv = inventory(ports, &caller, region).await?;
    let plan = plan::plan(&inv, now, policy, &[Kind::ApiKeys]);
    let run_id = new_run_id(wall.now());
    let run = Run {
        ports,
        policy,
        now,
        wall,
        log: AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone()),
        account: caller.account.clone(),
        region: region.to_owned(),
    };
    let mut out = Vec::new();
    let due: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys)
        .collect();
    let progress = crate::progress::Phase::start("API keys", due.len());
    for action in due {
        progress.step();
        let Some(key) = inv.api_keys.iter().find(|k| k.id == action.resource) else {
            continue;
        };
        let existing = inv
            .api_rotations
            .iter()
            .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted)
            .cloned();
        if policy.mode == Mode::Plan {
            out.push(
                run.dry_run(key, action.action, &action.detail, existing)
                    .await?,
            );
            continue;
        }
        let work = async {
            let rotation = match existing {
                Some(r) => r,
                None => match preflight(ports, key, &inv, policy, now).await? {
                    Ok(()) => run.start(key, Trigger::Age).await?,
                    Err(why) => return run.blocked_start(key, why).await,
                },
            };
            run.advance(rotation).await
        };
        let result = with_lease(
            ports.state,
            &lease_name(&caller.account, region, &key.id),
            &format!("API key {} ({})", key.id, key.name),
            &run_id,
            wall,
            work,
        )
        .await;
        match result {
            Ok(done) => out.push(done),
            Err(StepError::InProgress(why)) => out.push(Advanced {
                status: "conflict",
                error: Some(why),
                ..Advanced::none(key)
            }),
            Err(e) => return run.log.finish(Err(e), wall.now()).await,
        }
    }
    run.log.anchor(wall.now()).await?;
    Ok(ApiKeySweep {
        run_id,
        mode: policy.mode,
        region: region.to_owned(),
        plan,
        rotations: out,
    })
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
            status: "done",
            error: None,
            cause: None,
        }
    }
}

/// One run's context.
struct Run<'a> {
    ports: &'a ApiKeyPorts<'a>,
    policy: &'a Policy,
    now: DateTime<Utc>,
    wall: &'a dyn Clock,
    log: AuditLog<'a>,
    account: AccountId,
    region: String,
}

impl Run<'_> {
    fn entry(
        &self,
        key: &str,
        action: &str,
        reason: &str,
        (phase, outcome): (Phase, Option<Outcome>),
        detail: String,
        after: Option<String>,
    ) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::ApiKeys,
                account: self.account.to_string(),
                region: self.region.clone(),
                id: key.to_owned(),
            },
            action: action.to_owned(),
            phase,
            outcome,
            reason: reason.to_owned(),
            detail,
            before: None,
            after,
            dry_run: false,
            policy_time: self.now,
        }
    }

    async fn append(&self, entry: Entry) -> Result<(), StepError> {
        self.log.append(&entry, self.wall.now()).await?;
        Ok(())
    }

    /// Records the decision to rotate (no AWS change yet).
    async fn start(&self, key: &ApiKey, trigger: Trigger) -> Result<Rotation, StepError> {
        let named = key.bound_secret().unwrap_or_default();
        // Pinned by ARN from here on: a secret deleted and created again under the same
        // name (by anyone who may create secrets) is not the one this rotation writes to.
        let described = self.ports.secrets.describe(named).await?;
        let secret = described.as_ref().map_or(named, |d| d.arn.as_str());
        let token = uuid::Uuid::new_v4().simple().to_string();
        let rotation = Rotation::start(
            &key.id,
            &key.name,
            secret,
            &key.usage_plans,
            token,
            trigger,
            self.now,
        );
        let detail = format!(
            "rotation {} of {} ({}): replacement {} in usage plans [{}], published to {secret}",
            rotation.token,
            key.id,
            trigger.as_str(),
            rotation.replacement_name(),
            key.usage_plans.join(", ")
        );
        self.append(self.entry(
            &key.id,
            "start",
            trigger.as_str(),
            (Phase::Intent, None),
            detail.clone(),
            None,
        ))
        .await?;
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        let written = match self
            .ports
            .state
            .put_versioned(&pk, &key.id, 0, &rotation.attrs())
            .await
        {
            Ok(written) => written,
            Err(e) => {
                // The intent has its outcome even when the record could not be written.
                self.append(self.entry(
                    &key.id,
                    "start",
                    trigger.as_str(),
                    (Phase::Outcome, Some(Outcome::Failed)),
                    e.to_string(),
                    None,
                ))
                .await?;
                return Err(e.into());
            }
        };
        if !written {
            self.append(self.entry(
                &key.id,
                "start",
                trigger.as_str(),
                (Phase::Outcome, Some(Outcome::Skipped)),
                "another run started a rotation of this key first".into(),
                None,
            ))
            .await?;
            return Err(StepError::InProgress(format!(
                "in progress: another run started a rotation of API key {} first",
                key.id
            )));
        }
        self.append(self.entry(
            &key.id,
            "start",
            trigger.as_str(),
            (Phase::Outcome, Some(Outcome::Succeeded)),
            detail,
            Some(RotationStage::Started.as_str().to_owned()),
        ))
        .await?;
        Ok(Rotation {
            version: 1,
            ..rotation
        })
    }

    /// A key reported leaked while its rotation is under way: the rotation goes on, but the
    /// old key is retired as soon as the replacement is promoted (no grace period).
    async fn escalate_to_compromised(&self, r: &Rotation) -> Result<Rotation, StepError> {
        let detail = format!(
            "reported compromised during rotation {} ({}): the old key is retired as soon as the replacement is promoted",
            r.token,
            r.stage.as_str()
        );
        self.append(self.entry(
            &r.old_key,
            "escalate",
            Trigger::Compromised.as_str(),
            (Phase::Decision, Some(Outcome::Succeeded)),
            detail,
            None,
        ))
        .await?;
        let next = Rotation {
            trigger: Trigger::Compromised,
            ..r.clone()
        };
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        if !self
            .ports
            .state
            .put_versioned(&pk, &r.old_key, r.version, &next.attrs())
            .await?
        {
            return Err(StepError::InProgress(format!(
                "in progress: the rotation of {} was changed by another run; run the command again",
                r.old_key
            )));
        }
        Ok(Rotation {
            version: r.version + 1,
            ..next
        })
    }

    async fn blocked_start(&self, key: &ApiKey, why: String) -> Result<Advanced, StepError> {
        self.append(self.entry(
            &key.id,
            "start",
            "max-age-exceeded",
            (Phase::Decision, Some(Outcome::Blocked)),
            why.clone(),
            None,
        ))
        .await?;
        Ok(Advanced {
            status: "blocked",
            error: Some(why),
            ..Advanced::none(key)
        })
    }

    async fn dry_run(
        &self,
        key: &ApiKey,
        action: ActionType,
        detail: &str,
        rotation: Option<Rotation>,
    ) -> Result<Advanced, StepError> {
        let mut entry = self.entry(
            &key.id,
            action.as_str(),
            "mode-plan",
            (Phase::Decision, Some(Outcome::Planned)),
            format!("mode = plan, not carried out: {detail}"),
            None,
        );
        entry.dry_run = true;
        self.append(entry).await?;
        let next = rotation.as_ref().and_then(|r| r.next(self.policy));
        Ok(Advanced {
            status: "dry-run",
            stage: rotation.as_ref().map(|r| r.stage),
            new_key: rotation.as_ref().and_then(|r| r.new_key.clone()),
            next: next.map(|n| n.0),
            next_at: next.map(|n| n.1),
            ..Advanced::none(key)
        })
    }

    /// Carries out every step of `rotation` that is due now, in order, stopping at the
    /// first that fails or is not due yet.
    async fn advance(&self, mut rotation: Rotation) -> Result<Advanced, StepError> {
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        let mut steps = Vec::new();
        let result = |rotation: &Rotation,
                      steps: Vec<RotationStep>,
                      status: &'static str,
                      error: Option<String>| {
            let next = rotation.next(self.policy);
            Advanced {
                key: rotation.old_key.clone(),
                name: rotation.name.clone(),
                secret: Some(rotation.secret.clone()),
                trigger: Some(rotation.trigger),
                steps,
                stage: Some(rotation.stage),
                new_key: rotation.new_key.clone(),
                next: next.map(|n| n.0),
                next_at: next.map(|n| n.1),
                status,
                error,
                cause: None,
            }
        };
        while let Some((step, due)) = rotation.next(self.policy) {
            if due > self.now {
                break;
            }
            let reason = rotation.trigger.as_str();
            let id = rotation.old_key.clone();
            self.append(self.entry(
                &id,
                step.as_str(),
                reason,
                (Phase::Intent, None),
                self.intent(&rotation, step),
                None,
            ))
            .await?;
            let effect = self.step(&rotation, step).await;
            let new_key = match effect {
                Ok(new_key) => new_key,
                Err(stop) => {
                    let (outcome, status, message, cause) = match stop {
                        Stop::Blocked(m) => (Outcome::Blocked, "blocked", m, None),
                        Stop::Port(e) => (Outcome::Failed, "failed", e.to_string(), Some(e)),
                    };
                    if outcome == Outcome::Blocked {
                        self.notify(Notification {
                            event: "action-blocked".into(),
                            resource: id.clone(),
                            owner: self.policy.notifications.default_contact.clone(),
                            subject: format!(
                                "keyrotor: {} of API key {} ({}) was blocked",
                                step.as_str(),
                                rotation.name,
                                id
                            )
                            .chars()
                            .take(100)
                            .collect(),
                            message: format!(
                                "{message}.\nNothing was changed by this step; the rotation stays at {} and the step is tried again by the next sweep once the cause is fixed.",
                                rotation.stage.as_str()
                            ),
                            at: Some(self.now),
                            undo: Some(format!(
                                "fix the cause, then `keyrotor rotate api-key {id}` continues the rotation"
                            )),
                        })
                        .await;
                    }
                    self.append(self.entry(
                        &id,
                        step.as_str(),
                        reason,
                        (Phase::Outcome, Some(outcome)),
                        message.clone(),
                        None,
                    ))
                    .await?;
                    return Ok(Advanced {
                        cause,
                        ..result(&rotation, steps, status, Some(message))
                    });
                }
            };
            let mut next = rotation.advanced(step, self.now);
            if let Some(k) = new_key {
                next.new_key = Some(k);
            }
            self.append(self.entry(
                &id,
                step.as_str(),
                reason,
                (Phase::Outcome, Some(Outcome::Succeeded)),
                format!("now {}", next.stage.as_str()),
                next.new_key.clone(),
            ))
            .await?;
            if !self
                .ports
                .state
                .put_versioned(&pk, &id, rotation.version, &next.attrs())
                .await?
            {
                return Ok(result(
                    &rotation,
                    steps,
                    "conflict",
                    Some(
                        "the rotation record was changed by another run; the next run re-reads it"
                            .into(),
                    ),
                ));
            }
            next.version = rotation.version + 1;
            steps.push(step);
            rotation = next;
            if step == RotationStep::Promote {
                self.notify(self.rotated(&rotation)).await;
            }
        }
        Ok(result(&rotation, steps, "done", None))
    }

    /// The owner's message once the replacement is the secret's current value.
    fn rotated(&self, r: &Rotation) -> Notification {
        let new_key = r.new_key.as_deref().unwrap_or("the replacement");
        let retire = r.next(self.policy).map(|(_, at)| at);
        let retire_text = retire.map_or("the end of the grace period".to_owned(), |t| {
            t.format("%Y-%m-%d %H:%M UTC").to_string()
        });
        Notification {
            event: "api-key-rotated".into(),
            resource: r.old_key.clone(),
            owner: self.policy.notifications.default_contact.clone(),
            subject: format!("API key {} rotated: {new_key} is current", r.name)
                .chars()
                .take(100)
                .collect(),
            message: format!(
                "API key {} ({}) was rotated ({}). The new key {new_key} is the AWSCURRENT value of secret {} and is in every usage plan of the old key ({}).\nThe old key keeps working until {retire_text}; then keyrotor detaches and disables it, and deletes it {} days later.\nClients that read the secret pick the new value up on their next read.",
                r.name,
                r.old_key,
                r.trigger.as_str(),
                r.secret,
                r.plans.join(", "),
                self.policy.api_keys.recovery_days,
            ),
            at: retire.or(Some(self.now)),
            undo: Some(format!(
                "until {retire_text} both keys work; to go back, make the previous version of {} AWSCURRENT again (update-secret-version-stage) and keyrotor refuses to retire {}",
                r.secret, r.old_key
            )),
        }
    }

    /// Sends a notification; a failed delivery is logged and does not stop the rotation.
    async fn notify(&self, n: Notification) {
        crate::ports::notify_or_log(self.ports.notifier, &n).await;
    }

    fn intent(&self, r: &Rotation, step: RotationStep) -> String {
        let new = r.new_key.as_deref().unwrap_or("(not created yet)");
        match step {
            RotationStep::CreateReplacement => format!(
                "create {} (tag {TAG_ROTATION} = {}) and attach it to usage plans [{}]",
                r.replacement_name(),
                r.token,
                r.plans.join(", ")
            ),
            RotationStep::Publish => format!(
                "write the value of {new} to secret {} as version {} (AWSPENDING)",
                r.secret, r.token
            ),
            RotationStep::Verify => format!(
                "check {new} is enabled and in usage plans [{}], and the pending version names it",
                r.plans.join(", ")
            ),
            RotationStep::Promote => format!(
                "move AWSCURRENT of {} to version {} (the old value stays AWSPREVIOUS); both keys keep working for {} days",
                r.secret,
                r.token,
                match r.trigger {
                    Trigger::Compromised => 0,
                    _ => self.policy.api_keys.grace_days,
                }
            ),
            RotationStep::Retire => format!(
                "detach {} from usage plans [{}] and disable it ({new} serves them)",
                r.old_key,
                r.plans.join(", ")
            ),
            RotationStep::Delete => format!(
                "delete {} after {} days of recovery window",
                r.old_key, self.policy.api_keys.recovery_days
            ),
        }
    }

    /// The AWS calls of one step; returns the replacement's id when it creates one.
    async fn step(&self, r: &Rotation, step: RotationStep) -> Result<Option<String>, Stop> {
        let admin = self.ports.admin;
        let secrets = self.ports.secrets;
        let new_key = || {
            r.new_key.clone().ok_or_else(|| {
                Stop::Blocked(format!(
                    "the rotation record is at {} but names no replacement key; fix or delete the state-table item",
                    r.stage.as_str()
                ))
            })
        };
        match step {
            RotationStep::CreateReplacement => ensure_replacement(
                admin,
                self.ports.state,
                r,
                &Rotation::partition(self.account.as_str(), &self.region),
            )
            .await
            .map(Some),
            RotationStep::Publish => {
                // The value goes only into a secret the old key and the secret bind both
                // ways now (tags may have changed since the rotation started).
                self.bound(r, step).await?;
                let new = new_key()?;
                let value = admin.key_value(&new).await?;
                let body = ApiKeySecret {
                    api_key_id: new.clone(),
                    value: value.expose().to_owned(),
                };
                secrets
                    .put_pending(&r.secret, &r.token, &SecretValue::new(body.to_json()))
                    .await?;
                Ok(None)
            }
            RotationStep::Verify => {
                let new = new_key()?;
                let problems = self.check_replacement(r, &new).await?;
                let stages = secrets.stages(&r.secret).await?.unwrap_or_default();
                let staged = stages.get(&r.token).cloned().unwrap_or_default();
                let mut problems = problems;
                if !staged
                    .iter()
                    .any(|s| s == "AWSPENDING" || s == "AWSCURRENT")
                {
                    problems.push(format!(
                        "version {} of secret {} is not AWSPENDING",
                        r.token, r.secret
                    ));
                } else {
                    match secrets.value(&r.secret, Some(&r.token), None).await? {
                        Some(v) => match ApiKeySecret::parse(v.expose()) {
                            Ok(s) if s.api_key_id == new => {}
                            Ok(s) => problems.push(format!(
                                "the pending version names key {}, not {new}",
                                s.api_key_id
                            )),
                            Err(why) => problems.push(format!("the pending version {why}")),
                        },
                        None => problems.push("the pending version has no value".into()),
                    }
                }
                if problems.is_empty() {
                    Ok(None)
                } else {
                    // Possibly not visible yet (eventual consistency): a later run retries.
                    Err(Stop::Port(PortError::NotReady {
                        operation: "verify".into(),
                        message: format!(
                            "the replacement {new} is not ready: {}",
                            problems.join("; ")
                        ),
                    }))
                }
            }
            RotationStep::Promote => {
                // Moving AWSCURRENT changes what every consumer reads: the record alone
                // (state table) is not enough, AWS must show this rotation made the version.
                self.bound(r, step).await?;
                let new = new_key()?;
                self.proven_replacement(r, &new).await?;
                // AWSCURRENT must still hand out the old key (or already the replacement):
                // if a person moved it to another key meanwhile, promoting would take that
                // key from its consumers.
                match secrets.value(&r.secret, None, Some("AWSCURRENT")).await? {
                    Some(v) => match ApiKeySecret::parse(v.expose()) {
                        Ok(c) if c.api_key_id == r.old_key || c.api_key_id == new => {}
                        Ok(c) => {
                            return Err(Stop::Blocked(format!(
                                "not promoting: AWSCURRENT of secret {} now holds API key {}, neither {} nor its replacement {new}; someone changed the secret during the rotation — check it, then delete the rotation record to start over",
                                r.secret, c.api_key_id, r.old_key
                            )));
                        }
                        Err(why) => {
                            return Err(Stop::Blocked(format!(
                                "not promoting: the AWSCURRENT value of secret {} {why}",
                                r.secret
                            )));
                        }
                    },
                    None => {
                        return Err(Stop::Blocked(format!(
                            "not promoting: secret {} has no AWSCURRENT value",
                            r.secret
                        )));
                    }
                }
                let stages = secrets.stages(&r.secret).await?.ok_or_else(|| {
                    Stop::Blocked(format!("secret {} no longer exists", r.secret))
                })?;
                let holder = |stage: &str| {
                    stages
                        .iter()
                        .find(|(_, s)| s.iter().any(|x| x == stage))
                        .map(|(v, _)| v.clone())
                };
                if !stages.contains_key(&r.token) {
                    return Err(Stop::Blocked(format!(
                        "version {} of secret {} is gone; the rotation cannot be promoted",
                        r.token, r.secret
                    )));
                }
                let current = holder("AWSCURRENT");
                if current.as_deref() != Some(r.token.as_str()) {
                    secrets
                        .move_stage(&r.secret, "AWSCURRENT", Some(&r.token), current.as_deref())
                        .await?;
                }
                if stages
                    .get(&r.token)
                    .is_some_and(|s| s.iter().any(|x| x == "AWSPENDING"))
                {
                    secrets
                        .move_stage(&r.secret, "AWSPENDING", None, Some(&r.token))
                        .await?;
                }
                Ok(None)
            }
            RotationStep::Retire => {
                self.still_in_scope(r, step).await?;
                // Never take the old key away unless the key the secret hands out now (the
                // replacement, or a later one if the key was rotated again since) serves
                // every plan the old key serves now: those it served when the rotation
                // started, and any it joined since (read again here).
                let current = match secrets.value(&r.secret, None, Some("AWSCURRENT")).await? {
                    Some(v) => ApiKeySecret::parse(v.expose()).map_err(|why| {
                        Stop::Blocked(format!(
                            "refusing to retire {}: the AWSCURRENT value of secret {} {why}",
                            r.old_key, r.secret
                        ))
                    })?,
                    None => {
                        return Err(Stop::Blocked(format!(
                            "refusing to retire {}: secret {} has no AWSCURRENT value",
                            r.old_key, r.secret
                        )));
                    }
                };
                if current.api_key_id == r.old_key {
                    return Err(Stop::Blocked(format!(
                        "refusing to retire {}: AWSCURRENT of secret {} still names it",
                        r.old_key, r.secret
                    )));
                }
                let serves = self.plans_served(r).await?;
                let mut problems =
                    replacement_problems(admin, &current.api_key_id, &serves).await?;
                let joined: Vec<&String> = serves.iter().filter(|p| !r.plans.contains(p)).collect();
                if !problems.is_empty() && !joined.is_empty() {
                    problems.push(format!(
                        "{} joined usage plan(s) [{}] after the rotation started; attach {} to them too (aws apigateway create-usage-plan-key) or detach {} from them, and the next run retires it",
                        r.old_key,
                        joined.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                        current.api_key_id,
                        r.old_key
                    ));
                }
                if !problems.is_empty() {
                    return Err(Stop::Blocked(format!(
                        "refusing to retire {}: {}",
                        r.old_key,
                        problems.join("; ")
                    )));
                }
                for plan in &serves {
                    if admin.plan_keys(plan).await?.contains(&r.old_key) {
                        admin.detach(plan, &r.old_key).await?;
                    }
                }
                // A plan the key joined while it was being detached: it is still serving
                // there, so it stays enabled (the next run checks that plan too).
                let still = admin.key_plans(&r.old_key).await?;
                if !still.is_empty() {
                    return Err(Stop::Blocked(format!(
                        "refusing to disable {}: it joined usage plan(s) [{}] while it was being detached; it stays enabled there — the next run checks the replacement serves them too",
                        r.old_key,
                        still.join(", ")
                    )));
                }
                if admin.key(&r.old_key).await?.is_some_and(|k| k.enabled) {
                    admin.set_enabled(&r.old_key, false).await?;
                }
                Ok(None)
            }
            RotationStep::Delete => {
                self.still_in_scope(r, step).await?;
                // The recovery window is for putting the old key back: if someone did
                // (enabled, or in any usage plan again), it is in use and is not deleted.
                if let Some(old) = admin.key(&r.old_key).await? {
                    let mut back = Vec::new();
                    if old.enabled {
                        back.push("enabled again".to_owned());
                    }
                    for plan in admin.key_plans(&r.old_key).await? {
                        back.push(format!("attached to usage plan {plan}"));
                    }
                    if !back.is_empty() {
                        return Err(Stop::Blocked(format!(
                            "refusing to delete {}: it was {} during its recovery window, so a client may use it; disable and detach it, or untag it, to let keyrotor delete it",
                            r.old_key,
                            back.join(" and ")
                        )));
                    }
                }
                admin.delete_key(&r.old_key).await?;
                Ok(None)
            }
        }
    }

    /// The usage plans the old key serves now, with those it served when the rotation
    /// started (sorted, once each).
    async fn plans_served(&self, r: &Rotation) -> Result<Vec<String>, Stop> {
        let mut plans = self.ports.admin.key_plans(&r.old_key).await?;
        plans.extend(r.plans.iter().cloned());
        plans.sort();
        plans.dedup();
        Ok(plans)
    }

    /// Before retiring or deleting: the old key as API Gateway has it now must still be in
    /// scope (an exemption added, or a name outside `name_prefixes`, stops the rotation
    /// here: past promotion, stopping is safe). A key already gone has nothing to protect.
    async fn still_in_scope(&self, r: &Rotation, step: RotationStep) -> Result<(), Stop> {
        let Some(old) = self.ports.admin.key(&r.old_key).await? else {
            return Ok(());
        };
        if let Some(e) = scope::api_key_exclusion(&old.name, &old.tags, self.now, self.policy) {
            return Err(Stop::Blocked(format!(
                "not carrying out {} of {}: it is out of keyrotor's scope now ({}): {}; the rotation stays at {} (both keys work)",
                step.as_str(),
                r.old_key,
                e.code(),
                e.detail(),
                r.stage.as_str()
            )));
        }
        self.bound(r, step).await
    }

    /// The old key and the record's secret name each other now (both ways): a rotation
    /// record is state-table content, so it alone never decides which key is retired or
    /// which secret is written.
    async fn bound(&self, r: &Rotation, step: RotationStep) -> Result<(), Stop> {
        match super::guard::api_key_bound(
            self.ports.admin,
            self.ports.secrets,
            &r.old_key,
            &r.secret,
            self.account.as_str(),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(why) => Err(Stop::Blocked(format!(
                "not carrying out {} of {}: {why}; the rotation stays at {}",
                step.as_str(),
                r.old_key,
                r.stage.as_str()
            ))),
        }
    }

    /// Before promoting: the replacement named by the record is a key keyrotor made for
    /// this rotation (its rotation tag is the record's token and it replaces the old key),
    /// and the secret's version of that token holds it.
    async fn proven_replacement(&self, r: &Rotation, new: &str) -> Result<(), Stop> {
        let refuse = |why: String| {
            Err(Stop::Blocked(format!(
                "not promoting version {} of secret {}: {why}; the rotation record does not match AWS, so nothing was changed",
                r.token, r.secret
            )))
        };
        let Some(found) = self.ports.admin.key(new).await? else {
            return refuse(format!("the replacement {new} does not exist"));
        };
        let tag = |k: &str| found.tags.get(k).map(String::as_str);
        if tag(TAG_ROTATION) != Some(r.token.as_str()) || tag(TAG_REPLACES) != Some(&r.old_key) {
            return refuse(format!(
                "API key {new} was not made by this rotation (tags {TAG_ROTATION} = {:?}, {TAG_REPLACES} = {:?})",
                tag(TAG_ROTATION),
                tag(TAG_REPLACES)
            ));
        }
        match self
            .ports
            .secrets
            .value(&r.secret, Some(&r.token), None)
            .await?
            .map(|v| ApiKeySecret::parse(v.expose()))
        {
            Some(Ok(v)) if v.api_key_id == new => Ok(()),
            Some(Ok(v)) => refuse(format!(
                "that version holds API key {}, not {new}",
                v.api_key_id
            )),
            Some(Err(why)) => refuse(format!("that version {why}")),
            None => refuse("that version has no value".into()),
        }
    }

    async fn check_replacement(&self, r: &Rotation, new: &str) -> Result<Vec<String>, Stop> {
        Ok(replacement_problems(self.ports.admin, new, &r.plans).await?)
    }
}

/// The replacement of `old_key` for rotation `token`: the one an earlier attempt created
/// (found by `name` and its rotation tag), or a new one with the old key's description and
/// tags; attached to every plan in `plans`.
pub(crate) async fn ensure_replacement(
    admin: &dyn ApiKeyAdmin,
    state: &dyn StateStore,
    rotation: &Rotation,
    rotations_pk: &str,
) -> Result<String, Stop> {
    let (old_key, token, plans) = (&rotation.old_key, &rotation.token, &rotation.plans);
    let name = rotation.replacement_name();
    let Some(old) = admin.key(old_key).await? else {
        return Err(Stop::Blocked(format!(
            "API key {old_key} no longer exists; nothing to replace"
        )));
    };
    // A key with the replacement's name and this rotation's tag is adopted only when
    // keyrotor can prove it made it. keyrotor chooses the value (random, never stored) and
    // notes a digest of it before CreateApiKey; a key whose value has no such note was made
    // by someone else. The name and the token are not secret, so someone who can create
    // API keys could otherwise have keyrotor attach a key of theirs, with a value they
    // chose, to the old key's usage plans.
    let found: Vec<ApiKeyInfo> = admin
        .keys_named(&name)
        .await?
        .into_iter()
        .filter(|k| {
            k.name == name && k.tags.get(TAG_ROTATION).map(String::as_str) == Some(token.as_str())
        })
        .collect();
    let pk = format!("replacement-value#{rotations_pk}");
    let note = |value: &SecretValue| {
        use sha2::Digest;
        format!(
            "{old_key}#{token}#{}",
            hex::encode(sha2::Sha256::digest(value.expose().as_bytes()))
        )
    };
    let recorded = match &rotation.new_key {
        Some(k) => admin.key(k).await?.map(|_| k.clone()),
        None => None,
    };
    let id = match (found.as_slice(), recorded) {
        // The record names the replacement (the state table is keyrotor's alone).
        (_, Some(recorded)) if found.iter().all(|k| k.id == recorded) => recorded,
        ([], None) => {
            let value = SecretValue::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
            state
                .put_versioned(&pk, &note(&value), 0, &BTreeMap::new())
                .await?;
            let mut tags = old.tags.clone();
            tags.insert(TAG_ROTATION.into(), token.to_owned());
            tags.insert(TAG_REPLACES.into(), old_key.to_owned());
            admin
                .create_key(&name, old.description.as_deref(), &tags, &value)
                .await?
        }
        ([one], None)
            if state
                .get(&pk, &note(&admin.key_value(&one.id).await?))
                .await?
                .is_some() =>
        {
            one.id.clone()
        }
        (many, _) => {
            return Err(Stop::Blocked(format!(
                "API key(s) [{}] named {name} carry this rotation's tag, but keyrotor did not create them; delete them (aws apigateway delete-api-key) and the rotation goes on",
                many.iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    for plan in plans {
        if !admin.plan_keys(plan).await?.contains(&id) {
            admin.attach(plan, &id).await?;
        }
    }
    Ok(id)
}

/// What keeps key `new` from serving the consumers of usage plans `plans`.
pub(crate) async fn replacement_problems(
    admin: &dyn ApiKeyAdmin,
    new: &str,
    plans: &[String],
) -> Result<Vec<String>, PortError> {
    let mut problems = Vec::new();
    match admin.key(new).await? {
        None => problems.push(format!("the replacement {new} does not exist")),
        Some(k) if !k.enabled => problems.push(format!("the replacement {new} is disabled")),
        Some(_) => {}
    }
    let mut missing = BTreeSet::new();
    for plan in plans {
        if !admin.plan_keys(plan).await?.iter().any(|k| k == new) {
            missing.insert(plan.clone());
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "the replacement {new} is not in usage plans [{}]",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(problems)
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
#[path = "api_keys_tests.rs"]
mod tests;
