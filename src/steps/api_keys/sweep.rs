//! `keyrotor sweep --kind api-keys` (and the scheduled sweep): every rotation step of the
//! region that is due, new rotations included.

use chrono::{DateTime, Utc};

use super::run::Run;
use super::{Advanced, ApiKeyPorts, ApiKeySweep, inventory, lease_name, rotate::preflight};
use crate::domain::api_rotation::{RotationStage, Trigger};
use crate::domain::model::Kind;
use crate::domain::plan;
use crate::domain::policy::{Mode, Policy};
use crate::ports::Clock;
use crate::steps::status::Status;
use crate::steps::{StepError, new_run_id, with_lease};

/// Plans the API keys of `region` and carries out every rotation step that is due: new
/// rotations for keys past `max_age_days`, and the next steps (including retire and
/// delete, when their time has come) of rotations in progress.
pub async fn sweep(
    ports: &ApiKeyPorts<'_>,
    policy: &Policy,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<ApiKeySweep, StepError> {
    let caller = ports.identity.caller().await?;
    let inv = inventory(ports, &caller, region).await?;
    let plan = plan::plan(&inv, now, policy, &[Kind::ApiKeys]);
    let run_id = new_run_id(wall.now());
    let run = Run::new(ports, policy, now, wall, &run_id, &caller, region);
    let mut out = Vec::new();
    let due: Vec<_> = plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys)
        .collect();
    let progress = crate::progress::Phase::start("API keys", due.len());
    for action in due {
        progress.step();
        let Some(key) = inv.api_keys.iter().find(|k| k.id == action.resource) else {
            continue;
        };
        let existing = inv
            .api_rotations
            .iter()
            .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted)
            .cloned();
        if policy.mode == Mode::Plan {
            out.push(
                run.dry_run(key, action.action, &action.detail, existing)
                    .await?,
            );
            continue;
        }
        let work = async {
            let rotation = match existing {
                Some(r) => r,
                None => match preflight(ports, key, &inv, policy, now).await? {
                    Ok(()) => run.start(key, Trigger::Age).await?,
                    Err(why) => return run.blocked_start(key, why).await,
                },
            };
            run.advance(rotation).await
        };
        let result = with_lease(
            ports.state,
            &lease_name(&caller.account, region, &key.id),
            &format!("API key {} ({})", key.id, key.name),
            &run_id,
            wall,
            work,
        )
        .await;
        match result {
            Ok(done) => out.push(done),
            Err(StepError::InProgress(why)) => out.push(Advanced {
                status: Status::Conflict,
                error: Some(why),
                ..Advanced::none(key)
            }),
            Err(e) => return run.log.finish(Err(e), wall.now()).await,
        }
    }
    run.log.anchor(wall.now()).await?;
    Ok(ApiKeySweep {
        run_id,
        mode: policy.mode,
        region: region.to_owned(),
        plan,
        rotations: out,
    })
}
