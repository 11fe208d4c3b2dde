//! `keyrotor migrate apply <user>`: provisions the role (an audited mutation) and records
//! the migration as RoleProvisioned. A role of the planned name is adopted only when it is
//! exactly the planned one; nothing is ever taken over.

use chrono::{DateTime, Utc};

use super::plan::plan_for;
use super::{
    MigrationPlan, MigrationPorts, MigrationStore, TAG_MIGRATED_FROM, entry, lease_name, seen,
};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Outcome, Phase};
use crate::domain::migration::{
    self, INLINE_POLICY_NAME, MigrationRecord, MigrationStage, RolePlan,
};
use crate::domain::model::{TAG_MIGRATE_TO, Tags};
use crate::domain::policy::Policy;
use crate::ports::{Clock, PortError};
use crate::steps::audited::Mutation;
use crate::steps::{StepError, new_run_id, with_lease};

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
    crate::steps::require_enforce(policy, &format!("applying the migration of {user}"))?;
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
        let mutation = Mutation::begin(
            &log,
            wall,
            entry(
                (&account, user),
                "provision-role",
                (Phase::Intent, None),
                detail,
                (None, Some(MigrationStage::RoleProvisioned)),
                false,
                now,
            ),
        )
        .await?;
        let result = provision(ports, user, &role, &identity_tag).await;
        match &result {
            Ok(_) => {
                // The outcome says what the intent said would be done.
                let done = mutation.intent().detail.clone();
                mutation.succeeded(done).await?
            }
            // A failed provisioning keeps the intent's `after` in its outcome record, as
            // these records always have (a half-made role may exist).
            Err(e) => mutation.end(Outcome::Failed, e.to_string(), None).await?,
        }
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
        let Some(stored) = MigrationStore::new(ports.state, &account)
            .replace(version, record)
            .await?
        else {
            return Err(StepError::InProgress(format!(
                "in progress: another run changed the migration of {user}; run the command again"
            )));
        };
        Ok(MigrationPlan {
            record: Some(stored),
            ..plan.clone()
        })
    };
    let done = with_lease(
        ports.state,
        &lease_name(&account, user),
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
