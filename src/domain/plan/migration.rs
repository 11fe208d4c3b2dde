//! Planning migrations: a user tagged `keyrotor:migrate-to` that still has an active key
//! and no migration in progress gets a role provisioned. Exclusions and exemption notices
//! for the user are decided with its keys, in `iam_keys`.

use super::{GLOBAL, Planner};
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::model::{IamUser, KeyStatus, Kind, TAG_MIGRATE_TO};

impl Planner<'_> {
    /// The `provision-role` action for an in-scope user, when one is due.
    pub(super) fn migration_candidate(&mut self, user: &IamUser, owner: Option<String>) {
        if let Some(identity) = user.tags.get(TAG_MIGRATE_TO)
            && user.keys.iter().any(|k| k.status == KeyStatus::Active)
            && !self.inv.migrating.contains(&user.name)
        {
            self.actions.push(Action {
                kind: Kind::Migration,
                resource: user.name.clone(),
                principal: Some(user.name.clone()),
                account: self.inv.account.clone(),
                region: GLOBAL.to_owned(),
                action: ActionType::ProvisionRole,
                reason: Reason::MigrateTo,
                detail: format!(
                    "has active long-lived keys and is tagged {TAG_MIGRATE_TO} = {identity}; provision a role for that identity (max session {}h)",
                    self.policy.migration.max_session_hours
                ),
                due_at: self.now,
                owner,
                blocked: None,
            });
        }
    }
}
