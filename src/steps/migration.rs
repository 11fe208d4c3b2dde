//! Migration from IAM user keys to a role: `keyrotor migrate plan|apply|status|rollback`
//! and `keyrotor sweep --kind migration` (adoption tracking and the stages after it).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::guard::{self, Removal};
use super::{StepError, discover, new_run_id, with_lease};
use crate::audit::AuditLog;
use crate::audit::record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::migration::{
    GUARD_POLICY_NAME, INLINE_POLICY_NAME, MigrationChange, MigrationFacts, MigrationRecord,
    MigrationStage, Permissions, RolePlan, WorkloadIdentity, guard_policy, next, role_plan,
};
use crate::domain::model::{AccountId, KeyStatus, Kind, TAG_MIGRATE_TO, TAG_OWNER, Tags};
use crate::domain::plan::GLOBAL;
use crate::domain::policy::{Mode, Policy};
use crate::ports::{
    AuditStore, Caller, Clock, IamInventory, IamKeyAdmin, IamRoles, Identity, Notification,
    Notifier, PortError, StateStore,
};

/// Tag on a provisioned role: the user it replaces.
pub const TAG_MIGRATED_FROM: &str = "keyrotor:migrated-from";

/// The ports a migration uses.
pub struct MigrationPorts<'a> {
    pub identity: &'a dyn Identity,
    pub iam: &'a dyn IamInventory,
    pub keys: &'a dyn IamKeyAdmin,
    pub roles: &'a dyn IamRoles,
    pub state: &'a dyn StateStore,
    pub notifier: &'a dyn Notifier,
    pub audit: &'a dyn AuditStore,
}

/// How one key of the user is used.
#[derive(Debug, Clone, Serialize)]
pub struct KeyUsage {
    pub key: String,
    pub status: &'static str,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    pub service: Option<String>,
    pub region: Option<String>,
}

/// `keyrotor migrate plan <user>`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub user: String,
    pub account: AccountId,
    /// The value of `keyrotor:migrate-to`.
    pub migrate_to: Option<String>,
    pub identity: Option<WorkloadIdentity>,
    pub keys: Vec<KeyUsage>,
    pub permissions: Permissions,
    pub role: Option<RolePlan>,
    /// The AWS config profile the workload switches to.
    pub client_profile: Option<String>,
    /// The migration in progress, if any.
    pub record: Option<MigrationRecord>,
    /// Why nothing can be created, when that is so.
    pub blocked: Option<String>,
}

fn tag_error(user: &str, e: PortError) -> StepError {
    match e {
        PortError::NotFound { .. } => StepError::InvalidInput(format!(
            "no IAM user named {user:?}; check the name (case matters)"
        )),
        e => e.into(),
    }
}

async fn record_of(
    state: &dyn StateStore,
    account: &AccountId,
    user: &str,
) -> Result<Option<MigrationRecord>, StepError> {
    Ok(records(state, account)
        .await?
        .into_iter()
        .find(|r| r.user == user))
}

/// Every migration record of the account (a missing state table: none).
pub async fn records(
    state: &dyn StateStore,
    account: &AccountId,
) -> Result<Vec<MigrationRecord>, StepError> {
    let pk = MigrationRecord::partition(account.as_str());
    match super::read_records(state, &pk, MigrationRecord::from_item, "fix the item").await {
        Err(StepError::Port(PortError::NotFound { .. })) => Ok(Vec::new()),
        other => other,
    }
}

/// The users whose keys a migration owns now (the IAM key sweep leaves them alone).
pub fn owning_keys(records: &[MigrationRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.stage.owns_keys())
        .map(|r| r.user.clone())
        .collect()
}

/// What keyrotor would do for `user`, read-only.
pub async fn plan_user(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
) -> Result<MigrationPlan, StepError> {
    let caller = ports.identity.caller().await?;
    let tags = ports
        .iam
        .user_tags(user)
        .await
        .map_err(|e| tag_error(user, e))?;
    let mut keys = Vec::new();
    for key in ports
        .iam
        .access_keys(user)
        .await
        .map_err(|e| tag_error(user, e))?
    {
        let used = ports.iam.key_last_used(&key.id).await?;
        keys.push(KeyUsage {
            key: key.id.to_string(),
            status: if key.status == KeyStatus::Active {
                "active"
            } else {
                "inactive"
            },
            created: key.created,
            last_used: used.as_ref().map(|u| u.at),
            service: used.as_ref().and_then(|u| u.service.clone()),
            region: used.and_then(|u| u.region),
        });
    }
    let permissions = ports.roles.user_permissions(user).await?;
    let migrate_to = tags.get(TAG_MIGRATE_TO).cloned();
    // The one scope check (path, exemption, break-glass, required tags), on the user as
    // IAM has it now: an out-of-scope user is planned as blocked, and nothing is created.
    let out_of_scope = guard::user_in_scope(ports.iam, user, now, policy)
        .await?
        .err();
    let (identity, mut blocked) = match migrate_to.as_deref().map(WorkloadIdentity::parse) {
        None => (
            None,
            Some(format!(
                "{user} is not tagged {TAG_MIGRATE_TO}; tag it with the workload identity that will assume the role"
            )),
        ),
        Some(Ok(i)) => (Some(i), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let role = identity
        .as_ref()
        .map(|i| role_plan(user, caller.account.as_str(), i, &permissions, policy));
    if let Some(r) = &role
        && !r.problems.is_empty()
    {
        blocked = Some(r.problems.join("; "));
    }
    if let Some(why) = out_of_scope {
        blocked = Some(why);
    }
    let client_profile = match (&identity, &role) {
        (Some(i), Some(r)) => {
            Some(i.client_profile(&format!("{user}-role"), &r.arn, r.max_session_seconds))
        }
        _ => None,
    };
    Ok(MigrationPlan {
        user: user.to_owned(),
        account: caller.account.clone(),
        migrate_to,
        identity,
        keys,
        permissions,
        role,
        client_profile,
        record: record_of(ports.state, &caller.account, user).await?,
        blocked,
    })
}

fn entry(
    (account, user): (&AccountId, &str),
    action: &str,
    (phase, outcome): (Phase, Option<Outcome>),
    detail: String,
    stages: (Option<MigrationStage>, Option<MigrationStage>),
    dry_run: bool,
    now: DateTime<Utc>,
) -> Entry {
    Entry {
        resource: ResourceRef {
            kind: Kind::Migration,
            account: account.to_string(),
            region: GLOBAL.to_owned(),
            id: user.to_owned(),
        },
        action: action.to_owned(),
        phase,
        outcome,
        reason: "migrate-to".into(),
        detail,
        before: stages.0.map(|s| s.as_str().to_owned()),
        after: stages.1.map(|s| s.as_str().to_owned()),
        dry_run,
        policy_time: now,
    }
}

/// `keyrotor migrate apply <user>`: creates the role (idempotent, tagged), gives it the
/// user's permissions (managed policies attached by reference, inline ones merged into one
/// inline policy) and records RoleProvisioned. A user whose identity or permissions do not
/// fit is refused with the reason, and nothing is created.
pub async fn apply(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<MigrationPlan, StepError> {
    let plan = plan_user(ports, policy, user, now).await?;
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let log = AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone());
    let account = caller.account.clone();
    if let Some(why) = &plan.blocked {
        log.append(
            &entry(
                (&account, user),
                "provision-role",
                (Phase::Decision, Some(Outcome::Blocked)),
                why.clone(),
                (None, None),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let blocked = Err(StepError::Blocked(format!("migration of {user}: {why}")));
        return log.finish(blocked, wall.now()).await;
    }
    if let Some(r) = &plan.record
        && r.stage != MigrationStage::RolledBack
    {
        return Ok(plan);
    }
    let (Some(role), Some(identity_tag)) = (plan.role.clone(), plan.migrate_to.clone()) else {
        return Err(StepError::Blocked(format!(
            "migration of {user}: no role to create"
        )));
    };
    let work = async {
        let detail = format!(
            "create role {} trusted by {identity_tag}, {} managed polic(ies) attached, {} inline",
            role.arn,
            role.managed_policies.len(),
            if role.inline_policy.is_some() {
                "merged inline policy"
            } else {
                "no inline policy"
            }
        );
        log.append(
            &entry(
                (&account, user),
                "provision-role",
                (Phase::Intent, None),
                detail.clone(),
                (None, Some(MigrationStage::RoleProvisioned)),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let result = provision(ports, user, &role, &identity_tag).await;
        let outcome = match &result {
            Ok(_) => (Outcome::Succeeded, detail.clone()),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        log.append(
            &entry(
                (&account, user),
                "provision-role",
                (Phase::Outcome, Some(outcome.0)),
                outcome.1,
                (None, Some(MigrationStage::RoleProvisioned)),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let arn = result?;
        let version = plan.record.as_ref().map_or(0, |r| r.version);
        let record = MigrationRecord {
            user: user.to_owned(),
            role_arn: arn,
            stage: MigrationStage::RoleProvisioned,
            since: now,
            provisioned_at: now,
            adopted_at: None,
            deactivated: Vec::new(),
            version,
        };
        let pk = MigrationRecord::partition(account.as_str());
        if !ports
            .state
            .put_versioned(&pk, user, version, &record.attrs())
            .await?
        {
            return Err(StepError::InProgress(format!(
                "in progress: another run changed the migration of {user}; run the command again"
            )));
        }
        Ok(MigrationPlan {
            record: Some(MigrationRecord {
                version: version + 1,
                ..record
            }),
            ..plan.clone()
        })
    };
    let done = with_lease(
        ports.state,
        &format!("migration#{account}#{user}"),
        &format!("the migration of {user}"),
        &run_id,
        wall,
        work,
    )
    .await;
    log.finish(done, wall.now()).await
}

async fn provision(
    ports: &MigrationPorts<'_>,
    user: &str,
    role: &RolePlan,
    identity_tag: &str,
) -> Result<String, PortError> {
    let tags = Tags::from([
        (TAG_MIGRATED_FROM.to_owned(), user.to_owned()),
        (TAG_MIGRATE_TO.to_owned(), identity_tag.to_owned()),
    ]);
    if let Some(existing) = ports.roles.role(&role.name).await?
        && existing.tags.get(TAG_MIGRATED_FROM).map(String::as_str) != Some(user)
    {
        return Err(PortError::Conflict {
            operation: "iam:CreateRole".into(),
            message: format!(
                "role {} already exists and was not created by keyrotor for {user} (tag {TAG_MIGRATED_FROM} = {:?}); rename or remove it",
                existing.arn,
                existing.tags.get(TAG_MIGRATED_FROM)
            ),
        });
    }
    let arn = ports
        .roles
        .create_role(
            &role.name,
            &role.path,
            &role.trust_policy.to_string(),
            role.max_session_seconds,
            &tags,
        )
        .await?;
    for policy_arn in &role.managed_policies {
        ports
            .roles
            .attach_role_policy(&role.name, policy_arn)
            .await?;
    }
    if let Some(doc) = &role.inline_policy {
        ports
            .roles
            .put_role_policy(&role.name, INLINE_POLICY_NAME, &doc.to_string())
            .await?;
    }
    Ok(arn)
}

/// One transition made (or planned) by the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub user: String,
    pub from: MigrationStage,
    pub to: MigrationStage,
    /// `done`, `dry-run`, `failed` or `conflict`.
    pub status: &'static str,
    pub detail: String,
}

/// The sweep's result.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationSweep {
    pub run_id: String,
    pub mode: Mode,
    pub transitions: Vec<Transition>,
}

impl MigrationSweep {
    /// Transitions that did not happen and are work left: `failed`, or `conflict` (another
    /// run held the user). A `skipped` one (the user is out of scope) is a decision, not a
    /// failure.
    pub fn failed(&self) -> usize {
        self.transitions
            .iter()
            .filter(|t| matches!(t.status, "failed" | "conflict"))
            .count()
    }
}

async fn facts(
    ports: &MigrationPorts<'_>,
    r: &MigrationRecord,
) -> Result<MigrationFacts, StepError> {
    let role_name = r.role_arn.rsplit('/').next().unwrap_or_default();
    let role_last_used = ports.roles.role(role_name).await?.and_then(|x| x.last_used);
    let keys = match ports.iam.access_keys(&r.user).await {
        Ok(k) => k,
        Err(PortError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut keys_last_used = None;
    for key in &keys {
        if let Some(u) = ports.iam.key_last_used(&key.id).await? {
            keys_last_used = keys_last_used.max(Some(u.at));
        }
    }
    Ok(MigrationFacts {
        role_last_used,
        keys_last_used,
        active_keys: keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count(),
        keys: keys.len(),
    })
}

/// Follows every migration in progress: adoption, idle keys, guard, deactivation,
/// deletion; a regression stops it and alerts the owner. Changes need `mode = "enforce"`.
pub async fn sweep(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<MigrationSweep, StepError> {
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let log = AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone());
    let mut transitions = Vec::new();
    let recs = records(ports.state, &caller.account).await?;
    let progress = crate::progress::Phase::start("migrations", recs.len());
    for record in recs {
        progress.step();
        let user = record.user.clone();
        let from = record.stage;
        let work = async {
            // Read again under the lease: a rollback may have changed it meanwhile.
            match record_of(ports.state, &caller.account, &user).await? {
                Some(current) => follow(ports, policy, &caller, &log, current, now, wall).await,
                None => Ok(Vec::new()),
            }
        };
        match with_lease(
            ports.state,
            &format!("migration#{}#{user}", caller.account),
            &format!("the migration of {user}"),
            &run_id,
            wall,
            work,
        )
        .await
        {
            Ok(done) => transitions.extend(done),
            Err(StepError::InProgress(why)) => transitions.push(Transition {
                user,
                from,
                to: from,
                status: "conflict",
                detail: why,
            }),
            Err(e) => return log.finish(Err(e), wall.now()).await,
        }
    }
    log.anchor(wall.now()).await?;
    Ok(MigrationSweep {
        run_id,
        mode: policy.mode,
        transitions,
    })
}

async fn follow(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    caller: &Caller,
    log: &AuditLog<'_>,
    mut record: MigrationRecord,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<Transition>, StepError> {
    let mut done = Vec::new();
    let account = &caller.account;
    let pk = MigrationRecord::partition(account.as_str());
    let tags = match ports.iam.user_tags(&record.user).await {
        Ok(t) => t,
        Err(PortError::NotFound { .. }) => Tags::new(),
        Err(e) => return Err(e.into()),
    };
    let owner = tags
        .get(TAG_OWNER)
        .cloned()
        .or_else(|| policy.notifications.default_contact.clone());
    loop {
        let f = facts(ports, &record).await?;
        let Some(step) = next(&record, &f, policy) else {
            break;
        };
        if step.at > now {
            break;
        }
        let from = record.stage;
        let user = record.user.clone();
        let transition = |status, detail: String| Transition {
            user: user.clone(),
            from,
            to: step.to,
            status,
            detail,
        };
        if policy.mode == Mode::Plan {
            log.append(
                &entry(
                    (account, &user),
                    step.to.as_str(),
                    (Phase::Decision, Some(Outcome::Planned)),
                    format!("mode = plan, not carried out: {}", step.detail),
                    (Some(from), Some(step.to)),
                    true,
                    now,
                ),
                wall.now(),
            )
            .await?;
            done.push(transition("dry-run", step.detail.clone()));
            break;
        }
        // Out of scope now (path, exempt, break-glass, required tags; read from IAM now):
        // nothing is changed for this user, and no intent is written for it.
        if step.change != MigrationChange::None
            && step.change != MigrationChange::RemoveGuard
            && let Err(why) = guard::user_in_scope(ports.iam, &user, now, policy).await?
        {
            log.append(
                &entry(
                    (account, &user),
                    step.to.as_str(),
                    (Phase::Decision, Some(Outcome::Skipped)),
                    why.clone(),
                    (Some(from), Some(from)),
                    false,
                    now,
                ),
                wall.now(),
            )
            .await?;
            done.push(transition("skipped", why));
            break;
        }
        // The keys about to be deactivated are recorded first: a run that stops after the
        // first of them still leaves `migrate rollback` the whole list.
        if step.change == MigrationChange::DeactivateKeys {
            record = note_deactivating(ports, &pk, record).await?;
        }
        log.append(
            &entry(
                (account, &user),
                step.to.as_str(),
                (Phase::Intent, None),
                step.detail.clone(),
                (Some(from), Some(step.to)),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let effect = change(ports, &user, step.change, now, policy).await;
        let deactivated = match &effect {
            Ok(keys) => keys.clone(),
            Err(_) => Vec::new(),
        };
        if let Err(e) = effect {
            log.append(
                &entry(
                    (account, &user),
                    step.to.as_str(),
                    (Phase::Outcome, Some(Outcome::Failed)),
                    e.to_string(),
                    (Some(from), Some(from)),
                    false,
                    now,
                ),
                wall.now(),
            )
            .await?;
            done.push(transition("failed", e.to_string()));
            break;
        }
        let regressed = step.to == MigrationStage::Regressed;
        let message = Notification {
            event: if regressed {
                "migration-regressed".into()
            } else {
                "migration-step".into()
            },
            resource: user.clone(),
            owner: owner.clone(),
            subject: format!(
                "Migration of IAM user {user} to a role: {}",
                step.to.as_str()
            )
            .chars()
            .take(100)
            .collect(),
            message: format!(
                "{}.\nRole: {}\nUndo: keyrotor migrate rollback {user} (reactivates the keys, removes the guard; the role stays).",
                step.detail, record.role_arn
            ),
            at: Some(now),
            undo: Some(format!("keyrotor migrate rollback {user}")),
        };
        let sent = ports.notifier.notify(&message).await;
        log.append(
            &entry(
                (account, &user),
                step.to.as_str(),
                (Phase::Outcome, Some(Outcome::Succeeded)),
                match &sent {
                    Ok(_) => format!("now {}; owner notified", step.to.as_str()),
                    Err(e) => format!("now {}; notification failed: {e}", step.to.as_str()),
                },
                (Some(from), Some(step.to)),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let mut next_record = MigrationRecord {
            stage: step.to,
            since: now,
            ..record.clone()
        };
        if step.to == MigrationStage::Adopted {
            next_record.adopted_at = Some(step.at);
        }
        for key in deactivated {
            if !next_record.deactivated.contains(&key) {
                next_record.deactivated.push(key);
            }
        }
        if !ports
            .state
            .put_versioned(&pk, &user, record.version, &next_record.attrs())
            .await?
        {
            done.push(transition(
                "conflict",
                "the record was changed by another run".into(),
            ));
            break;
        }
        next_record.version = record.version + 1;
        done.push(transition("done", step.detail.clone()));
        record = next_record;
        if regressed {
            break;
        }
    }
    Ok(done)
}

/// Adds the user's active keys to the record's `deactivated` list before they are
/// deactivated (compare-and-set; same stage), and returns the record as written.
async fn note_deactivating(
    ports: &MigrationPorts<'_>,
    pk: &str,
    record: MigrationRecord,
) -> Result<MigrationRecord, StepError> {
    let mut next = record.clone();
    for key in ports.iam.access_keys(&record.user).await? {
        let id = key.id.to_string();
        if key.status == KeyStatus::Active && !next.deactivated.contains(&id) {
            next.deactivated.push(id);
        }
    }
    if next.deactivated == record.deactivated {
        return Ok(record);
    }
    if !ports
        .state
        .put_versioned(pk, &record.user, record.version, &next.attrs())
        .await?
    {
        return Err(StepError::InProgress(format!(
            "in progress: another run changed the migration of {}; the next run re-reads it",
            record.user
        )));
    }
    next.version = record.version + 1;
    Ok(next)
}

/// Carries out a change; returns the keys it deactivated.
async fn change(
    ports: &MigrationPorts<'_>,
    user: &str,
    change: MigrationChange,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Vec<String>, PortError> {
    match change {
        MigrationChange::None => Ok(Vec::new()),
        MigrationChange::AttachGuard => ports
            .roles
            .put_user_policy(user, GUARD_POLICY_NAME, &guard_policy().to_string())
            .await
            .map(|()| Vec::new()),
        MigrationChange::RemoveGuard => ports
            .roles
            .delete_user_policy(user, GUARD_POLICY_NAME)
            .await
            .map(|()| Vec::new()),
        MigrationChange::DeactivateKeys => {
            let mut deactivated = Vec::new();
            for key in ports.iam.access_keys(user).await? {
                if key.status == KeyStatus::Active {
                    ports.keys.set_key_active(user, &key.id, false).await?;
                    deactivated.push(key.id.to_string());
                }
            }
            Ok(deactivated)
        }
        MigrationChange::DeleteKeys => {
            let keys = ports.iam.access_keys(user).await?;
            if let Some(active) = keys.iter().find(|k| k.status == KeyStatus::Active) {
                return Err(PortError::Conflict {
                    operation: "migration".into(),
                    message: format!(
                        "key {} of {user} was reactivated outside keyrotor; not deleting anything (roll back or deactivate it)",
                        active.id
                    ),
                });
            }
            // The one "may this key be removed" check, read again for every key.
            for key in keys {
                match guard::removable(ports.iam, user, &key.id, None, now, policy).await? {
                    Removal::Allowed(_) => ports.keys.delete_key(user, &key.id).await?,
                    Removal::Gone => {}
                    Removal::Refused(_, why) => {
                        return Err(PortError::Conflict {
                            operation: "migration".into(),
                            message: format!("not deleting the keys of {user}: {why}"),
                        });
                    }
                }
            }
            ports
                .roles
                .delete_user_policy(user, GUARD_POLICY_NAME)
                .await
                .map(|()| Vec::new())
        }
    }
}

/// One user in `keyrotor migrate status`.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub user: String,
    pub migrate_to: Option<String>,
    /// `candidate` when no migration has started.
    pub stage: String,
    pub since: Option<DateTime<Utc>>,
}

/// `keyrotor migrate status`: every candidate (tagged user with active keys) and every
/// migration in progress, with the count per stage.
#[derive(Debug, Clone, Serialize)]
pub struct Funnel {
    pub users: Vec<Candidate>,
    pub counts: std::collections::BTreeMap<String, usize>,
}

pub async fn status(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Funnel, StepError> {
    let caller = ports.identity.caller().await?;
    let recs = records(ports.state, &caller.account).await?;
    let mut users: Vec<Candidate> = recs
        .iter()
        .map(|r| Candidate {
            user: r.user.clone(),
            migrate_to: None,
            stage: r.stage.as_str().to_owned(),
            since: Some(r.since),
        })
        .collect();
    let mut discovery = policy.clone();
    discovery.migration.enabled = true;
    let (found, _) = discover::iam_users(ports.iam, now, &discovery, &[]).await?;
    for u in found {
        let Some(tag) = u.tags.get(TAG_MIGRATE_TO) else {
            continue;
        };
        match users.iter_mut().find(|c| c.user == u.name) {
            Some(c) => c.migrate_to = Some(tag.clone()),
            None => users.push(Candidate {
                user: u.name.clone(),
                migrate_to: Some(tag.clone()),
                stage: "candidate".into(),
                since: None,
            }),
        }
    }
    if let Some(only) = only {
        users.retain(|c| c.user == only);
        if users.is_empty() {
            return Err(StepError::InvalidInput(format!(
                "{only} is neither a migration candidate (tagged {TAG_MIGRATE_TO}, with an active key) nor being migrated"
            )));
        }
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    let mut counts = std::collections::BTreeMap::new();
    for c in &users {
        *counts.entry(c.stage.clone()).or_insert(0) += 1;
    }
    Ok(Funnel { users, counts })
}

/// `keyrotor migrate rollback <user>`: reactivates the keys keyrotor deactivated, removes
/// the guard; the role stays. Audited.
pub async fn rollback(
    ports: &MigrationPorts<'_>,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<MigrationRecord, StepError> {
    let caller = ports.identity.caller().await?;
    let account = caller.account.clone();
    let Some(record) = record_of(ports.state, &account, user).await? else {
        return Err(StepError::InvalidInput(format!(
            "no migration of {user} to roll back (see `keyrotor migrate status`)"
        )));
    };
    if record.stage == MigrationStage::Migrated {
        return Err(StepError::InvalidInput(format!(
            "the migration of {user} is complete and its keys are deleted; there is nothing to roll back (the role stays)"
        )));
    }
    let run_id = new_run_id(wall.now());
    let log = AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone());
    let work = async {
        let from = Some(record.stage);
        let to = Some(MigrationStage::RolledBack);
        let reactivate = !record.deactivated.is_empty();
        let detail = format!(
            "roll back from {}: {}remove the guard policy; the role {} stays",
            record.stage.as_str(),
            if reactivate {
                format!(
                    "reactivate the keys the migration deactivated ({}), ",
                    record.deactivated.join(", ")
                )
            } else {
                String::new()
            },
            record.role_arn
        );
        log.append(
            &entry(
                (&account, user),
                "rollback",
                (Phase::Intent, None),
                detail.clone(),
                (from, to),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        let result = async {
            if reactivate {
                for key in ports.iam.access_keys(user).await? {
                    if key.status == KeyStatus::Inactive
                        && record.deactivated.contains(&key.id.to_string())
                    {
                        ports.keys.set_key_active(user, &key.id, true).await?;
                    }
                }
            }
            ports
                .roles
                .delete_user_policy(user, GUARD_POLICY_NAME)
                .await
        }
        .await;
        let (outcome, text) = match &result {
            Ok(()) => (Outcome::Succeeded, detail.clone()),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        log.append(
            &entry(
                (&account, user),
                "rollback",
                (Phase::Outcome, Some(outcome)),
                text,
                (from, to),
                false,
                now,
            ),
            wall.now(),
        )
        .await?;
        result?;
        let next = MigrationRecord {
            stage: MigrationStage::RolledBack,
            since: now,
            ..record.clone()
        };
        let pk = MigrationRecord::partition(account.as_str());
        if !ports
            .state
            .put_versioned(&pk, user, record.version, &next.attrs())
            .await?
        {
            return Err(StepError::InProgress(format!(
                "in progress: another run changed the migration of {user}; run the command again"
            )));
        }
        Ok(next)
    };
    let done = with_lease(
        ports.state,
        &format!("migration#{account}#{user}"),
        &format!("the migration of {user}"),
        &run_id,
        wall,
        work,
    )
    .await;
    log.finish(done, wall.now()).await
}
