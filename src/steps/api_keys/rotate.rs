//! `keyrotor rotate api-key` (and the rotate-api-key state machine): one key, now, with
//! the checks that must hold before a rotation of it may start.

use chrono::{DateTime, Utc};

use super::run::Run;
use super::{API_KEY_QUOTA, Advanced, ApiKeyPorts, inventory, lease_name};
use crate::domain::api_rotation::{ApiKeySecret, RotationStage, Trigger};
use crate::domain::inventory::Inventory;
use crate::domain::model::ApiKey;
use crate::domain::policy::Policy;
use crate::domain::scope;
use crate::ports::{Clock, PortError};
use crate::steps::status::Status;
use crate::steps::{StepError, new_run_id, with_lease};

/// Rotates one key now, on demand: `key_ref` is an API key id or an exact name. Continues
/// the key's rotation if one is in progress. Carries out every step that is due: through
/// promotion, and for `Trigger::Compromised` also the retirement of the old key.
pub async fn rotate(
    ports: &ApiKeyPorts<'_>,
    policy: &Policy,
    region: &str,
    key_ref: &str,
    trigger: Trigger,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Advanced, StepError> {
    crate::steps::require_enforce(policy, &format!("rotating API key {key_ref}"))?;
    let caller = ports.identity.caller().await?;
    let inv = inventory(ports, &caller, region).await?;
    // A key its own rotation already deleted (a repeated or duplicate execution): done.
    if let Some(r) = inv
        .api_rotations
        .iter()
        .find(|r| r.old_key == key_ref.trim() && r.stage == RotationStage::Deleted)
        && !inv.api_keys.iter().any(|k| k.id == r.old_key)
    {
        return Ok(Advanced {
            key: r.old_key.clone(),
            name: r.name.clone(),
            secret: Some(r.secret.clone()),
            trigger: Some(r.trigger),
            steps: Vec::new(),
            stage: Some(RotationStage::Deleted),
            new_key: r.new_key.clone(),
            next: None,
            next_at: None,
            status: Status::Done,
            error: None,
            cause: None,
        });
    }
    let gone;
    let key = match resolve(&inv.api_keys, key_ref, region) {
        Ok(key) => key,
        // A run that deleted the old key stopped before recording it (the response or the
        // record was lost): the rotation goes on, and its Delete step finds nothing left.
        Err(e) => match inv
            .api_rotations
            .iter()
            .find(|r| r.old_key == key_ref.trim() && r.stage == RotationStage::Retired)
        {
            Some(r) => {
                gone = ApiKey {
                    id: r.old_key.clone(),
                    name: r.name.clone(),
                    enabled: false,
                    created: r.started_at,
                    last_updated: None,
                    tags: Default::default(),
                    usage_plans: Vec::new(),
                };
                &gone
            }
            None => return Err(e),
        },
    };
    let run_id = new_run_id(wall.now());
    let run = Run::new(ports, policy, now, wall, &run_id, &caller, region);
    let existing = inv
        .api_rotations
        .iter()
        .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted);
    let work = async {
        let rotation = match existing {
            Some(r) if trigger == Trigger::Compromised && r.trigger != Trigger::Compromised => {
                run.escalate_to_compromised(r).await?
            }
            Some(r) => r.clone(),
            None => {
                if let Err(why) = preflight(ports, key, &inv, policy, now).await? {
                    return Err(StepError::InvalidInput(format!(
                        "API key {} ({}) cannot be rotated: {why}",
                        key.id, key.name
                    )));
                }
                run.start(key, trigger).await?
            }
        };
        let done = run.advance(rotation).await?;
        match done.status {
            Status::Blocked => Err(StepError::Blocked(format!(
                "rotation of API key {} ({}) is blocked: {}",
                key.id,
                key.name,
                done.error.clone().unwrap_or_default()
            ))),
            _ => Ok(done),
        }
    };
    let done = with_lease(
        ports.state,
        &lease_name(&caller.account, region, &key.id),
        &format!("API key {} ({})", key.id, key.name),
        &run_id,
        wall,
        work,
    )
    .await;
    run.log.finish(done, wall.now()).await
}

/// Finds a key by id, or by exact name when the name is unique.
fn resolve<'a>(keys: &'a [ApiKey], key_ref: &str, region: &str) -> Result<&'a ApiKey, StepError> {
    let key_ref = key_ref.trim();
    if let Some(k) = keys.iter().find(|k| k.id == key_ref) {
        return Ok(k);
    }
    let named: Vec<&ApiKey> = keys.iter().filter(|k| k.name == key_ref).collect();
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(StepError::InvalidInput(format!(
            "no API key with id or name {key_ref:?} in {region}; list them with `keyrotor plan --kind api-keys` or `aws apigateway get-api-keys`"
        ))),
        many => Err(StepError::InvalidInput(format!(
            "{} API keys are named {key_ref:?} in {region} ({}); pass the id instead",
            many.len(),
            many.iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Whether a rotation of `key` may start: `Err(reason)` names what is wrong and how to fix
/// it. Reads only.
pub(super) async fn preflight(
    ports: &ApiKeyPorts<'_>,
    key: &ApiKey,
    inv: &Inventory,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Result<(), String>, PortError> {
    if let Some(e) = scope::api_key_exclusion(&key.name, &key.tags, now, policy) {
        return Ok(Err(format!(
            "it is out of keyrotor's scope ({}): {}",
            e.code(),
            e.detail()
        )));
    }
    let Some(secret) = key.bound_secret() else {
        return Ok(Err(
            "it is not managed: tag it keyrotor:secret = <name of the secret its consumers read>"
                .into(),
        ));
    };
    if !key.enabled {
        return Ok(Err(
            "it is disabled; keyrotor rotates enabled keys only".into()
        ));
    }
    if key.usage_plans.is_empty() {
        return Ok(Err(
            "it is in no usage plan, so a replacement would not work for any API either; attach it to its usage plans first".into(),
        ));
    }
    let limit = API_KEY_QUOTA.saturating_sub(policy.api_keys.key_headroom as usize);
    if inv.api_keys.len() >= limit {
        return Ok(Err(format!(
            "the region has {} API keys, within [api_keys] key_headroom = {} of API Gateway's quota of {API_KEY_QUOTA}; delete unused keys or ask for a quota increase",
            inv.api_keys.len(),
            policy.api_keys.key_headroom
        )));
    }
    let Some(current) = ports
        .secrets
        .value(secret, None, Some("AWSCURRENT"))
        .await?
    else {
        return Ok(Err(format!(
            "its secret {secret:?} (tag keyrotor:secret) does not exist or has no string value; create it with {{\"apiKeyId\": \"{}\", \"value\": ...}}",
            key.id
        )));
    };
    let current = match ApiKeySecret::parse(current.expose()) {
        Ok(c) => c,
        Err(why) => {
            return Ok(Err(format!(
                "the AWSCURRENT value of secret {secret:?} {why}; fix the secret, then run again"
            )));
        }
    };
    if current.api_key_id != key.id {
        return Ok(Err(format!(
            "secret {secret:?} holds API key {}, not {}; fix the secret or the tag",
            current.api_key_id, key.id
        )));
    }
    // The tag on the key is the key owner's word; the secret must agree to hold the key.
    crate::steps::guard::api_key_bound(
        ports.admin,
        ports.secrets,
        &key.id,
        secret,
        inv.account.as_str(),
    )
    .await
}
