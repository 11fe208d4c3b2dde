//! Secrets holding an API Gateway API key (`{"apiKeyId", "value"}`): the key and the
//! secret must name each other; each step runs under the key's lease and advances the same
//! rotation record the sweep and the CLI use ([`crate::steps::api_keys`]), so one rotation
//! of a key is under way at a time, whoever started it (safety invariant 5); the old key
//! is retired by the sweep after the grace period, never here.

use super::Hook;
use crate::domain::api_rotation::{ApiKeySecret, Rotation, RotationStage, RotationStep, Trigger};
use crate::domain::model::AccountId;
use crate::domain::scope;
use crate::ports::{ApiKeyInfo, PortError, SecretValue};
use crate::steps::StepError;
use crate::steps::api_keys::lease_name;
use crate::steps::api_keys::replacement::{Stop, ensure_replacement, replacement_problems};
use crate::steps::api_keys::store::RotationStore;
use crate::steps::guard;

impl Hook<'_> {
    /// The rotation records of the hook's account and region.
    fn rotations(&self) -> RotationStore<'_> {
        RotationStore::new(self.ports.state, &self.account, &self.region)
    }

    /// The lease of the API key being replaced (and what it is, for the message):
    /// AWSCURRENT's, or AWSPREVIOUS's once this token is current. `None` when the secret
    /// names no key: a missing or malformed value is the step's to report; a value that
    /// cannot be read leaves the key unknown, so the step does not run without its lease.
    pub(super) async fn api_key_lease(
        &self,
        account: &AccountId,
    ) -> Result<Option<(String, String)>, StepError> {
        let request = self.request;
        let promoted = self
            .secret
            .versions
            .get(&request.token)
            .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"));
        let stage = if promoted {
            "AWSPREVIOUS"
        } else {
            "AWSCURRENT"
        };
        let value = match self.staged(stage) {
            Some(version) => self.version(version).await,
            None => Ok(None),
        };
        let value = value.map_err(|e| {
            StepError::Port(PortError::NotReady {
                operation: request.step.as_str().into(),
                message: format!(
                    "cannot read {stage} of secret {} to take the API key's lease ({e}); Secrets Manager retries the step",
                    self.secret.name
                ),
            })
        })?;
        Ok(value
            .and_then(|v| ApiKeySecret::parse(v.expose()).ok())
            .map(|old| {
                (
                    lease_name(account, &self.region, &old.api_key_id),
                    format!("API key {}", old.api_key_id),
                )
            }))
    }

    /// API key: the key in AWSCURRENT and this secret are bound both ways
    /// ([`crate::domain::binding`]).
    pub(super) async fn api_key_bound(&self, current: &SecretValue) -> Result<(), Stop> {
        let current = self.shape("AWSCURRENT", ApiKeySecret::parse(current.expose()))?;
        match guard::api_key_bound(
            self.ports.api_admin,
            self.ports.secrets,
            &current.api_key_id,
            &self.secret.arn,
            self.account.as_str(),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(why) => Err(Stop::Blocked(format!("{why}; nothing was changed"))),
        }
    }

    /// createSecret: claims the key's rotation, then makes (or finds) the replacement and
    /// writes it as this token's version, advancing the record. Returns what was done and
    /// the stale AWSPENDING versions cleared.
    pub(super) async fn create_api_key(
        &self,
        current: &SecretValue,
    ) -> Result<(String, Vec<String>), Stop> {
        // An API key has one rotation at a time, whoever started it: claim it before
        // anything is touched, so a rotation under way elsewhere keeps its pending version.
        let current = self.shape("AWSCURRENT", ApiKeySecret::parse(current.expose()))?;
        let rotation = self.claim_rotation(&current.api_key_id).await?;
        let stale = self.clear_stale_pending().await?;
        let admin = self.ports.api_admin;
        let name = rotation.replacement_name();
        let new = ensure_replacement(admin, &self.rotations(), &rotation).await?;
        let created = self
            .record_rotation(&rotation, RotationStep::CreateReplacement, Some(&new))
            .await?;
        let value = admin.key_value(&new).await?;
        let body = ApiKeySecret {
            api_key_id: new.clone(),
            value: value.expose().to_owned(),
        };
        self.write_pending(&SecretValue::new(body.to_json()))
            .await?;
        self.record_rotation(&created, RotationStep::Publish, None)
            .await?;
        Ok((
            format!(
                "created API key {new} ({name}) in usage plans [{}]",
                rotation.plans.join(", ")
            ),
            stale,
        ))
    }

    /// API key `key` as API Gateway has it now, checked against scope, with the usage
    /// plans it is in now.
    async fn api_key_in_scope(&self, key: &str) -> Result<(ApiKeyInfo, Vec<String>), Stop> {
        let Some(found) = self.ports.api_admin.key(key).await? else {
            return Err(Stop::Blocked(format!(
                "API key {key} (apiKeyId in secret {}) does not exist",
                self.secret.name
            )));
        };
        if let Some(e) = scope::api_key_exclusion(&found.name, &found.tags, self.now, self.policy) {
            return Err(Stop::Blocked(format!(
                "API key {key} ({}) is out of keyrotor's scope ({}): {}",
                found.name,
                e.code(),
                e.detail()
            )));
        }
        let plans = self.ports.api_admin.key_plans(key).await?;
        Ok((found, plans))
    }

    /// The rotation record of API key `key` (the state table's one rotation per key), if
    /// any: an unreadable record blocks rather than being taken for none.
    async fn rotation_of(&self, key: &str) -> Result<Option<Rotation>, Stop> {
        match self.rotations().find(key).await? {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(why)) => Err(Stop::Blocked(format!(
                "the rotation record of API key {key} cannot be read ({why}); fix or delete the state-table item"
            ))),
        }
    }

    /// Claims the rotation of API key `key` for this token: the record of this token (a
    /// repeated createSecret), or a new record in the state table. A rotation of the key
    /// under way with another token (the sweep's, the CLI's, another hook run's) owns the
    /// key: this step stops as in progress and changes nothing.
    async fn claim_rotation(&self, key: &str) -> Result<Rotation, Stop> {
        let found = self.rotation_of(key).await?;
        if let Some(r) = found.as_ref().filter(|r| r.stage != RotationStage::Deleted) {
            if r.token == self.request.token {
                return Ok(r.clone());
            }
            return Err(Stop::Port(PortError::Conflict {
                operation: "createSecret".into(),
                message: format!(
                    "API key {key} is being rotated by another keyrotor rotation (token {}, stage {}); it owns the key until it is promoted — Secrets Manager retries this step, or let that rotation finish",
                    r.token,
                    r.stage.as_str()
                ),
            }));
        }
        let (info, plans) = self.api_key_in_scope(key).await?;
        if plans.is_empty() {
            return Err(Stop::Blocked(format!(
                "API key {key} is in no usage plan, so its replacement would serve nothing; attach it first"
            )));
        }
        let rotation = Rotation::start(
            key,
            &info.name,
            &self.secret.arn,
            &plans,
            self.request.token.clone(),
            Trigger::OnDemand,
            self.now,
        );
        // Over the finished rotation's record, if there is one (compare-and-set).
        self.rotations()
            .start(rotation, found.as_ref())
            .await?
            .ok_or_else(|| {
                Stop::Port(PortError::Conflict {
                    operation: "createSecret".into(),
                    message: format!(
                        "another run started a rotation of API key {key} first; Secrets Manager retries this step"
                    ),
                })
            })
    }

    /// Moves `rotation`'s record on by `step` (compare-and-set), naming the replacement.
    async fn record_rotation(
        &self,
        rotation: &Rotation,
        step: RotationStep,
        new_key: Option<&str>,
    ) -> Result<Rotation, Stop> {
        if rotation.stage >= step.to() {
            return Ok(rotation.clone());
        }
        let mut next = rotation.advanced(step, self.now);
        if let Some(k) = new_key {
            next.new_key = Some(k.to_owned());
        }
        self.rotations()
            .advance(rotation, next)
            .await?
            .ok_or_else(|| {
                Stop::Port(PortError::NotReady {
                    operation: self.request.step.as_str().into(),
                    message: format!(
                        "the rotation record of {} changed meanwhile; Secrets Manager retries the step",
                        rotation.old_key
                    ),
                })
            })
    }

    /// testSecret: the pending key is enabled and in every usage plan the current key is
    /// in (and those its rotation started with).
    pub(super) async fn test_api_key(&self, pending: &SecretValue) -> Result<String, Stop> {
        let body = self.shape("AWSPENDING", ApiKeySecret::parse(pending.expose()))?;
        let current = self.shape(
            "AWSCURRENT",
            ApiKeySecret::parse(self.current().await?.expose()),
        )?;
        let rotation = self
            .rotation_of(&current.api_key_id)
            .await?
            .filter(|r| r.token == self.request.token);
        let mut plans = self.ports.api_admin.key_plans(&current.api_key_id).await?;
        if let Some(r) = &rotation {
            plans.extend(r.plans.iter().cloned());
            plans.sort();
            plans.dedup();
        }
        let problems = replacement_problems(self.ports.api_admin, &body.api_key_id, &plans).await?;
        if problems.is_empty() {
            if let Some(r) = &rotation
                && r.stage == RotationStage::Published
            {
                self.record_rotation(r, RotationStep::Verify, None).await?;
            }
            Ok(format!(
                "API key {} is enabled and in usage plans [{}]",
                body.api_key_id,
                plans.join(", ")
            ))
        } else {
            Err(Stop::Blocked(problems.join("; ")))
        }
    }

    /// finishSecret: the rotation of the key in AWSPREVIOUS becomes Promoted (the sweep
    /// retires the key after `grace_days`), if the key is bound to this secret and the
    /// rotation is this hook's (or none was recorded).
    pub(super) async fn schedule_api_key(
        &self,
        previous: &SecretValue,
        promoted: &SecretValue,
    ) -> Result<String, Stop> {
        let old = self.shape("AWSPREVIOUS", ApiKeySecret::parse(previous.expose()))?;
        let current = self.shape("AWSCURRENT", ApiKeySecret::parse(promoted.expose()))?;
        let existing = self.rotation_of(&old.api_key_id).await?;
        if existing
            .as_ref()
            .is_some_and(|r| r.stage >= RotationStage::Promoted)
        {
            return Ok(format!(
                "previous API key {} is already scheduled",
                old.api_key_id
            ));
        }
        // The old key must be bound to this secret (both ways) for its retirement
        // to be scheduled: AWSPREVIOUS is secret content and may name any key.
        if let Err(why) = guard::api_key_bound(
            self.ports.api_admin,
            self.ports.secrets,
            &old.api_key_id,
            &self.secret.arn,
            self.account.as_str(),
        )
        .await?
        {
            return Ok(format!(
                "previous API key {} is not scheduled for retirement: {why}",
                old.api_key_id
            ));
        }
        let record = match existing {
            // The rotation this hook claimed in createSecret.
            Some(r) if r.token == self.request.token => r,
            // Another run's rotation of that key (the sweep's, the CLI's): it is not
            // this rotation's to advance.
            Some(r) => {
                return Ok(format!(
                    "previous API key {} is not scheduled here: rotation {} (stage {}) of another run owns it",
                    old.api_key_id,
                    r.token,
                    r.stage.as_str()
                ));
            }
            None => {
                // No record: a rotation from before records were kept. Scope is
                // checked before one is made.
                let (info, plans) = match self.api_key_in_scope(&old.api_key_id).await {
                    Ok(found) => found,
                    Err(Stop::Blocked(why)) => {
                        return Ok(format!(
                            "previous API key {} is not scheduled for retirement: {why}",
                            old.api_key_id
                        ));
                    }
                    Err(e) => return Err(e),
                };
                let r = Rotation::start(
                    &old.api_key_id,
                    &info.name,
                    &self.secret.arn,
                    &plans,
                    self.request.token.clone(),
                    Trigger::OnDemand,
                    self.now,
                )
                .advanced(RotationStep::Verify, self.now);
                self.rotations().start(r, None).await?.ok_or_else(|| {
                    Stop::Port(PortError::NotReady {
                        operation: "finishSecret".into(),
                        message: format!(
                            "the rotation record of {} changed while it was scheduled; Secrets Manager retries the step",
                            old.api_key_id
                        ),
                    })
                })?
            }
        };
        self.record_rotation(&record, RotationStep::Promote, Some(&current.api_key_id))
            .await?;
        Ok(format!(
            "previous API key {} will be retired by the sweep after {} days, once it is in scope",
            old.api_key_id, self.policy.api_keys.grace_days
        ))
    }
}
