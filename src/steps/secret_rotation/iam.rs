//! Secrets holding an IAM access key (`{"userName", "accessKeyId", "secretAccessKey"}`):
//! the user the secret names must name the secret too; a new key is made under IAM's 2-key
//! limit only by removing a key nobody can be using (safety invariant 2); the new key is
//! tested until IAM accepts it; the previous one is scheduled, never disabled here.

use std::time::Duration as StdDuration;

use serde::{Deserialize, Serialize};

use super::Hook;
use super::iam_attempt::answered;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::lifecycle::{KeyRecord, Stage};
use crate::domain::model::{AccessKeyId, Kind};
use crate::ports::{PortError, SecretValue};
use crate::steps::StepError;
use crate::steps::api_keys::replacement::Stop;
use crate::steps::audited::Mutation;
use crate::steps::guard::{self, Removal};
use crate::steps::iam_keys::KeyRecordStore;

/// Delays between the attempts of testSecret while a new IAM key becomes valid.
pub(super) const IAM_TEST_BACKOFF: [u64; 6] = [1, 2, 4, 8, 16, 16];

/// The JSON an IAM key secret holds. No `Debug`: it carries the secret access key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct IamKeySecret {
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "accessKeyId")]
    access_key_id: String,
    #[serde(rename = "secretAccessKey")]
    secret_access_key: String,
}

impl IamKeySecret {
    pub(super) fn parse(text: &str) -> Result<IamKeySecret, String> {
        let parsed: IamKeySecret = serde_json::from_str(text).map_err(|e| {
            format!(
                "is not the JSON object {{\"userName\", \"accessKeyId\", \"secretAccessKey\"}} keyrotor expects ({} at line {}, column {})",
                match e.classify() {
                    serde_json::error::Category::Data => "missing or mistyped field",
                    serde_json::error::Category::Syntax => "not valid JSON",
                    _ => "truncated",
                },
                e.line(),
                e.column()
            )
        })?;
        if parsed.user_name.is_empty() || parsed.secret_access_key.is_empty() {
            return Err("has an empty userName or secretAccessKey".into());
        }
        AccessKeyId::parse(&parsed.access_key_id)
            .map_err(|_| "has an accessKeyId that is not an access key id".to_owned())?;
        Ok(parsed)
    }
}

/// The user and the access key id an IAM key secret's value names (the secret access key
/// is dropped here); `Err` says what is wrong with its shape.
pub(crate) fn secret_names(text: &str) -> Result<(String, AccessKeyId), String> {
    let body = IamKeySecret::parse(text)?;
    let key = AccessKeyId::parse(&body.access_key_id).map_err(|e| e.to_string())?;
    Ok((body.user_name, key))
}

/// Access key ids named by any staged version of an IAM key secret (versions whose value
/// is not that shape are skipped).
pub(crate) async fn keys_in_staged_versions(
    secrets: &dyn crate::ports::SecretVersions,
    secret: &crate::ports::SecretDescription,
) -> crate::ports::PortResult<Vec<String>> {
    let mut ids = Vec::new();
    for (version, stages) in &secret.versions {
        if stages.is_empty() {
            continue;
        }
        if let Some(v) = secrets.value(&secret.name, Some(version), None).await?
            && let Ok(body) = IamKeySecret::parse(v.expose())
        {
            ids.push(body.access_key_id);
        }
    }
    Ok(ids)
}

impl Hook<'_> {
    /// IAM: the user AWSCURRENT names carries `keyrotor:secret` = this secret's ARN, and
    /// the keys in AWSCURRENT and in this token's version (`mine`) belong to that user.
    pub(super) async fn iam_bound(
        &self,
        current: &SecretValue,
        mine: Option<SecretValue>,
    ) -> Result<(), Stop> {
        let current = self.shape("AWSCURRENT", IamKeySecret::parse(current.expose()))?;
        let user = &current.user_name;
        if let Err(why) = guard::user_bound(self.ports.iam, user, &self.secret.arn).await? {
            return Err(Stop::Blocked(format!(
                "{why} (userName in secret {}); nothing was changed",
                self.secret.name
            )));
        }
        let mut held = vec![("AWSCURRENT", current.access_key_id.clone())];
        if let Some(v) = mine {
            let body = self.shape("pending", IamKeySecret::parse(v.expose()))?;
            if &body.user_name != user {
                return Err(Stop::Blocked(format!(
                    "version {} of secret {} names user {}, AWSCURRENT names {user}; a rotation never moves a secret to another user — fix the secret",
                    self.request.token, self.secret.name, body.user_name
                )));
            }
            held.push(("this version", body.access_key_id));
        }
        for (which, key) in held {
            let id = AccessKeyId::parse(&key).map_err(|e| {
                Stop::Blocked(format!("{which} of secret {}: {e}", self.secret.name))
            })?;
            match self.ports.iam.key_owner(&id).await? {
                Some(owner) if &owner == user => {}
                Some(owner) => {
                    return Err(Stop::Blocked(format!(
                        "{which} of secret {} holds access key {id} of user {owner}, not of {user}; fix the secret",
                        self.secret.name
                    )));
                }
                // AWSCURRENT's key deleted (a leaked key deleted at once, then
                // rotated): nobody else's key, and the user names the secret.
                None if which == "AWSCURRENT" => {}
                // The new key, not yet visible everywhere (IAM is eventually
                // consistent): retried.
                None => {
                    return Err(Stop::Port(PortError::NotReady {
                        operation: self.request.step.as_str().into(),
                        message: format!(
                            "access key {id} in {which} of secret {} is not visible in IAM yet; Secrets Manager retries the step",
                            self.secret.name
                        ),
                    }));
                }
            }
        }
        Ok(())
    }

    /// createSecret: a new key for the user AWSCURRENT names, written as this token's
    /// version. Returns what was done and the stale AWSPENDING versions cleared.
    pub(super) async fn create_iam(
        &self,
        current: &SecretValue,
    ) -> Result<(String, Vec<String>), Stop> {
        let stale = self.clear_stale_pending().await?;
        let current = self.shape("AWSCURRENT", IamKeySecret::parse(current.expose()))?;
        let (id, secret, removed) = self.new_iam_key(&current).await?;
        let body = IamKeySecret {
            user_name: current.user_name.clone(),
            access_key_id: id.to_string(),
            secret_access_key: secret.expose().to_owned(),
        };
        let json = serde_json::to_string(&body).map_err(|e| {
            Stop::Port(PortError::Other {
                operation: "createSecret".into(),
                message: e.to_string(),
            })
        })?;
        let removed = match removed {
            Some(k) => format!("; removed unused key {k} to make room"),
            None => String::new(),
        };
        self.write_pending(&SecretValue::new(json)).await?;
        Ok((
            format!("created access key {id} for {}{removed}", current.user_name),
            stale,
        ))
    }

    /// A new key for the user, making room under the 2-key limit only by removing a key
    /// that no version of the secret references and that the removal guard allows
    /// ([`guard::removable`]: inactive and not in a recovery window, or never used and older
    /// than IAM's last-used lag). The removal is audited on the key's own record.
    async fn new_iam_key(
        &self,
        current: &IamKeySecret,
    ) -> Result<(AccessKeyId, SecretValue, Option<AccessKeyId>), Stop> {
        let user = &current.user_name;
        let found = match guard::user_in_scope(self.ports.iam, user, self.now, self.policy).await? {
            Ok(found) => found,
            // A person overrode the exemption to replace a leaked key (never the root user's).
            Err(_) if self.exemption_overridden => match self.ports.iam.user(user).await? {
                Some(found) if !found.is_root => found,
                _ => {
                    return Err(Stop::Blocked(format!(
                        "IAM user {user} (userName in the secret) does not exist or is the root user"
                    )));
                }
            },
            Err(why) => return Err(Stop::Blocked(format!("{why} (userName in the secret)"))),
        };
        // The user acted on, as IAM has it right now, still names this secret.
        if let Err(why) =
            crate::domain::binding::iam_user_secret(user, &found.tags, &self.secret.arn)
        {
            return Err(Stop::Blocked(format!("{why}; nothing was changed")));
        }
        // A migration to a role owns the user's keys from adoption on (it is taking them
        // away): a rotation would hand out a key the migration then deactivates.
        let migrations = crate::steps::migration::records(self.ports.state, &self.account)
            .await
            .map_err(|e| {
                Stop::Blocked(format!(
                    "cannot read the migration records, so it is unknown whether a migration owns {user}'s keys: {e}"
                ))
            })?;
        if crate::steps::migration::owning_keys(&migrations).contains(user) {
            return Err(Stop::Blocked(format!(
                "user {user} is being migrated to a role (keyrotor migrate): the migration owns its keys, so no new key is created; finish or roll back the migration first"
            )));
        }
        let keys = match self.ports.iam.access_keys(user).await {
            Ok(keys) => keys,
            Err(PortError::NotFound { .. }) => {
                return Err(Stop::Blocked(format!(
                    "IAM user {user} (userName in the secret) does not exist"
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut removed = None;
        if keys.len() >= 2 {
            let referenced = self.referenced_keys().await?;
            let records =
                match crate::steps::iam_keys::key_records(self.ports.state, &self.account).await {
                    Ok(r) => r,
                    Err(StepError::Port(PortError::NotFound { .. })) => Vec::new(),
                    Err(e) => {
                        return Err(Stop::Blocked(format!(
                            "cannot read the key lifecycles: {e}"
                        )));
                    }
                };
            let earlier = self.earlier_attempt().await?;
            // The creation-time match (an attempt whose answer was lost) is trusted only
            // when exactly one unreferenced key fits it: a second would mean someone else
            // made a key in that window, and then neither is taken for a leftover.
            let earlier = earlier.map(|a| {
                let fits = keys
                    .iter()
                    .filter(|k| !referenced.contains(&k.id.to_string()) && a.created(k))
                    .count();
                if fits > 1 { a.without_times() } else { a }
            });
            let mut refused = Vec::new();
            let mut candidate = None;
            for key in keys
                .iter()
                .filter(|k| !referenced.contains(&k.id.to_string()))
            {
                if let Some(attempt) = &earlier
                    && attempt.created(key)
                {
                    // Made by an earlier attempt of this very step, never handed out: the
                    // lag of IAM's last-used data is no reason to keep it, a use is.
                    match self.ports.iam.key_last_used(&key.id).await? {
                        None => {
                            candidate = Some(key.id.clone());
                            break;
                        }
                        Some(used) => refused.push(format!(
                            "key {} was created by an earlier attempt of this rotation but used on {}",
                            key.id,
                            used.at.format("%Y-%m-%d %H:%M UTC")
                        )),
                    }
                    continue;
                }
                let record = records.iter().find(|r| r.key == key.id);
                match guard::removable(self.ports.iam, user, &key.id, record, self.now, self.policy)
                    .await?
                {
                    Removal::Allowed(_) | Removal::Gone => {
                        candidate = Some(key.id.clone());
                        break;
                    }
                    Removal::Refused(_, why) => refused.push(why),
                }
            }
            let Some(victim) = candidate else {
                return Err(Stop::Blocked(format!(
                    "two-key limit: user {user} already has 2 access keys and neither may be removed to make room ({}); remove one by hand, then retry",
                    if refused.is_empty() {
                        format!(
                            "both are referenced by versions of secret {}",
                            self.secret.name
                        )
                    } else {
                        refused.join("; ")
                    }
                )));
            };
            self.remove_to_make_room(user, &victim).await?;
            removed = Some(victim);
        }
        let before: Vec<String> = keys
            .iter()
            .map(|k| k.id.to_string())
            .filter(|k| removed.as_ref().is_none_or(|r| r.as_str() != k))
            .collect();
        self.note_attempt(&before).await?;
        let (id, secret) = match self.ports.iam_admin.create_key(user).await {
            Ok(created) => created,
            Err(e) => {
                // IAM answered: no key was made, so this attempt's time must not make a
                // key someone else creates later look like its leftover.
                if answered(&e) {
                    self.forget_attempt_time().await?;
                }
                return Err(e.into());
            }
        };
        self.effects
            .lock()
            .map_err(|_| Stop::Blocked("internal: effects lock poisoned".into()))?
            .push(format!("access key {id} was created for {user}"));
        self.note_created(&id).await?;
        Ok((id, secret, removed))
    }

    /// Deletes `key` of `user` to make room, audited on the key's own resource (intent,
    /// outcome); the deletion is also noted for the step's outcome, so a later failure in
    /// the same step says the key is gone.
    async fn remove_to_make_room(&self, user: &str, key: &AccessKeyId) -> Result<(), Stop> {
        let detail = format!(
            "delete access key {key} of {user} to make room under the 2-key limit for the rotation of secret {} (version {})",
            self.secret.name, self.request.token
        );
        let intent = Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: self.account.to_string(),
                region: crate::domain::plan::GLOBAL.to_owned(),
                id: key.to_string(),
            },
            action: "delete".into(),
            phase: Phase::Intent,
            outcome: None,
            reason: "make-room-for-rotation".into(),
            detail,
            before: None,
            after: Some(self.secret.arn.clone()),
            dry_run: false,
            policy_time: self.now,
        };
        let mutation = Mutation::begin(&self.log, self.wall, intent).await?;
        let result = match self.ports.iam_admin.delete_key(user, key).await {
            Err(PortError::NotFound { .. }) => Ok(()),
            other => other,
        };
        match &result {
            Ok(()) => {
                // The outcome repeats what the intent said would be done.
                let detail = mutation.intent().detail.clone();
                mutation.succeeded(detail).await?
            }
            // A failed outcome keeps the intent's `after` (the secret), as the hook's do.
            Err(e) => mutation.end(Outcome::Failed, e.to_string(), None).await?,
        }
        result?;
        self.effects
            .lock()
            .map_err(|_| Stop::Blocked("internal: effects lock poisoned".into()))?
            .push(format!(
                "access key {key} of {user} was deleted to make room"
            ));
        Ok(())
    }

    /// Access key ids named by any staged version of the secret.
    async fn referenced_keys(&self) -> Result<Vec<String>, Stop> {
        Ok(keys_in_staged_versions(self.ports.secrets, &self.secret).await?)
    }

    /// testSecret: the pending key works (sts:GetCallerIdentity), retried with backoff
    /// while IAM makes it valid everywhere.
    pub(super) async fn test_iam(&self, pending: &SecretValue) -> Result<String, Stop> {
        let body = self.shape("AWSPENDING", IamKeySecret::parse(pending.expose()))?;
        let id =
            AccessKeyId::parse(&body.access_key_id).map_err(|e| Stop::Blocked(e.to_string()))?;
        let secret = SecretValue::new(body.secret_access_key.clone());
        // IAM is eventually consistent: a new key can take seconds to tens of
        // seconds to be accepted everywhere.
        for (attempt, delay) in IAM_TEST_BACKOFF.iter().enumerate() {
            if self.ports.tester.works(&id, &secret).await? {
                return Ok(format!(
                    "access key {id} works (sts:GetCallerIdentity, attempt {})",
                    attempt + 1
                ));
            }
            tokio::time::sleep(StdDuration::from_secs(*delay)).await;
        }
        Err(Stop::Port(PortError::NotReady {
            operation: "testSecret".into(),
            message: format!(
                "access key {id} was still rejected by sts:GetCallerIdentity after {}s (IAM eventual consistency); Secrets Manager retries the step",
                IAM_TEST_BACKOFF.iter().sum::<u64>()
            ),
        }))
    }

    /// finishSecret: the key in AWSPREVIOUS becomes Superseded in its lifecycle (the sweep
    /// deactivates it after `rotation_grace_days` unless it is still used).
    pub(super) async fn schedule_iam(
        &self,
        previous: &SecretValue,
        promoted: &SecretValue,
    ) -> Result<String, Stop> {
        let old = self.shape("AWSPREVIOUS", IamKeySecret::parse(previous.expose()))?;
        let key =
            AccessKeyId::parse(&old.access_key_id).map_err(|e| Stop::Blocked(e.to_string()))?;
        // Only a key of the user this secret is bound to is scheduled: AWSPREVIOUS
        // is secret content, and may name anybody's key.
        let user = self
            .shape("AWSCURRENT", IamKeySecret::parse(promoted.expose()))?
            .user_name;
        match self.ports.iam.key_owner(&key).await? {
            None => {
                return Ok(format!("previous key {key} no longer exists"));
            }
            Some(owner) if owner != user || old.user_name != user => {
                return Ok(format!(
                    "previous key {key} is not scheduled: it belongs to {owner}, and this secret is bound to {user}"
                ));
            }
            Some(_) => {}
        }
        let store = KeyRecordStore::new(self.ports.state, &self.account);
        let existing = match store.list().await {
            Ok(records) => records.into_iter().find(|r| r.key == key),
            Err(StepError::Port(e)) => return Err(Stop::Port(e)),
            Err(e) => {
                return Err(Stop::Blocked(format!(
                    "cannot read the key lifecycles: {e}"
                )));
            }
        };
        match existing.as_ref().map(|r| r.stage) {
            Some(Stage::Superseded) => {
                return Ok(format!("previous key {key} is already scheduled"));
            }
            // Already further along (deactivated, deleted, contained after a leak):
            // superseding it again would restart its lifecycle and lose its recovery
            // window (or, for a leaked key, its hold as evidence).
            Some(s @ (Stage::Deactivated | Stage::Deleted | Stage::Contained)) => {
                return Ok(format!(
                    "previous key {key} is not rescheduled: its lifecycle is already at {}",
                    s.as_str()
                ));
            }
            _ => {}
        }
        let version = existing.map_or(0, |r| r.version);
        let record = KeyRecord {
            key: key.clone(),
            user: old.user_name.clone(),
            stage: Stage::Superseded,
            since: self.now,
            version,
            secret: Some(self.secret.arn.clone()),
        };
        if store.replace(version, record).await?.is_none() {
            return Err(Stop::Port(PortError::NotReady {
                operation: "finishSecret".into(),
                message: format!(
                    "the lifecycle record of {key} changed while it was scheduled; Secrets Manager retries the step"
                ),
            }));
        }
        Ok(format!(
            "previous key {key} will be deactivated by the sweep after {} days, unless still in use",
            self.policy.iam_keys.rotation_grace_days
        ))
    }
}
