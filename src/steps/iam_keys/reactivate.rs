//! `keyrotor reactivate iam-key`: the undo of a deactivation keyrotor made (by the sweep, or
//! by `keyrotor respond` containing a leaked key). The key is
//! reactivated (an audited mutation) and its lifecycle starts a fresh unused window, so
//! the sweep does not deactivate it again at once.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{IamKeyPorts, KeyRecordStore, Run, lease_name};
use crate::audit::AuditLog;
use crate::domain::action::ActionType;
use crate::domain::audit_record::Phase;
use crate::domain::lifecycle::{self, KeyRecord, Stage};
use crate::domain::model::{AccessKeyId, KeyStatus};
use crate::domain::plan::key_facts;
use crate::domain::policy::Policy;
use crate::ports::{Clock, PortError};
use crate::steps::audited::mutate;
use crate::steps::{StepError, new_run_id, with_lease};

/// What `keyrotor reactivate iam-key` did.
#[derive(Debug, Clone, Serialize)]
pub struct Reactivated {
    pub run_id: String,
    pub key: String,
    pub user: String,
    /// When keyrotor will look at the key again (a fresh unused window).
    pub reconsidered_at: Option<DateTime<Utc>>,
}

/// Reactivates a key keyrotor deactivated (audited), giving it a fresh unused window.
pub async fn reactivate(
    ports: &IamKeyPorts<'_>,
    policy: &Policy,
    key_text: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Reactivated, StepError> {
    let key = AccessKeyId::parse(key_text.trim()).map_err(|e| {
        StepError::InvalidInput(format!(
            "access key id {key_text:?}: {e}; pass the id shown by `keyrotor plan --kind iam-keys` or `keyrotor audit list`"
        ))
    })?;
    let caller = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let work = async {
        let store = KeyRecordStore::new(ports.state, &caller.account);
        let records = store.list().await?;
        let record = records.iter().find(|r| r.key == key);
        let Some(record) =
            record.filter(|r| matches!(r.stage, Stage::Deactivated | Stage::Contained))
        else {
            return Err(StepError::InvalidInput(format!(
                "keyrotor did not deactivate {key} (its lifecycle stage in account {} is {}); it only reactivates keys it deactivated. To reactivate another key: aws iam update-access-key --access-key-id {key} --status Active --user-name <user>",
                caller.account,
                record.map_or("none", |r| r.stage.as_str())
            )));
        };
        let keys = ports
            .iam
            .access_keys(&record.user)
            .await
            .map_err(|e| match e {
                PortError::NotFound { .. } => StepError::InvalidInput(format!(
                    "user {} of key {key} no longer exists; nothing to reactivate",
                    record.user
                )),
                e => e.into(),
            })?;
        let Some(current) = keys.iter().find(|k| k.id == key) else {
            return Err(StepError::InvalidInput(format!(
                "key {key} of {} no longer exists (deleted); nothing to reactivate",
                record.user
            )));
        };
        let run = Run {
            ports,
            policy,
            now,
            wall,
            log: AuditLog::new(ports.audit, run_id.clone(), caller.arn.clone()),
            account: caller.account.clone(),
            store,
        };
        let done = async {
            let stages = (record.stage, Stage::Reactivated);
            let detail = format!(
                "reactivated on request by {}; reconsidered after a fresh {}-day unused window",
                caller.arn, policy.iam_keys.unused_days
            );
            let mut intent = run.entry(
                key.as_str(),
                ActionType::Reset,
                "reactivated-on-request",
                (Phase::Intent, None),
                detail.clone(),
                stages,
            );
            intent.action = "reactivate".into();
            intent.dry_run = false;
            // A failure records `after` = deactivated: nothing changed.
            mutate(
                &run.log,
                wall,
                intent,
                async {
                    if current.status == KeyStatus::Active {
                        return Ok(());
                    }
                    ports.admin.set_key_active(&record.user, &key, true).await
                },
                |_| detail.clone(),
            )
            .await??;
            let next = KeyRecord {
                key: key.clone(),
                user: record.user.clone(),
                stage: Stage::Reactivated,
                since: now,
                version: 0,
                secret: None,
            };
            let Some(next) = run.store.replace(record.version, next).await? else {
                return Err(StepError::InProgress(format!(
                    "the lifecycle record of {key} changed while it was reactivated; run the command again"
                )));
            };
            let mut facts = key_facts(current);
            facts.active = true;
            let reconsidered_at = lifecycle::next(facts, Some(&next), now, policy).map(|n| n.at);
            Ok(Reactivated {
                run_id: run_id.clone(),
                key: key.to_string(),
                user: record.user.clone(),
                reconsidered_at,
            })
        }
        .await;
        run.log.finish(done, wall.now()).await
    };
    with_lease(
        ports.state,
        &lease_name(&caller.account),
        &format!("the IAM keys of account {}", caller.account),
        &run_id,
        wall,
        work,
    )
    .await
}
