//! The AWS calls of each rotation step, and the checks that guard them: every destructive
//! step re-reads what it depends on (safety invariant 8), and the old key is retired only
//! while the key the secret hands out serves every plan it served (invariant 1).

use super::replacement::{Stop, ensure_replacement, replacement_problems};
use super::run::Run;
use crate::domain::api_rotation::{
    ApiKeySecret, Rotation, RotationStep, TAG_REPLACES, TAG_ROTATION,
};
use crate::domain::scope;
use crate::ports::{PortError, SecretValue};

impl Run<'_> {
    /// The AWS calls of one step; returns the replacement's id when it creates one.
    pub(super) async fn step(
        &self,
        r: &Rotation,
        step: RotationStep,
    ) -> Result<Option<String>, Stop> {
        let admin = self.ports.admin;
        let secrets = self.ports.secrets;
        let new_key = || {
            r.new_key.clone().ok_or_else(|| {
                Stop::Blocked(format!(
                    "the rotation record is at {} but names no replacement key; fix or delete the state-table item",
                    r.stage.as_str()
                ))
            })
        };
        match step {
            RotationStep::CreateReplacement => {
                ensure_replacement(admin, &self.store(), r).await.map(Some)
            }
            RotationStep::Publish => {
                // The value goes only into a secret the old key and the secret bind both
                // ways now (tags may have changed since the rotation started).
                self.bound(r, step).await?;
                let new = new_key()?;
                let value = admin.key_value(&new).await?;
                let body = ApiKeySecret {
                    api_key_id: new.clone(),
                    value: value.expose().to_owned(),
                };
                secrets
                    .put_pending(&r.secret, &r.token, &SecretValue::new(body.to_json()))
                    .await?;
                Ok(None)
            }
            RotationStep::Verify => {
                let new = new_key()?;
                let problems = self.check_replacement(r, &new).await?;
                let stages = secrets.stages(&r.secret).await?.unwrap_or_default();
                let staged = stages.get(&r.token).cloned().unwrap_or_default();
                let mut problems = problems;
                if !staged
                    .iter()
                    .any(|s| s == "AWSPENDING" || s == "AWSCURRENT")
                {
                    problems.push(format!(
                        "version {} of secret {} is not AWSPENDING",
                        r.token, r.secret
                    ));
                } else {
                    match secrets.value(&r.secret, Some(&r.token), None).await? {
                        Some(v) => match ApiKeySecret::parse(v.expose()) {
                            Ok(s) if s.api_key_id == new => {}
                            Ok(s) => problems.push(format!(
                                "the pending version names key {}, not {new}",
                                s.api_key_id
                            )),
                            Err(why) => problems.push(format!("the pending version {why}")),
                        },
                        None => problems.push("the pending version has no value".into()),
                    }
                }
                if problems.is_empty() {
                    Ok(None)
                } else {
                    // Possibly not visible yet (eventual consistency): a later run retries.
                    Err(Stop::Port(PortError::NotReady {
                        operation: "verify".into(),
                        message: format!(
                            "the replacement {new} is not ready: {}",
                            problems.join("; ")
                        ),
                    }))
                }
            }
            RotationStep::Promote => {
                // Moving AWSCURRENT changes what every consumer reads: the record alone
                // (state table) is not enough, AWS must show this rotation made the version.
                self.bound(r, step).await?;
                let new = new_key()?;
                self.proven_replacement(r, &new).await?;
                // AWSCURRENT must still hand out the old key (or already the replacement):
                // if a person moved it to another key meanwhile, promoting would take that
                // key from its consumers.
                match secrets.value(&r.secret, None, Some("AWSCURRENT")).await? {
                    Some(v) => match ApiKeySecret::parse(v.expose()) {
                        Ok(c) if c.api_key_id == r.old_key || c.api_key_id == new => {}
                        Ok(c) => {
                            return Err(Stop::Blocked(format!(
                                "not promoting: AWSCURRENT of secret {} now holds API key {}, neither {} nor its replacement {new}; someone changed the secret during the rotation — check it, then delete the rotation record to start over",
                                r.secret, c.api_key_id, r.old_key
                            )));
                        }
                        Err(why) => {
                            return Err(Stop::Blocked(format!(
                                "not promoting: the AWSCURRENT value of secret {} {why}",
                                r.secret
                            )));
                        }
                    },
                    None => {
                        return Err(Stop::Blocked(format!(
                            "not promoting: secret {} has no AWSCURRENT value",
                            r.secret
                        )));
                    }
                }
                let stages = secrets.stages(&r.secret).await?.ok_or_else(|| {
                    Stop::Blocked(format!("secret {} no longer exists", r.secret))
                })?;
                let holder = |stage: &str| {
                    stages
                        .iter()
                        .find(|(_, s)| s.iter().any(|x| x == stage))
                        .map(|(v, _)| v.clone())
                };
                if !stages.contains_key(&r.token) {
                    return Err(Stop::Blocked(format!(
                        "version {} of secret {} is gone; the rotation cannot be promoted",
                        r.token, r.secret
                    )));
                }
                let current = holder("AWSCURRENT");
                if current.as_deref() != Some(r.token.as_str()) {
                    secrets
                        .move_stage(&r.secret, "AWSCURRENT", Some(&r.token), current.as_deref())
                        .await?;
                }
                if stages
                    .get(&r.token)
                    .is_some_and(|s| s.iter().any(|x| x == "AWSPENDING"))
                {
                    secrets
                        .move_stage(&r.secret, "AWSPENDING", None, Some(&r.token))
                        .await?;
                }
                Ok(None)
            }
            RotationStep::Retire => {
                self.still_in_scope(r, step).await?;
                // Never take the old key away unless the key the secret hands out now (the
                // replacement, or a later one if the key was rotated again since) serves
                // every plan the old key serves now: those it served when the rotation
                // started, and any it joined since (read again here).
                let current = match secrets.value(&r.secret, None, Some("AWSCURRENT")).await? {
                    Some(v) => ApiKeySecret::parse(v.expose()).map_err(|why| {
                        Stop::Blocked(format!(
                            "refusing to retire {}: the AWSCURRENT value of secret {} {why}",
                            r.old_key, r.secret
                        ))
                    })?,
                    None => {
                        return Err(Stop::Blocked(format!(
                            "refusing to retire {}: secret {} has no AWSCURRENT value",
                            r.old_key, r.secret
                        )));
                    }
                };
                if current.api_key_id == r.old_key {
                    return Err(Stop::Blocked(format!(
                        "refusing to retire {}: AWSCURRENT of secret {} still names it",
                        r.old_key, r.secret
                    )));
                }
                let serves = self.plans_served(r).await?;
                let mut problems =
                    replacement_problems(admin, &current.api_key_id, &serves).await?;
                let joined: Vec<&String> = serves.iter().filter(|p| !r.plans.contains(p)).collect();
                if !problems.is_empty() && !joined.is_empty() {
                    problems.push(format!(
                        "{} joined usage plan(s) [{}] after the rotation started; attach {} to them too (aws apigateway create-usage-plan-key) or detach {} from them, and the next run retires it",
                        r.old_key,
                        joined.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", "),
                        current.api_key_id,
                        r.old_key
                    ));
                }
                if !problems.is_empty() {
                    return Err(Stop::Blocked(format!(
                        "refusing to retire {}: {}",
                        r.old_key,
                        problems.join("; ")
                    )));
                }
                for plan in &serves {
                    if admin.plan_keys(plan).await?.contains(&r.old_key) {
                        admin.detach(plan, &r.old_key).await?;
                    }
                }
                // A plan the key joined while it was being detached: it is still serving
                // there, so it stays enabled (the next run checks that plan too).
                let still = admin.key_plans(&r.old_key).await?;
                if !still.is_empty() {
                    return Err(Stop::Blocked(format!(
                        "refusing to disable {}: it joined usage plan(s) [{}] while it was being detached; it stays enabled there — the next run checks the replacement serves them too",
                        r.old_key,
                        still.join(", ")
                    )));
                }
                if admin.key(&r.old_key).await?.is_some_and(|k| k.enabled) {
                    admin.set_enabled(&r.old_key, false).await?;
                }
                Ok(None)
            }
            RotationStep::Delete => {
                self.still_in_scope(r, step).await?;
                // The recovery window is for putting the old key back: if someone did
                // (enabled, or in any usage plan again), it is in use and is not deleted.
                if let Some(old) = admin.key(&r.old_key).await? {
                    let mut back = Vec::new();
                    if old.enabled {
                        back.push("enabled again".to_owned());
                    }
                    for plan in admin.key_plans(&r.old_key).await? {
                        back.push(format!("attached to usage plan {plan}"));
                    }
                    if !back.is_empty() {
                        return Err(Stop::Blocked(format!(
                            "refusing to delete {}: it was {} during its recovery window, so a client may use it; disable and detach it, or untag it, to let keyrotor delete it",
                            r.old_key,
                            back.join(" and ")
                        )));
                    }
                }
                admin.delete_key(&r.old_key).await?;
                Ok(None)
            }
        }
    }

    /// The usage plans the old key serves now, with those it served when the rotation
    /// started (sorted, once each).
    async fn plans_served(&self, r: &Rotation) -> Result<Vec<String>, Stop> {
        let mut plans = self.ports.admin.key_plans(&r.old_key).await?;
        plans.extend(r.plans.iter().cloned());
        plans.sort();
        plans.dedup();
        Ok(plans)
    }

    /// Before retiring or deleting: the old key as API Gateway has it now must still be in
    /// scope (an exemption added, or a name outside `name_prefixes`, stops the rotation
    /// here: past promotion, stopping is safe). A key already gone has nothing to protect.
    async fn still_in_scope(&self, r: &Rotation, step: RotationStep) -> Result<(), Stop> {
        let Some(old) = self.ports.admin.key(&r.old_key).await? else {
            return Ok(());
        };
        if let Some(e) = scope::api_key_exclusion(&old.name, &old.tags, self.now, self.policy) {
            return Err(Stop::Blocked(format!(
                "not carrying out {} of {}: it is out of keyrotor's scope now ({}): {}; the rotation stays at {} (both keys work)",
                step.as_str(),
                r.old_key,
                e.code(),
                e.detail(),
                r.stage.as_str()
            )));
        }
        self.bound(r, step).await
    }

    /// The old key and the record's secret name each other now (both ways): a rotation
    /// record is state-table content, so it alone never decides which key is retired or
    /// which secret is written.
    async fn bound(&self, r: &Rotation, step: RotationStep) -> Result<(), Stop> {
        match crate::steps::guard::api_key_bound(
            self.ports.admin,
            self.ports.secrets,
            &r.old_key,
            &r.secret,
            self.account.as_str(),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(why) => Err(Stop::Blocked(format!(
                "not carrying out {} of {}: {why}; the rotation stays at {}",
                step.as_str(),
                r.old_key,
                r.stage.as_str()
            ))),
        }
    }

    /// Before promoting: the replacement named by the record is a key keyrotor made for
    /// this rotation (its rotation tag is the record's token and it replaces the old key),
    /// and the secret's version of that token holds it.
    async fn proven_replacement(&self, r: &Rotation, new: &str) -> Result<(), Stop> {
        let refuse = |why: String| {
            Err(Stop::Blocked(format!(
                "not promoting version {} of secret {}: {why}; the rotation record does not match AWS, so nothing was changed",
                r.token, r.secret
            )))
        };
        let Some(found) = self.ports.admin.key(new).await? else {
            return refuse(format!("the replacement {new} does not exist"));
        };
        let tag = |k: &str| found.tags.get(k).map(String::as_str);
        if tag(TAG_ROTATION) != Some(r.token.as_str()) || tag(TAG_REPLACES) != Some(&r.old_key) {
            return refuse(format!(
                "API key {new} was not made by this rotation (tags {TAG_ROTATION} = {:?}, {TAG_REPLACES} = {:?})",
                tag(TAG_ROTATION),
                tag(TAG_REPLACES)
            ));
        }
        match self
            .ports
            .secrets
            .value(&r.secret, Some(&r.token), None)
            .await?
            .map(|v| ApiKeySecret::parse(v.expose()))
        {
            Some(Ok(v)) if v.api_key_id == new => Ok(()),
            Some(Ok(v)) => refuse(format!(
                "that version holds API key {}, not {new}",
                v.api_key_id
            )),
            Some(Err(why)) => refuse(format!("that version {why}")),
            None => refuse("that version has no value".into()),
        }
    }

    async fn check_replacement(&self, r: &Rotation, new: &str) -> Result<Vec<String>, Stop> {
        Ok(replacement_problems(self.ports.admin, new, &r.plans).await?)
    }
}
