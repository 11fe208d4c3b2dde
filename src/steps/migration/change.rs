//! The IAM changes a migration step makes (attach or remove the guard, deactivate or
//! delete the user's keys); the sweep wraps each in its audit records.

use chrono::{DateTime, Utc};

use super::MigrationPorts;
use crate::domain::migration::{GUARD_POLICY_NAME, MigrationChange, guard_policy_arn};
use crate::domain::model::KeyStatus;
use crate::domain::policy::Policy;
use crate::ports::{Caller, PortError};
use crate::steps::guard::{self, Removal};

/// What a change did beyond its stage: the keys it deactivated, and anything to say.
#[derive(Debug, Default)]
pub(super) struct Effect {
    pub(super) deactivated: Vec<String>,
    pub(super) note: Option<String>,
}

/// Detaches the guard's managed policy from `user` and deletes the inline guard policy
/// earlier versions put on users, if there is one; says so when there was. The deployed
/// roles may not delete inline policies (the templates grant only the guard's attachment):
/// then the note says what to check by hand, and the managed guard is removed all the same.
pub(super) async fn remove_guard(
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

/// Carries out a change (its preconditions were read by [`Run::refusal`](super::checks::Run::refusal)).
pub(super) async fn change(
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
