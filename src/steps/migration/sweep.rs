//! `keyrotor sweep --kind migration`: follows every migration in progress, one user at a
//! time under that user's lease. Each due step is re-checked against IAM (`checks`), made
//! as an audited mutation (`change`), the owner told, and the record moved on by
//! compare-and-set.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::change::{Effect, change};
use super::checks::{OrganizationCache, Run, facts};
use super::{MigrationPorts, MigrationStore, entry, lease_name};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Outcome, Phase};
use crate::domain::migration::{MigrationChange, MigrationRecord, MigrationStage, next};
use crate::domain::model::{KeyStatus, TAG_OWNER, Tags};
use crate::domain::policy::{Mode, Policy};
use crate::ports::{Clock, Notification, PortError};
use crate::steps::audited::Mutation;
use crate::steps::status::Status;
use crate::steps::{StepError, new_run_id, with_lease};

/// One transition made (or planned) by the sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Transition {
    pub user: String,
    pub from: MigrationStage,
    pub to: MigrationStage,
    /// `done`, `dry-run`, `failed`, `conflict`, `skipped` (out of scope) or `blocked`
    /// (nothing changed: the migration is not backed by IAM now, or the guard's managed
    /// policy is missing or altered; a person must look).
    pub status: Status,
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
    /// run held the user) or `blocked` ([`Status::is_failure`]). A `skipped` one (the user
    /// is out of scope) is a decision, not a failure.
    pub fn failed(&self) -> usize {
        self.transitions
            .iter()
            .filter(|t| t.status.is_failure())
            .count()
    }
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
    let store = MigrationStore::new(ports.state, &caller.account);
    let recs = store.list().await?;
    let progress = crate::progress::Phase::start("migrations", recs.len());
    let organization = OrganizationCache::default();
    for record in recs {
        progress.step();
        let user = record.user.clone();
        let from = record.stage;
        let work = async {
            // Read again under the lease: a rollback may have changed it meanwhile.
            match store.get(&user).await? {
                Some(current) => {
                    let run = Run {
                        ports,
                        policy,
                        caller: &caller,
                        log: &log,
                        store: &store,
                        organization: &organization,
                    };
                    follow(&run, current, now, wall).await
                }
                None => Ok(Vec::new()),
            }
        };
        match with_lease(
            ports.state,
            &lease_name(&caller.account, &user),
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
                status: Status::Conflict,
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
    run: &Run<'_, '_>,
    mut record: MigrationRecord,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<Transition>, StepError> {
    let (ports, policy, caller, log, store) =
        (run.ports, run.policy, run.caller, run.log, run.store);
    let mut done = Vec::new();
    let account = &caller.account;
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
            done.push(transition(Status::DryRun, step.detail.clone()));
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
            record = note_deactivating(ports, store, record).await?;
        }
        // The owner is notified between the change and its outcome record, so the
        // mutation is begun and ended here rather than through `mutate`.
        let mutation = Mutation::begin(
            log,
            wall,
            entry(
                (account, &user),
                step.to.as_str(),
                (Phase::Intent, None),
                step.detail.clone(),
                (Some(from), Some(step.to)),
                false,
                now,
            ),
        )
        .await?;
        let Effect { deactivated, note } =
            match change(ports, caller, &user, step.change, now, policy).await {
                Ok(effect) => effect,
                Err(e) => {
                    // Nothing changed: the outcome's `after` is the stage the user stays in.
                    mutation.failed(&e).await?;
                    done.push(transition(Status::Failed, e.to_string()));
                    break;
                }
            };
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
        mutation
            .succeeded(format!(
                "now {}; {}{}",
                step.to.as_str(),
                match &sent {
                    Ok(_) => "owner notified".to_owned(),
                    Err(e) => format!("notification failed: {e}"),
                },
                note.as_ref().map(|n| format!("; {n}")).unwrap_or_default()
            ))
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
        let Some(stored) = store.replace(record.version, next_record).await? else {
            done.push(transition(
                Status::Conflict,
                "the record was changed by another run".into(),
            ));
            break;
        };
        done.push(transition(
            Status::Done,
            match &note {
                Some(n) => format!("{}; {n}", step.detail),
                None => step.detail.clone(),
            },
        ));
        record = stored;
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
    store: &MigrationStore<'_>,
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
    let user = next.user.clone();
    store.replace(record.version, next).await?.ok_or_else(|| {
        StepError::InProgress(format!(
            "in progress: another run changed the migration of {user}; the next run re-reads it"
        ))
    })
}
