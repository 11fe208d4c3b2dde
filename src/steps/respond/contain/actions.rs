//! The changes a response makes, each re-reading what it depends on first: publish the
//! replacement, deactivate the key, hold its lifecycle, revoke older sessions, report the
//! user's other keys, record the response.

use super::*;

impl Responding<'_> {
    /// Publishes a replacement through the rotation hook's four steps. A failure is
    /// reported, not returned: the key is deactivated anyway.
    pub(super) async fn replace(
        &self,
        arn: &str,
        name: &str,
        response: &mut Response,
    ) -> ResponseStep {
        let hook = &self.ports.hook;
        // Boxed: the rotation's future is large, and this one holds it across awaits.
        let rotated = Box::pin(crate::steps::secret_rotation::rotate_locally_with_token(
            hook,
            self.policy,
            arn,
            &rotation_token(&self.key, &self.request.exposure.event_id),
            self.request.override_exemption,
            &self.request.region,
            self.now,
            self.wall,
        ))
        .await;
        match rotated {
            Ok(_) => {
                let new_key = match hook.secrets.value(arn, None, Some("AWSCURRENT")).await {
                    Ok(Some(v)) => iam_secret_names(v.expose()).ok().map(|(_, k)| k),
                    _ => None,
                };
                response.replacement = Some(Replacement {
                    secret: arn.to_owned(),
                    key: new_key.as_ref().map(ToString::to_string),
                });
                ResponseStep {
                    step: "replace",
                    status: Status::Done,
                    detail: format!(
                        "replacement {} created, verified and published as AWSCURRENT of secret {name}",
                        new_key.map_or_else(|| "(key id unreadable)".to_owned(), |k| k.to_string())
                    ),
                }
            }
            Err(e) => match self.previous_version(arn, name, &e, response).await {
                Ok(Some(step)) => step,
                Ok(None) => ResponseStep {
                    step: "replace",
                    status: Status::Failed,
                    detail: format!(
                        "no replacement could be published in secret {name} ({e}); the key is deactivated anyway, so its clients fail until a new key is in the secret (remove a key of the user the message names, then: keyrotor rotate secret {name})"
                    ),
                },
                Err(fallback) => ResponseStep {
                    step: "replace",
                    status: Status::Failed,
                    detail: format!(
                        "no replacement could be published in secret {name} ({e}), and its previous version could not be restored ({fallback}); the key is deactivated anyway, so its clients fail until a new key is in the secret"
                    ),
                },
            },
        }
    }

    /// When no replacement can be made — typically in the grace period after a rotation,
    /// when both of the user's keys are in the secret — the clients are saved by making the
    /// previous version AWSCURRENT again, if it holds another key of the same user that is
    /// still active (read from IAM now). Audited. `None` when there is no such version.
    async fn previous_version(
        &self,
        arn: &str,
        name: &str,
        failure: &StepError,
        response: &mut Response,
    ) -> Result<Option<ResponseStep>, StepError> {
        let hook = &self.ports.hook;
        let Some(secret) = hook.secrets.describe(arn).await? else {
            return Ok(None);
        };
        let staged = |label: &str| {
            secret
                .versions
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == label))
                .map(|(v, _)| v.clone())
        };
        let (Some(current), Some(previous)) = (staged("AWSCURRENT"), staged("AWSPREVIOUS")) else {
            return Ok(None);
        };
        let (Some(now_value), Some(previous_value)) = (
            hook.secrets.value(arn, Some(&current), None).await?,
            hook.secrets.value(arn, Some(&previous), None).await?,
        ) else {
            return Ok(None);
        };
        let (Ok((current_user, current_key)), Ok((previous_user, previous_key))) = (
            iam_secret_names(now_value.expose()),
            iam_secret_names(previous_value.expose()),
        ) else {
            return Ok(None);
        };
        // Only while AWSCURRENT still holds the leaked key, and only to a key of the same
        // user, that is not the leaked one, and that IAM says is active and that user's.
        if current_key != self.key || previous_key == self.key || previous_user != current_user {
            return Ok(None);
        }
        if hook.iam.key_owner(&previous_key).await?.as_deref() != Some(current_user.as_str()) {
            return Ok(None);
        }
        let active = hook
            .iam
            .access_keys(&current_user)
            .await?
            .iter()
            .any(|k| k.id == previous_key && k.status == KeyStatus::Active);
        if !active {
            return Ok(None);
        }
        let detail = format!(
            "no new key could be made ({failure}); make the previous version of secret {name} (key {previous_key}, still active) AWSCURRENT again, so its clients keep working once the leaked key is off"
        );
        let mut intent = self.entry("restore-previous", detail, "exposed", "previous-current");
        intent.resource.id = format!("{}:{arn}", self.key);
        mutate(
            &self.log,
            self.wall,
            intent,
            hook.secrets
                .move_stage(arn, "AWSCURRENT", Some(&previous), Some(&current)),
            |_| format!("AWSCURRENT of {name} is version {previous} (key {previous_key})"),
        )
        .await??;
        response.replacement = Some(Replacement {
            secret: arn.to_owned(),
            key: Some(previous_key.to_string()),
        });
        Ok(Some(ResponseStep {
            step: "replace",
            status: Status::Done,
            detail: format!(
                "no new key could be made ({failure}); the previous version of secret {name} is AWSCURRENT again: key {previous_key}, still active, serves its clients. Rotate the secret once the leaked key {} is deleted by hand (it is kept as evidence and holds one of the user's two key slots)",
                self.key
            ),
        }))
    }

    /// Deactivates the key (audited), after reading again whose it is, whether the user is
    /// still in scope, and its status. Returns the owner as IAM names it now.
    pub(super) async fn deactivate(
        &self,
        owner: &str,
    ) -> Result<(String, ResponseStep), StepError> {
        let hook = &self.ports.hook;
        let step = |status, detail| ResponseStep {
            step: "deactivate",
            status,
            detail,
        };
        // Renamed meanwhile (the leaked key may call UpdateUser): the key's owner now.
        let Some(owner) = hook.iam.key_owner(&self.key).await? else {
            return Ok((
                owner.to_owned(),
                step(Status::NoOp, format!("key {} no longer exists", self.key)),
            ));
        };
        let Some(user) = hook.iam.user(&owner).await? else {
            return Ok((
                owner.clone(),
                step(Status::NoOp, format!("user {owner} no longer exists")),
            ));
        };
        if let Some(exclusion) = scope::iam_user_exclusion(&user, self.now, self.policy)
            && (!self.request.override_exemption || matches!(exclusion, Exclusion::RootUser))
        {
            let detail = format!(
                "user {owner} was excluded from automatic changes while the response ran ({}: {}); key {} was not deactivated — a person decides: keyrotor respond iam-key {} --override-exemption",
                exclusion.code(),
                exclusion.detail(),
                self.key,
                self.key
            );
            self.decide(Outcome::Blocked, &detail).await?;
            notify_or_log(
                hook.notifier,
                &crate::steps::respond::notice::blocked(
                    owner_of(self.policy, &user),
                    &user,
                    &self.key,
                    &detail,
                ),
            )
            .await;
            return Ok((owner, step(Status::Blocked, detail)));
        }
        let keys = hook.iam.access_keys(&owner).await?;
        let Some(current) = keys.iter().find(|k| k.id == self.key) else {
            return Ok((
                owner,
                step(Status::NoOp, format!("key {} no longer exists", self.key)),
            ));
        };
        if current.status == KeyStatus::Inactive {
            return Ok((
                owner,
                step(
                    Status::NoOp,
                    format!("key {} is already inactive", self.key),
                ),
            ));
        }
        let detail = format!(
            "deactivate leaked key {} of {owner} ({} {}); kept as evidence, never deleted by keyrotor",
            self.key, self.request.exposure.event_type, self.request.exposure.event_id
        );
        let intent = self.entry("deactivate", detail, "active", "inactive");
        mutate(
            &self.log,
            self.wall,
            intent,
            hook.iam_admin.set_key_active(&owner, &self.key, false),
            |_| format!("deactivated key {} of {owner}", self.key),
        )
        .await??;
        let detail = format!("key {} of {owner} is inactive", self.key);
        Ok((owner, step(Status::Done, detail)))
    }

    /// The key's lifecycle record becomes `contained` (compare-and-set).
    pub(super) async fn hold(
        &self,
        owner: &str,
        response: &Response,
    ) -> Result<ResponseStep, StepError> {
        let keys = KeyRecordStore::new(self.ports.hook.state, &self.account);
        let existing = keys.list().await?.into_iter().find(|r| r.key == self.key);
        if existing
            .as_ref()
            .is_some_and(|r| r.stage == Stage::Contained)
        {
            return Ok(ResponseStep {
                step: "hold",
                status: Status::NoOp,
                detail: format!("the lifecycle of {} is already contained", self.key),
            });
        }
        let version = existing.as_ref().map_or(0, |r| r.version);
        let next = KeyRecord {
            key: self.key.clone(),
            user: owner.to_owned(),
            stage: Stage::Contained,
            since: self.now,
            version,
            secret: response.replacement.as_ref().map(|r| r.secret.clone()),
        };
        if keys.replace(version, next).await?.is_none() {
            return Err(StepError::InProgress(format!(
                "the lifecycle record of {} changed while it was contained (another keyrotor run); run the response again: what is done stays done",
                self.key
            )));
        }
        Ok(ResponseStep {
            step: "hold",
            status: Status::Done,
            detail: format!(
                "the lifecycle of {} is contained: kept inactive, never deleted by keyrotor",
                self.key
            ),
        })
    }

    /// The user's other active keys that no version of the bound secret holds: a person
    /// must look at them (an attacker with the leaked key can create one). `None` when
    /// there are none.
    pub(super) async fn other_keys(
        &self,
        owner: &str,
        bound: &Bound,
        response: &Response,
    ) -> Result<Option<ResponseStep>, StepError> {
        let hook = &self.ports.hook;
        let mut known: Vec<String> = vec![self.key.to_string()];
        if let Some(Replacement { key: Some(k), .. }) = &response.replacement {
            known.push(k.clone());
        }
        if let Bound::Current { arn, .. } | Bound::Replaced { arn, .. } = bound
            && let Some(description) = hook.secrets.describe(arn).await?
        {
            known.extend(
                crate::steps::secret_rotation::keys_in_staged_versions(hook.secrets, &description)
                    .await?,
            );
        }
        let others: Vec<String> = hook
            .iam
            .access_keys(owner)
            .await?
            .into_iter()
            .filter(|k| k.status == KeyStatus::Active && !known.contains(&k.id.to_string()))
            .map(|k| {
                format!(
                    "{} (created {})",
                    k.id,
                    k.created.format("%Y-%m-%d %H:%M UTC")
                )
            })
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        let detail = format!(
            "user {owner} has another active key no keyrotor secret holds: {}; whoever held the leaked key could have created it — check it in the activity below, and contain it too if it is not yours: keyrotor respond iam-key KEY",
            others.join(", ")
        );
        self.decide(Outcome::Blocked, &detail).await?;
        Ok(Some(ResponseStep {
            step: "other-keys",
            status: Status::Blocked,
            detail,
        }))
    }

    /// Puts the inline deny on sessions issued before now (audited).
    pub(super) async fn revoke_sessions(
        &self,
        owner: &str,
        earlier: Option<chrono::DateTime<chrono::Utc>>,
        response: &mut Response,
    ) -> Result<ResponseStep, StepError> {
        // A retry keeps the first cut-off: a later one would also deny the sessions the
        // replacement's clients obtained in between.
        let before = earlier.unwrap_or_else(|| self.wall.now());
        let document = revoke_sessions_policy(before);
        let stamp = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let detail = format!(
            "put inline policy {REVOKE_POLICY} on {owner}: deny requests made with sessions issued before {stamp}"
        );
        let mut intent = self.entry(
            "revoke-sessions",
            detail,
            "sessions-valid",
            "sessions-revoked",
        );
        intent.resource.id = format!("{}:{REVOKE_POLICY}", self.key);
        let put = mutate(
            &self.log,
            self.wall,
            intent,
            self.ports
                .roles
                .put_user_policy(owner, REVOKE_POLICY, &document),
            |_| format!("sessions of {owner} issued before {stamp} are denied"),
        )
        .await?;
        if let Err(e) = put {
            return Ok(ResponseStep {
                step: "revoke-sessions",
                status: Status::Failed,
                detail: format!(
                    "older sessions of {owner} could not be revoked ({e}); the key is inactive, but temporary credentials issued with it keep working until they expire: attach a deny on aws:TokenIssueTime by hand, or run the response again"
                ),
            });
        }
        response.sessions_revoked_before = Some(before);
        Ok(ResponseStep {
            step: "revoke-sessions",
            status: Status::Done,
            detail: format!(
                "sessions of {owner} issued before {stamp} are denied ({REVOKE_POLICY})"
            ),
        })
    }

    /// The response, recorded per key: the events it answered (idempotency).
    pub(super) async fn record(
        &self,
        owner: &str,
        previous: Option<ResponseRecord>,
        response: &Response,
    ) -> Result<ResponseStep, StepError> {
        let hook = &self.ports.hook;
        let exposure = &self.request.exposure;
        let record = match previous {
            Some(p) => ResponseRecord {
                revoked_before: response.sessions_revoked_before.or(p.revoked_before),
                run_id: self.run_id.clone(),
                contained_at: self.now,
                replacement: replacement_pair(response).or(p.replacement.clone()),
                ..p
            },
            None => ResponseRecord {
                key: self.key.clone(),
                user: owner.to_owned(),
                events: Vec::new(),
                run_id: self.run_id.clone(),
                contained_at: self.now,
                replacement: replacement_pair(response),
                complete: true,
                revoked_before: response.sessions_revoked_before,
                version: 0,
            },
        };
        // The event is answered once nothing is left: a step that failed (a replacement, a
        // revocation) is tried again when the event (or the command) comes again.
        let complete = !response.steps.iter().any(|s| s.status == Status::Failed);
        let record = ResponseRecord { complete, ..record };
        let record = if complete {
            record.with_event(&exposure.event_id)
        } else {
            record
        };
        if !ResponseStore::new(hook.state, &self.account)
            .put(&record)
            .await?
        {
            return Err(StepError::InProgress(format!(
                "another keyrotor run recorded a response to {} at the same time; run again to see its result",
                self.key
            )));
        }
        Ok(ResponseStep {
            step: "record",
            status: Status::Done,
            detail: format!(
                "response to {} recorded for {}",
                self.key, exposure.event_id
            ),
        })
    }
}
