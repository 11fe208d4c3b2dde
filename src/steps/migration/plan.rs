//! `keyrotor migrate plan <user>`: what a migration would do for one user, read-only (the
//! keys and their use, the permissions, the role and its trust, and why it is blocked).

use chrono::{DateTime, Utc};

use super::{
    KeyUsage, MigrationPlan, MigrationPorts, MigrationStore, needs_organization, tag_error,
    trust_scope,
};
use crate::domain::migration::{WorkloadIdentity, role_plan};
use crate::domain::model::{KeyStatus, TAG_MIGRATE_TO};
use crate::domain::policy::Policy;
use crate::steps::{StepError, guard};

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

pub(super) async fn plan_for(
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
        record: MigrationStore::new(ports.state, &caller.account)
            .get(user)
            .await?,
        blocked,
    })
}
