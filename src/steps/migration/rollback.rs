//! `keyrotor migrate rollback <user>`: reactivates the keys the migration deactivated and
//! removes the guard (an audited mutation); the role stays.

use chrono::{DateTime, Utc};

use super::change::remove_guard;
use super::{MigrationPorts, MigrationStore, entry, lease_name};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Outcome, Phase};
use crate::domain::migration::{MigrationRecord, MigrationStage};
use crate::domain::model::KeyStatus;
use crate::domain::policy::Policy;
use crate::ports::Clock;
use crate::steps::audited::Mutation;
use crate::steps::{StepError, new_run_id, with_lease};

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
    crate::steps::require_enforce(policy, &format!("rolling back the migration of {user}"))?;
    let caller = ports.identity.caller().await?;
    let account = caller.account.clone();
    let store = MigrationStore::new(ports.state, &account);
    let Some(record) = store.get(user).await? else {
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
        let mutation = Mutation::begin(
            &log,
            wall,
            entry(
                (&account, user),
                "rollback",
                (Phase::Intent, None),
                detail,
                (from, to),
                false,
                now,
            ),
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
        match &result {
            Ok(note) => {
                // The outcome says what the intent said would be done, and any note.
                let mut done = mutation.intent().detail.clone();
                if let Some(note) = note {
                    done = format!("{done}; {note}");
                }
                mutation.succeeded(done).await?
            }
            // A failed rollback keeps the intent's `after` in its outcome record, as these
            // records always have (some keys may be reactivated already).
            Err(e) => mutation.end(Outcome::Failed, e.to_string(), None).await?,
        }
        let note = result?;
        let next = MigrationRecord {
            stage: MigrationStage::RolledBack,
            since: now,
            ..record.clone()
        };
        if store.replace(record.version, next.clone()).await?.is_none() {
            return Err(StepError::InProgress(format!(
                "in progress: another run changed the migration of {user}; run the command again"
            )));
        }
        Ok((next, note))
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
