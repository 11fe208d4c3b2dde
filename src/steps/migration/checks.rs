//! What the migration sweep reads from IAM before it changes anything for a user (safety
//! invariant 8): the facts that decide the next step (role and key last use), and why a
//! due change must not be made now — the user out of scope, the record not backed by IAM,
//! the guard's managed policy missing or altered. A read that fails blocks the step.

use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{MigrationPorts, MigrationStore, needs_organization, seen, trust_scope};
use crate::audit::AuditLog;
use crate::domain::audit_record::Outcome;
use crate::domain::migration::{
    self, MigrationChange, MigrationFacts, MigrationRecord, Permissions, TrustScope,
    WorkloadIdentity, guard_policy, guard_policy_arn, role_plan,
};
use crate::domain::model::{KeyStatus, TAG_MIGRATE_TO, Tags};
use crate::domain::policy::Policy;
use crate::ports::{Caller, PortError};
use crate::steps::status::Status;
use crate::steps::{StepError, guard};

pub(super) async fn facts(
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

/// The organization as a sweep read it: at most once per run, and only when a migration's
/// destructive step needs it.
#[derive(Default)]
pub(super) struct OrganizationCache(Mutex<Option<TrustScope>>);

/// What every migration of one sweep shares.
pub(super) struct Run<'r, 'p> {
    pub(super) ports: &'r MigrationPorts<'p>,
    pub(super) policy: &'r Policy,
    pub(super) caller: &'r Caller,
    pub(super) log: &'r AuditLog<'r>,
    /// The account's migration records.
    pub(super) store: &'r MigrationStore<'r>,
    pub(super) organization: &'r OrganizationCache,
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
    pub(super) async fn refusal(
        &self,
        record: &MigrationRecord,
        change: MigrationChange,
        now: DateTime<Utc>,
    ) -> Result<Option<(Status, Outcome, String)>, StepError> {
        if matches!(change, MigrationChange::None | MigrationChange::RemoveGuard) {
            return Ok(None);
        }
        let user = &record.user;
        // Out of scope now (path, exempt, break-glass, required tags; read from IAM now).
        let found = match guard::user_in_scope(self.ports.iam, user, now, self.policy).await? {
            Ok(found) => found,
            Err(why) => return Ok(Some((Status::Skipped, Outcome::Skipped, why))),
        };
        if let Err(why) = self.confirm(record, &found.tags).await? {
            return Ok(Some((
                Status::Blocked,
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
                    Status::Blocked,
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
