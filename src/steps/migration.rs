//! Migration from IAM user keys to a role: `keyrotor migrate plan|apply|status|rollback`
//! and `keyrotor sweep --kind migration` (adoption tracking and the stages after it).
//!
//! A migration record in the state table is never enough to act on a user's keys: before
//! the guard is attached, the keys deactivated or deleted, the sweep re-reads from IAM that
//! the user still asks for the migration and that the record's role is the one keyrotor
//! provisions for it ([`migration::confirm`]); otherwise the step is blocked.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::guard::{self, Removal};
use super::{StepError, discover, new_run_id, with_lease};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::migration::{
    self, GUARD_POLICY_NAME, INLINE_POLICY_NAME, MigrationChange, MigrationFacts, MigrationRecord,
    MigrationStage, Permissions, RolePlan, RoleSeen, TrustScope, WorkloadIdentity, guard_policy,
    guard_policy_arn, next, role_plan,
};
use crate::domain::model::{AccountId, KeyStatus, Kind, TAG_MIGRATE_TO, TAG_OWNER, Tags};
use crate::domain::plan::GLOBAL;
use crate::domain::policy::{Mode, Policy};
use crate::ports::{
    AccountDirectory, AuditStore, Caller, Clock, IamInventory, IamKeyAdmin, IamRoles, Identity,
    Notification, Notifier, PortError, RoleInfo, StateStore,
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
    /// The organization's accounts and id, read when `[accounts] organization = true` and
    /// a role in another account is to be trusted (`None`: not wired; such a role is then
    /// refused, and its migration's destructive steps are blocked).
    pub directory: Option<&'a dyn AccountDirectory>,
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

/// Whether trusting `identity` depends on the organization (a role or trust anchor in
/// another account than keyrotor's).
fn needs_organization(identity: &WorkloadIdentity, home: &AccountId) -> bool {
    identity.account().is_some_and(|a| a != home.as_str())
}

/// Whom the run may trust: the caller's account and partition and, when `[accounts]
/// organization = true` and `needed`, the organization's accounts (ListAccounts) and id
/// (DescribeOrganization), read once.
async fn trust_scope(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    caller: &Caller,
    needed: bool,
) -> Result<TrustScope, StepError> {
    let mut scope = TrustScope::account(caller.partition(), caller.account.as_str());
    if !(needed && policy.accounts.organization) {
        return Ok(scope);
    }
    let Some(directory) = ports.directory else {
        return Err(StepError::Port(PortError::Other {
            operation: "organizations:ListAccounts".into(),
            message: "[accounts] organization = true, but this entry point cannot list the organization; trust the account through [migration] allowed_accounts instead".into(),
        }));
    };
    scope.organization_accounts = Some(
        directory
            .accounts()
            .await?
            .into_iter()
            .map(|a| a.id.as_str().to_owned())
            .collect(),
    );
    scope.organization_id = directory.organization_id().await?;
    Ok(scope)
}

/// What keyrotor would do for `user`, read-only. An identity outside what keyrotor trusts
/// is one of the role's problems ([`role_plan`]).
pub async fn plan_user(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
) -> Result<MigrationPlan, StepError> {
    plan_for(ports, policy, user, now, false).await
}

async fn plan_for(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    allow_external: bool,
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
    let role = match &identity {
        Some(i) => {
            let needed = needs_organization(i, &caller.account);
            let scope = trust_scope(ports, policy, &caller, needed).await?;
            Some(role_plan(
                user,
                &scope,
                i,
                &permissions,
                policy,
                allow_external,
            ))
        }
        None => None,
    };
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
/// fit is refused with the reason, and nothing is created; so is an identity outside what
/// keyrotor trusts (see [`apply_with`]).
pub async fn apply(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<MigrationPlan, StepError> {
    apply_with(ports, policy, user, now, wall, false).await
}

/// [`apply`]; with `allow_external` (`--allow-external`), an identity outside the
/// organization, `[migration] allowed_accounts` and `allowed_oidc_subjects` is trusted
/// anyway: the plan's `role.external` says why it is outside (the caller shows it loudly),
/// and the audit record of the role's creation says it was allowed. A pre-existing role of
/// the planned name is adopted only when it is exactly the planned one
/// ([`migration::matches_plan`]); otherwise nothing is changed.
pub async fn apply_with(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
    allow_external: bool,
) -> Result<MigrationPlan, StepError> {
    super::require_enforce(policy, &format!("applying the migration of {user}"))?;
    let mut plan = plan_for(ports, policy, user, now, allow_external).await?;
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let log = AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone());
    let account = caller.account.clone();
    let fresh = plan
        .record
        .as_ref()
        .is_none_or(|r| r.stage == MigrationStage::RolledBack);
    // A role of the planned name that is not the planned one (another trust, another
    // user's, not keyrotor's) is never taken over.
    if plan.blocked.is_none()
        && fresh
        && let Some(role) = &plan.role
        && let Some(existing) = ports.roles.role(&role.name).await?
        && let Err(why) = migration::matches_plan(user, seen(&existing), role)
    {
        plan.blocked = Some(format!(
            "a role named {} already exists and is not the one keyrotor plans: {why}; nothing was changed: remove or rename that role, or fix the user's {TAG_MIGRATE_TO}",
            role.name
        ));
    }
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
    if !fresh {
        return Ok(plan);
    }
    let (Some(role), Some(identity_tag)) = (plan.role.clone(), plan.migrate_to.clone()) else {
        return Err(StepError::Blocked(format!(
            "migration of {user}: no role to create"
        )));
    };
    let work = async {
        let mut detail = format!(
            "create role {} trusted by {identity_tag}, {} managed polic(ies) attached, {} inline{}",
            role.arn,
            role.managed_policies.len(),
            if role.inline_policy.is_some() {
                "merged inline policy"
            } else {
                "no inline policy"
            },
            role.permissions_boundary
                .as_ref()
                .map(|b| format!(", permissions boundary {b}"))
                .unwrap_or_default()
        );
        if let Some(why) = &role.external {
            detail.push_str(&format!(
                "; ALLOWED WITH --allow-external by {}: {why}",
                caller.arn
            ));
        }
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
            migrate_to: Some(identity_tag.clone()),
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

/// What a migration compares of a role.
fn seen(role: &RoleInfo) -> RoleSeen<'_> {
    RoleSeen {
        arn: &role.arn,
        migrated_from: role.tags.get(TAG_MIGRATED_FROM).map(String::as_str),
        trust_policy: &role.trust_policy,
        permissions_boundary: role.permissions_boundary.as_deref(),
    }
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
    // Read again right before creating: a role made since the plan is not taken over.
    if let Some(existing) = ports.roles.role(&role.name).await?
        && let Err(why) = migration::matches_plan(user, seen(&existing), role)
    {
        return Err(PortError::Conflict {
            operation: "iam:CreateRole".into(),
            message: format!(
                "role {} already exists and is not the one keyrotor plans for {user}: {why}; remove or rename it",
                existing.arn
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
            role.permissions_boundary.as_deref(),
            &tags,
        )
        .await?;
    // CreateRole answers with the existing role when the name is taken (role names are
    // unique whatever the path): one made between the re-read above and the create is
    // checked again before any permission is attached to it.
    if arn != role.arn {
        return Err(PortError::Conflict {
            operation: "iam:CreateRole".into(),
            message: format!(
                "role {arn} took the name of the role keyrotor plans for {user} ({}) before it was created; no permission was attached — remove or rename it",
                role.arn
            ),
        });
    }
    if let Some(existing) = ports.roles.role(&role.name).await?
        && let Err(why) = migration::matches_plan(user, seen(&existing), role)
    {
        return Err(PortError::Conflict {
            operation: "iam:CreateRole".into(),
            message: format!(
                "role {} is not the one keyrotor plans for {user}: {why}; no permission was attached — remove or rename it",
                existing.arn
            ),
        });
    }
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
    /// `done`, `dry-run`, `failed`, `conflict`, `skipped` (out of scope) or `blocked`
    /// (nothing changed: the migration is not backed by IAM now, or the guard's managed
    /// policy is missing or altered; a person must look).
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
    /// Transitions that did not happen and are work left: `failed`, `conflict` (another
    /// run held the user) or `blocked`. A `skipped` one (the user is out of scope) is a
    /// decision, not a failure.
    pub fn failed(&self) -> usize {
        self.transitions
            .iter()
            .filter(|t| matches!(t.status, "failed" | "conflict" | "blocked"))
            .count()
    }
}

async fn facts(
    ports: &MigrationPorts<'_>,
    r: &MigrationRecord,
) -> Result<MigrationFacts, StepError> {
    let role_name = r.role_arn.rsplit('/').next().unwrap_or_default();
    let role_last_used = match ports.roles.role(role_name).await {
        Ok(role) => role.and_then(|x| x.last_used),
        // The deployed roles may read only roles under /migrated/: the role of a migration
        // an earlier version started elsewhere has no known last use (its destructive
        // steps are blocked anyway, see `Run::confirm`), and the other migrations go on.
        Err(PortError::AccessDenied { .. })
            if !r
                .role_arn
                .contains(&format!(":role{}", migration::ROLE_PATH)) =>
        {
            None
        }
        Err(e) => return Err(e.into()),
    };
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
    let organization = OrganizationCache::default();
    for record in recs {
        progress.step();
        let user = record.user.clone();
        let from = record.stage;
        let work = async {
            // Read again under the lease: a rollback may have changed it meanwhile.
            match record_of(ports.state, &caller.account, &user).await? {
                Some(current) => {
                    let run = Run {
                        ports,
                        policy,
                        caller: &caller,
                        log: &log,
                        organization: &organization,
                    };
                    follow(&run, current, now, wall).await
                }
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

/// The organization as a sweep read it: at most once per run, and only when a migration's
/// destructive step needs it.
#[derive(Default)]
struct OrganizationCache(Mutex<Option<TrustScope>>);

/// What every migration of one sweep shares.
struct Run<'r, 'p> {
    ports: &'r MigrationPorts<'p>,
    policy: &'r Policy,
    caller: &'r Caller,
    log: &'r AuditLog<'r>,
    organization: &'r OrganizationCache,
}

impl Run<'_, '_> {
    /// The trust scope for `identity`, the organization read once per run when needed.
    async fn scope(&self, identity: &WorkloadIdentity) -> Result<TrustScope, StepError> {
        if !needs_organization(identity, &self.caller.account) {
            return trust_scope(self.ports, self.policy, self.caller, false).await;
        }
        let cached = self.organization.0.lock().ok().and_then(|c| c.clone());
        if let Some(scope) = cached {
            return Ok(scope);
        }
        let scope = trust_scope(self.ports, self.policy, self.caller, true).await?;
        if let Ok(mut c) = self.organization.0.lock() {
            *c = Some(scope.clone());
        }
        Ok(scope)
    }

    /// Whether `record` is backed by IAM now ([`migration::confirm`]): the user's tag and
    /// the role as IAM has them, the role keyrotor would provision for that tag now.
    /// `Ok(Err(why))` blocks the step; a read that fails blocks it too.
    async fn confirm(
        &self,
        record: &MigrationRecord,
        user_tags: &Tags,
    ) -> Result<Result<(), String>, StepError> {
        let tag = user_tags.get(TAG_MIGRATE_TO).map(String::as_str);
        let plan = match tag.map(WorkloadIdentity::parse) {
            Some(Ok(identity)) => match self.scope(&identity).await {
                Ok(scope) => Ok(role_plan(
                    &record.user,
                    &scope,
                    &identity,
                    &Permissions::default(),
                    self.policy,
                    true,
                )),
                Err(e) => Err(format!("cannot read whom the role may trust: {e}")),
            },
            Some(Err(e)) => Err(e),
            None => Err(String::new()),
        };
        let role = match &plan {
            Ok(p) if p.arn == record.role_arn => self.ports.roles.role(&p.name).await?,
            _ => None,
        };
        Ok(migration::confirm(
            record,
            tag,
            plan.as_ref().map_err(String::as_str),
            role.as_ref().map(seen),
        ))
    }

    /// Why the change of `step` must not be made now, read from IAM: the user out of scope
    /// (`skipped`), or the migration not backed by IAM, or the guard's managed policy
    /// missing or altered (`blocked`). `None`: go ahead.
    async fn refusal(
        &self,
        record: &MigrationRecord,
        change: MigrationChange,
        now: DateTime<Utc>,
    ) -> Result<Option<(&'static str, Outcome, String)>, StepError> {
        if matches!(change, MigrationChange::None | MigrationChange::RemoveGuard) {
            return Ok(None);
        }
        let user = &record.user;
        // Out of scope now (path, exempt, break-glass, required tags; read from IAM now).
        let found = match guard::user_in_scope(self.ports.iam, user, now, self.policy).await? {
            Ok(found) => found,
            Err(why) => return Ok(Some(("skipped", Outcome::Skipped, why))),
        };
        if let Err(why) = self.confirm(record, &found.tags).await? {
            return Ok(Some((
                "blocked",
                Outcome::Blocked,
                format!(
                    "not carried out: the migration record is not backed by IAM now: {why}; nothing was changed (check who wrote the state-table item migration#{}/{user})",
                    self.caller.account
                ),
            )));
        }
        if change == MigrationChange::AttachGuard {
            let arn = guard_policy_arn(self.caller.partition(), self.caller.account.as_str());
            let problem = match self.ports.roles.managed_policy_document(&arn).await? {
                None => Some(format!("the guard's managed policy {arn} does not exist")),
                Some(doc) if !migration::same_document(&doc, &guard_policy()) => Some(format!(
                    "the guard's managed policy {arn} does not say what keyrotor's guard says (its default version was changed)"
                )),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                return Ok(Some((
                    "blocked",
                    Outcome::Blocked,
                    format!(
                        "not carried out: {problem}; deploy infra/template.yaml or infra/member-role.yaml to this account (it creates the policy), then the next sweep guards the user"
                    ),
                )));
            }
        }
        Ok(None)
    }
}

async fn follow(
    run: &Run<'_, '_>,
    mut record: MigrationRecord,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<Transition>, StepError> {
    let (ports, policy, caller, log) = (run.ports, run.policy, run.caller, run.log);
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
        // Out of scope now, or not backed by IAM, or no guard to attach: nothing is changed
        // for this user, and no intent is written for it.
        if let Some((status, outcome, why)) = run.refusal(&record, step.change, now).await? {
            log.append(
                &entry(
                    (account, &user),
                    step.to.as_str(),
                    (Phase::Decision, Some(outcome)),
                    why.clone(),
                    (Some(from), Some(from)),
                    false,
                    now,
                ),
                wall.now(),
            )
            .await?;
            done.push(transition(status, why));
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
        let effect = change(ports, caller, &user, step.change, now, policy).await;
        let (deactivated, note) = match &effect {
            Ok(e) => (e.deactivated.clone(), e.note.clone()),
            Err(_) => (Vec::new(), None),
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
                format!(
                    "now {}; {}{}",
                    step.to.as_str(),
                    match &sent {
                        Ok(_) => "owner notified".to_owned(),
                        Err(e) => format!("notification failed: {e}"),
                    },
                    note.as_ref().map(|n| format!("; {n}")).unwrap_or_default()
                ),
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
        done.push(transition(
            "done",
            match &note {
                Some(n) => format!("{}; {n}", step.detail),
                None => step.detail.clone(),
            },
        ));
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

/// What a change did beyond its stage: the keys it deactivated, and anything to say.
#[derive(Debug, Default)]
struct Effect {
    deactivated: Vec<String>,
    note: Option<String>,
}

/// Detaches the guard's managed policy from `user` and deletes the inline guard policy
/// earlier versions put on users, if there is one; says so when there was. The deployed
/// roles may not delete inline policies (the templates grant only the guard's attachment):
/// then the note says what to check by hand, and the managed guard is removed all the same.
async fn remove_guard(
    ports: &MigrationPorts<'_>,
    caller: &Caller,
    user: &str,
) -> Result<Option<String>, PortError> {
    let arn = guard_policy_arn(caller.partition(), caller.account.as_str());
    ports.roles.detach_user_policy(user, &arn).await?;
    match ports
        .roles
        .delete_user_policy(user, GUARD_POLICY_NAME)
        .await
    {
        Ok(true) => Ok(Some(format!(
            "the inline guard policy {GUARD_POLICY_NAME} an earlier keyrotor put on {user} was deleted too"
        ))),
        Ok(false) => Ok(None),
        Err(PortError::AccessDenied { .. }) => Ok(Some(format!(
            "could not look for an inline guard policy {GUARD_POLICY_NAME} of an earlier keyrotor (iam:DeleteUserPolicy denied): if {user} still has one, delete it (aws iam delete-user-policy --user-name {user} --policy-name {GUARD_POLICY_NAME}) or run `keyrotor migrate rollback {user}` with credentials that may"
        ))),
        Err(e) => Err(e),
    }
}

/// Carries out a change (its preconditions were read by [`Run::refusal`]).
async fn change(
    ports: &MigrationPorts<'_>,
    caller: &Caller,
    user: &str,
    change: MigrationChange,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<Effect, PortError> {
    match change {
        MigrationChange::None => Ok(Effect::default()),
        MigrationChange::AttachGuard => {
            let arn = guard_policy_arn(caller.partition(), caller.account.as_str());
            ports.roles.attach_user_policy(user, &arn).await?;
            Ok(Effect::default())
        }
        MigrationChange::RemoveGuard => Ok(Effect {
            deactivated: Vec::new(),
            note: remove_guard(ports, caller, user).await?,
        }),
        MigrationChange::DeactivateKeys => {
            let mut deactivated = Vec::new();
            for key in ports.iam.access_keys(user).await? {
                if key.status == KeyStatus::Active {
                    ports.keys.set_key_active(user, &key.id, false).await?;
                    deactivated.push(key.id.to_string());
                }
            }
            Ok(Effect {
                deactivated,
                note: None,
            })
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
            Ok(Effect {
                deactivated: Vec::new(),
                note: remove_guard(ports, caller, user).await?,
            })
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
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<MigrationRecord, StepError> {
    rollback_report(ports, policy, user, now, wall)
        .await
        .map(|(record, _)| record)
}

/// [`rollback`], and what there is to say beyond it (an inline guard of an earlier version
/// that was deleted too).
pub async fn rollback_report(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    user: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<(MigrationRecord, Option<String>), StepError> {
    super::require_enforce(policy, &format!("rolling back the migration of {user}"))?;
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
            "roll back from {}: {}detach the guard policy; the role {} stays",
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
            remove_guard(ports, &caller, user).await
        }
        .await;
        let (outcome, text) = match &result {
            Ok(None) => (Outcome::Succeeded, detail.clone()),
            Ok(Some(note)) => (Outcome::Succeeded, format!("{detail}; {note}")),
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
        let note = result?;
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
        Ok((next, note))
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::domain::model::{AccessKey, AccessKeyId, LastUsed};
    use crate::steps::memory::{Me, MemAudit, MemIam, MemState, MemUser, Sent};

    const ACCOUNT: &str = "123456789012";
    const KEY: &str = "AKIAAAAAAAAAAAAA0001";

    fn t(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    fn policy() -> Policy {
        Policy::from_toml(
            "mode = \"enforce\"\n[migration]\nenabled = true\n",
            "keyrotor.toml",
        )
        .unwrap()
    }

    fn runner() -> String {
        format!("arn:aws:iam::{ACCOUNT}:role/runner")
    }

    fn guard_arn() -> String {
        guard_policy_arn("aws", ACCOUNT)
    }

    struct Fixture {
        iam: MemIam,
        state: MemState,
        audit: MemAudit,
        sent: Sent,
    }

    impl Fixture {
        /// User `app`, tagged for `runner()` when `tagged`, with one key last used on day
        /// -60 (idle) and a managed policy; the guard's managed policy as deployed.
        fn new(tagged: bool, key: KeyStatus) -> Fixture {
            let iam = MemIam::default();
            {
                let mut w = iam.0.lock().unwrap();
                let mut user = MemUser {
                    attached: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
                    keys: vec![AccessKey {
                        id: AccessKeyId::parse(KEY).unwrap(),
                        status: key,
                        created: t(-100),
                        last_used: Some(LastUsed {
                            at: t(-60),
                            service: None,
                            region: None,
                        }),
                    }],
                    ..MemUser::default()
                };
                if tagged {
                    user.tags.insert(TAG_MIGRATE_TO.into(), runner());
                }
                w.users.insert("app".into(), user);
                w.policies.insert(guard_arn(), guard_policy());
            }
            Fixture {
                iam,
                state: MemState::default(),
                audit: MemAudit::default(),
                sent: Sent::default(),
            }
        }

        fn ports(&self) -> MigrationPorts<'_> {
            MigrationPorts {
                identity: &Me,
                iam: &self.iam,
                keys: &self.iam,
                roles: &self.iam,
                state: &self.state,
                notifier: &self.sent,
                audit: &self.audit,
                directory: None,
            }
        }

        /// The role keyrotor provisions for `app`, as IAM would have it, with `trust`.
        fn role(&self, trust: &serde_json::Value, migrated_from: &str) -> String {
            let plan = self.plan();
            self.iam.0.lock().unwrap().roles.insert(
                plan.name.clone(),
                RoleInfo {
                    arn: plan.arn.clone(),
                    last_used: Some(t(-70)),
                    trust_policy: trust.to_string(),
                    tags: Tags::from([
                        (TAG_MIGRATED_FROM.to_owned(), migrated_from.to_owned()),
                        (TAG_MIGRATE_TO.to_owned(), runner()),
                    ]),
                    permissions_boundary: None,
                },
            );
            plan.arn
        }

        fn plan(&self) -> RolePlan {
            role_plan(
                "app",
                &TrustScope::account("aws", ACCOUNT),
                &WorkloadIdentity::parse(&runner()).unwrap(),
                &Permissions::default(),
                &policy(),
                false,
            )
        }

        /// A migration item written straight into the state table.
        async fn item(&self, stage: MigrationStage, role_arn: &str, since: DateTime<Utc>) {
            let record = MigrationRecord {
                user: "app".into(),
                role_arn: role_arn.into(),
                stage,
                since,
                provisioned_at: t(-80),
                adopted_at: Some(t(-70)),
                deactivated: Vec::new(),
                migrate_to: None,
                version: 0,
            };
            let pk = MigrationRecord::partition(ACCOUNT);
            assert!(
                self.state
                    .put_versioned(&pk, "app", 0, &record.attrs())
                    .await
                    .unwrap()
            );
        }

        async fn sweep(&self) -> MigrationSweep {
            sweep(
                &self.ports(),
                &policy(),
                t(0),
                &crate::ports::SystemClock::Fixed(t(0)),
            )
            .await
            .unwrap()
        }

        fn blocked_decisions(&self) -> usize {
            self.audit
                .resource_records()
                .iter()
                .filter(|r| r.outcome == Some(Outcome::Blocked))
                .count()
        }
    }

    /// (stage, since, key status, the change a real migration makes there)
    fn destructive_stages() -> [(MigrationStage, DateTime<Utc>, KeyStatus, &'static str); 3] {
        [
            (
                MigrationStage::KeysIdle,
                t(-1),
                KeyStatus::Active,
                "AttachUserPolicy",
            ),
            (
                MigrationStage::Guarded,
                t(-10),
                KeyStatus::Active,
                "UpdateAccessKey",
            ),
            (
                MigrationStage::KeysDeactivated,
                t(-40),
                KeyStatus::Inactive,
                "DeleteAccessKey",
            ),
        ]
    }

    #[tokio::test]
    async fn a_forged_record_without_its_role_neither_guards_nor_deactivates_nor_deletes() {
        for (stage, since, key, change) in destructive_stages() {
            // GIVEN a migration item nobody provisioned: the role it names does not exist
            let f = Fixture::new(true, key);
            f.item(stage, &f.plan().arn, since).await;
            // WHEN the sweep follows it
            let done = f.sweep().await;
            // THEN the step is blocked, counted as work left, audited, and IAM untouched
            assert_eq!(
                done.transitions.len(),
                1,
                "{stage:?}: {:?}",
                done.transitions
            );
            let t0 = &done.transitions[0];
            assert_eq!(t0.status, "blocked", "{stage:?}: {t0:?}");
            assert!(t0.detail.contains("does not exist"), "{}", t0.detail);
            assert_eq!(done.failed(), 1);
            assert_eq!(f.iam.changes(), Vec::<String>::new(), "{stage:?}");
            assert_eq!(f.blocked_decisions(), 1, "{stage:?}");

            // The same item backed by the role keyrotor provisions does make the change.
            let real = Fixture::new(true, key);
            let arn = real.role(&real.plan().trust_policy, "app");
            real.item(stage, &arn, since).await;
            let done = real.sweep().await;
            assert_eq!(done.transitions[0].status, "done", "{stage:?}: {done:?}");
            assert!(
                real.iam.changes().iter().any(|c| c.starts_with(change)),
                "{stage:?}: {:?}",
                real.iam.changes()
            );
        }
    }

    #[tokio::test]
    async fn a_forged_record_is_blocked_when_the_user_or_the_role_does_not_back_it() {
        let plan_trust = Fixture::new(true, KeyStatus::Active).plan().trust_policy;
        let other = WorkloadIdentity::parse("arn:aws:iam::999999999999:role/attacker")
            .unwrap()
            .trust_policy(&TrustScope::account("aws", ACCOUNT));
        for (tagged, trust, from, why) in [
            (false, &plan_trust, "app", "no longer tagged"),
            (true, &other, "app", "differs"),
            (true, &plan_trust, "bob", "\"bob\""),
        ] {
            let f = Fixture::new(tagged, KeyStatus::Active);
            let arn = f.role(trust, from);
            f.item(MigrationStage::KeysIdle, &arn, t(-1)).await;
            let done = f.sweep().await;
            let t0 = &done.transitions[0];
            assert_eq!(t0.status, "blocked", "{why}: {t0:?}");
            assert!(t0.detail.contains(why), "{why}: {}", t0.detail);
            assert!(f.iam.changes().is_empty(), "{why}: {:?}", f.iam.changes());
        }
    }

    #[tokio::test]
    async fn the_guard_is_attached_only_as_the_deployed_managed_policy() {
        let tampered = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"}
        ]});
        for (doc, outcome) in [
            (None, "does not exist"),
            (Some(tampered), "does not say"),
            (Some(guard_policy()), "done"),
        ] {
            let f = Fixture::new(true, KeyStatus::Active);
            match doc {
                Some(d) => f.iam.0.lock().unwrap().policies.insert(guard_arn(), d),
                None => f.iam.0.lock().unwrap().policies.remove(&guard_arn()),
            };
            let arn = f.role(&f.plan().trust_policy, "app");
            f.item(MigrationStage::KeysIdle, &arn, t(-1)).await;
            let done = f.sweep().await;
            let t0 = &done.transitions[0];
            if outcome == "done" {
                assert_eq!(t0.status, "done", "{t0:?}");
                assert_eq!(
                    f.iam.changes(),
                    [format!("AttachUserPolicy app {}", guard_arn())]
                );
            } else {
                assert_eq!(t0.status, "blocked", "{t0:?}");
                assert!(
                    t0.detail.contains(outcome) && t0.detail.contains("infra/template.yaml"),
                    "{}",
                    t0.detail
                );
                assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
            }
        }
    }

    #[tokio::test]
    async fn in_plan_mode_apply_and_rollback_refuse_and_change_nothing() {
        // Invariant 7 is held by the steps, not only by their callers (CLI, Lambda).
        let clock = crate::ports::SystemClock::Fixed(t(0));
        let plan_mode =
            Policy::from_toml("[migration]\nenabled = true\n", "keyrotor.toml").unwrap();
        let f = Fixture::new(true, KeyStatus::Active);
        let e = apply(&f.ports(), &plan_mode, "app", t(0), &clock)
            .await
            .unwrap_err();
        assert!(matches!(e, StepError::Blocked(_)), "{e}");
        assert!(e.to_string().contains("mode is \"plan\""), "{e}");
        let e = rollback(&f.ports(), &plan_mode, "app", t(0), &clock)
            .await
            .unwrap_err();
        assert!(matches!(e, StepError::Blocked(_)), "{e}");
        assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
        assert!(f.audit.resource_records().is_empty());
    }

    #[tokio::test]
    async fn apply_adopts_only_the_planned_role_and_changes_nothing_otherwise() {
        let clock = crate::ports::SystemClock::Fixed(t(0));
        let attacker = WorkloadIdentity::parse("arn:aws:iam::999999999999:role/attacker")
            .unwrap()
            .trust_policy(&TrustScope::account("aws", ACCOUNT));
        for (trust, from, why) in [
            (Some(&attacker), "app", "differs"),
            (None, "bob", "\"bob\""),
        ] {
            let f = Fixture::new(true, KeyStatus::Active);
            let planned = f.plan().trust_policy;
            f.role(trust.unwrap_or(&planned), from);
            let e = apply(&f.ports(), &policy(), "app", t(0), &clock)
                .await
                .unwrap_err();
            assert!(matches!(e, StepError::Blocked(_)), "{e}");
            assert!(e.to_string().contains(why), "{e}");
            assert!(f.iam.changes().is_empty(), "{:?}", f.iam.changes());
            assert!(
                f.state
                    .list("migration#123456789012")
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        // The planned role itself is adopted (idempotent apply after a partial run).
        let f = Fixture::new(true, KeyStatus::Active);
        let arn = f.role(&f.plan().trust_policy, "app");
        let plan = apply(&f.ports(), &policy(), "app", t(0), &clock)
            .await
            .unwrap();
        let record = plan.record.unwrap();
        assert_eq!(record.role_arn, arn);
        assert_eq!(record.migrate_to.as_deref(), Some(runner().as_str()));
    }

    #[tokio::test]
    async fn removing_the_guard_also_deletes_an_inline_guard_of_an_earlier_version() {
        let f = Fixture::new(true, KeyStatus::Active);
        f.iam
            .0
            .lock()
            .unwrap()
            .users
            .get_mut("app")
            .unwrap()
            .inline
            .insert(GUARD_POLICY_NAME.into(), guard_policy());
        let arn = f.role(&f.plan().trust_policy, "app");
        f.item(MigrationStage::Guarded, &arn, t(-1)).await;
        let clock = crate::ports::SystemClock::Fixed(t(0));
        let (record, note) = rollback_report(&f.ports(), &policy(), "app", t(0), &clock)
            .await
            .unwrap();
        assert_eq!(record.stage, MigrationStage::RolledBack);
        assert!(note.unwrap().contains("inline guard policy"));
        assert_eq!(
            f.iam.changes(),
            [
                format!("DetachUserPolicy app {}", guard_arn()),
                format!("DeleteUserPolicy app {GUARD_POLICY_NAME}"),
            ]
        );
    }
}
