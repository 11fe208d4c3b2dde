//! Containment of a leaked key: replace it where a client can be saved, deactivate it,
//! revoke its older sessions, record it — each change an audited mutation, the whole
//! response once per key and event.

use chrono::{DateTime, Utc};

use super::binding::{Bound, bound_secret};
use super::store::{ResponseRecord, ResponseStore};
use super::{Replacement, Request, RespondPorts, Response, ResponseStep};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::lifecycle::{KeyRecord, Stage};
use crate::domain::model::{AccessKeyId, AccountId, IamUser, KeyStatus, Kind, TAG_OWNER};
use crate::domain::plan::GLOBAL;
use crate::domain::policy::{Mode, Policy};
use crate::domain::respond::{REVOKE_POLICY, Target, Trigger, revoke_sessions_policy};
use crate::domain::scope::{self, Exclusion};
use crate::ports::{Clock, PortError, notify_or_log};
use crate::steps::audited::mutate;
use crate::steps::iam_keys::KeyRecordStore;
use crate::steps::secret_rotation::iam_secret_names;
use crate::steps::status::Status;
use crate::steps::{StepError, new_run_id, with_lease};

mod actions;

/// Responds to the exposure in `request`: contains the key (or plans it, in plan mode, or
/// stops at an exempt user), records and notifies. Does not investigate: the caller runs
/// [`super::investigate`] after this returns, so containment never waits for it.
pub async fn respond(
    ports: &RespondPorts<'_>,
    policy: &Policy,
    request: &Request,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Response, StepError> {
    let result = Box::pin(respond_locked(ports, policy, request, now, wall)).await;
    // An event keyrotor cannot act on (a user with several active keys, a temporary or
    // unknown key, another account) is on the record and told to a person at once: it may
    // be an attacker's way around the response.
    if let Err(StepError::InvalidInput(why)) = &result
        && request.exposure.trigger != Trigger::Cli
    {
        let e = &request.exposure;
        super::refused(
            ports,
            Some(&e.event_id),
            Some(&e.event_type),
            why,
            now,
            wall,
        )
        .await?;
    }
    result
}

async fn respond_locked(
    ports: &RespondPorts<'_>,
    policy: &Policy,
    request: &Request,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Response, StepError> {
    let hook = &ports.hook;
    let caller = hook.identity.caller().await?;
    let key = target_key(ports, &request.exposure.target).await?;
    if key.as_str().starts_with("ASIA") {
        return Err(StepError::InvalidInput(format!(
            "{key} is a temporary credential (ASIA…): it cannot be deactivated; revoke the sessions of the role or user it was issued to (IAM console: Revoke active sessions) and investigate with CloudTrail"
        )));
    }
    let run_id = new_run_id(wall.now());
    let work = async {
        let log = AuditLog::new(hook.audit, run_id.clone(), caller.arn.clone());
        let run = Responding {
            ports,
            policy,
            request,
            now,
            wall,
            log,
            account: caller.account.clone(),
            key: key.clone(),
            run_id: run_id.clone(),
        };
        let result = Box::pin(run.contain()).await;
        run.log.finish(result, wall.now()).await
    };
    with_lease(
        hook.state,
        &format!("respond#{}#{}", caller.account.as_str(), key.as_str()),
        &format!("the response to key {key}"),
        &run_id,
        wall,
        work,
    )
    .await
}

/// The access key an exposure names; for a user (the quarantine policy's CloudTrail
/// event), the user's only active key.
async fn target_key(ports: &RespondPorts<'_>, target: &Target) -> Result<AccessKeyId, StepError> {
    let user = match target {
        Target::Key(key) => return Ok(key.clone()),
        Target::User(user) => user,
    };
    let keys = ports
        .hook
        .iam
        .access_keys(user)
        .await
        .map_err(|e| match e {
            PortError::NotFound { .. } => StepError::InvalidInput(format!(
                "IAM user {user} (named by the event) does not exist"
            )),
            e => e.into(),
        })?;
    let active: Vec<&AccessKeyId> = keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .map(|k| &k.id)
        .collect();
    match active.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(StepError::InvalidInput(format!(
            "user {user} has no active access key: nothing to contain"
        ))),
        many => Err(StepError::InvalidInput(format!(
            "the event names user {user}, not a key, and the user has {} active keys ({}); the AWS Health event of the exposure names the key: keyrotor respond iam-key AKIA...",
            many.len(),
            many.iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// One response in progress.
struct Responding<'a> {
    ports: &'a RespondPorts<'a>,
    policy: &'a Policy,
    request: &'a Request,
    now: DateTime<Utc>,
    wall: &'a dyn Clock,
    log: AuditLog<'a>,
    account: AccountId,
    key: AccessKeyId,
    run_id: String,
}

impl Responding<'_> {
    fn response(&self, user: Option<&str>, status: Status, detail: String) -> Response {
        let e = &self.request.exposure;
        Response {
            run_id: self.run_id.clone(),
            account: self.account.to_string(),
            key: self.key.to_string(),
            user: user.map(str::to_owned),
            owner: None,
            reason: e.reason,
            trigger: e.trigger,
            event_id: e.event_id.clone(),
            event_type: e.event_type.clone(),
            status,
            detail,
            steps: Vec::new(),
            replacement: None,
            undo: Vec::new(),
            activity: None,
            investigation_problems: Vec::new(),
            sessions_revoked_before: None,
        }
    }

    fn entry(&self, action: &str, detail: String, before: &str, after: &str) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: self.account.to_string(),
                region: GLOBAL.to_owned(),
                id: self.key.to_string(),
            },
            action: action.to_owned(),
            phase: Phase::Intent,
            outcome: None,
            reason: self.request.exposure.reason.as_str().to_owned(),
            detail,
            before: Some(before.to_owned()),
            after: Some(after.to_owned()),
            dry_run: self.policy.mode == Mode::Plan,
            policy_time: self.now,
        }
    }

    /// A decision with no change (blocked, planned), on the key's chain.
    async fn decide(&self, outcome: Outcome, detail: &str) -> Result<(), StepError> {
        let mut entry = self.entry("respond", detail.to_owned(), "exposed", "exposed");
        entry.phase = Phase::Decision;
        entry.outcome = Some(outcome);
        self.log.append(&entry, self.wall.now()).await?;
        Ok(())
    }

    async fn contain(&self) -> Result<Response, StepError> {
        let hook = &self.ports.hook;
        let exposure = &self.request.exposure;
        // An event about another account names a key of that account: never acted on here
        // (the same id cannot be another account's key, but the event is not about us).
        if let Some(other) = exposure
            .account
            .as_deref()
            .filter(|a| *a != self.account.as_str())
        {
            return Err(StepError::InvalidInput(format!(
                "the event is about account {other}, and keyrotor works in account {}; respond with credentials of account {other}",
                self.account
            )));
        }
        let store = ResponseStore::new(hook.state, &self.account);
        let previous = store.get(&self.key).await?;
        let Some(owner) = hook.iam.key_owner(&self.key).await? else {
            return Err(StepError::InvalidInput(format!(
                "access key {} does not exist in account {}; check the key id and the account (--profile, or the event's account)",
                self.key, self.account
            )));
        };
        let Some(user) = hook.iam.user(&owner).await? else {
            return Err(StepError::InvalidInput(format!(
                "user {owner} of access key {} no longer exists",
                self.key
            )));
        };
        // The event says whose key it is (GuardDuty, CloudTrail, a Health user ARN): a key of
        // someone else is not acted on by itself (a crafted event, or the user renamed since);
        // a person decides.
        if let Some(named) = exposure.user.as_deref().filter(|n| *n != owner) {
            let detail = format!(
                "the event names user {named}, but key {} belongs to {owner}: nothing was changed; if the key did leak, contain it by hand: keyrotor respond iam-key {} --reason {}",
                self.key,
                self.key,
                exposure.reason.as_str()
            );
            self.decide(Outcome::Blocked, &detail).await?;
            notify_or_log(
                hook.notifier,
                &super::notice::blocked(owner_of(self.policy, &user), &user, &self.key, &detail),
            )
            .await;
            let mut r = self.response(Some(&owner), Status::Blocked, detail);
            r.owner = owner_of(self.policy, &user);
            return Ok(r);
        }
        let keys = hook.iam.access_keys(&owner).await?;
        let Some(current) = keys.iter().find(|k| k.id == self.key) else {
            return Err(StepError::InvalidInput(format!(
                "access key {} of {owner} no longer exists (deleted): nothing to contain",
                self.key
            )));
        };
        let active = current.status == KeyStatus::Active;
        if let Some(exclusion) = scope::iam_user_exclusion(&user, self.now, self.policy) {
            let overridable = !matches!(exclusion, Exclusion::RootUser);
            if !(overridable && self.request.override_exemption) {
                return self.blocked(&user, &exclusion, overridable).await;
            }
            // On the record: a person decided the exemption does not stop this response.
            if self.policy.mode == Mode::Enforce {
                let mut entry = self.entry(
                    "respond",
                    format!(
                        "user {} is excluded from automatic changes ({}: {}), and a person overrode it with --override-exemption to contain leaked key {}",
                        user.name,
                        exclusion.code(),
                        exclusion.detail(),
                        self.key
                    ),
                    "exposed",
                    "exposed",
                );
                entry.phase = Phase::Decision;
                entry.outcome = Some(Outcome::Succeeded);
                entry.reason = "exemption-overridden".into();
                self.log.append(&entry, self.wall.now()).await?;
            }
        }
        let bound = bound_secret(hook, &user, &self.key).await?;
        // Idempotent per key and event: the same event again changes nothing more (also
        // after a person undid the response), nor does any event once the key is inactive,
        // no replacement is left to publish and the last response went through. A step that
        // failed earlier (a replacement: the clients can still be saved; a revocation) is
        // tried again.
        let replace_due = matches!(bound, Bound::Current { .. });
        if let Some(done) = &previous
            && (done.answered(&exposure.event_id) || (done.complete && !active && !replace_due))
        {
            let mut r = self.response(
                Some(&owner),
                Status::NoOp,
                format!(
                    "key {} was contained by run {} on {}; nothing more to do",
                    self.key,
                    done.run_id,
                    done.contained_at.format("%Y-%m-%d %H:%M UTC")
                ),
            );
            r.replacement = done.replacement.as_ref().map(|(secret, key)| Replacement {
                secret: secret.clone(),
                key: Some(key.clone()),
            });
            r.undo = undo(&self.key, &owner);
            r.owner = owner_of(self.policy, &user);
            return Ok(r);
        }
        if self.policy.mode != Mode::Enforce {
            return self.planned(&owner, &bound).await;
        }
        let mut response = self.response(Some(&owner), Status::Done, String::new());
        // 1. Replace, where a client reads the key from a keyrotor secret.
        match &bound {
            Bound::Current { arn, name } => {
                let step = self.replace(arn, name, &mut response).await;
                response.steps.push(step);
            }
            Bound::Replaced { arn, name, current } => {
                response.replacement = Some(Replacement {
                    secret: arn.clone(),
                    key: Some(current.to_string()),
                });
                response.steps.push(ResponseStep {
                    step: "replace",
                    status: Status::NoOp,
                    detail: format!(
                        "secret {name} already holds another key of {owner}, {current}"
                    ),
                });
            }
            Bound::Unbound(why) => response.steps.push(ResponseStep {
                step: "replace",
                status: Status::Skipped,
                detail: format!("{why}: deactivated at once"),
            }),
        }
        // 2. Deactivate: a leaked key never stays active, replacement or not — unless the
        //    user left keyrotor's scope meanwhile (a person decides then).
        let (owner, deactivated) = self.deactivate(&owner).await?;
        let stopped = deactivated.status == Status::Blocked;
        response.steps.push(deactivated);
        if stopped {
            response.status = Status::Blocked;
            response.detail = summary(&response);
            return Ok(response);
        }
        // 3. The key's lifecycle is `contained` at once: never deleted by keyrotor, whatever
        //    fails after this.
        response.steps.push(self.hold(&owner, &response).await?);
        // 4. Revoke the sessions issued before now (a failure is reported, not fatal: the
        //    key is off).
        // A retry of a response that did not go through keeps its cut-off; a new exposure
        // (after a reactivation, say) revokes up to now.
        let earlier = previous
            .as_ref()
            .filter(|p| !p.complete)
            .and_then(|p| p.revoked_before);
        let revoked = self.revoke_sessions(&owner, earlier, &mut response).await?;
        response.steps.push(revoked);
        // 5. Other active keys of the user nobody accounts for: an attacker holding the
        //    leaked key can make one. Reported for a person; not changed.
        if let Some(step) = self.other_keys(&owner, &bound, &response).await? {
            response.steps.push(step);
        }
        // 6. The response, recorded (idempotency).
        response
            .steps
            .push(self.record(&owner, previous, &response).await?);
        response.undo = undo(&self.key, &owner);
        response.owner = owner_of(self.policy, &user);
        response.detail = summary(&response);
        Ok(response)
    }

    /// An exempt, break-glass or out-of-scope user: nothing is changed; a person is told,
    /// urgently, and may act with `--override-exemption`.
    async fn blocked(
        &self,
        user: &IamUser,
        exclusion: &Exclusion,
        overridable: bool,
    ) -> Result<Response, StepError> {
        let how = if overridable {
            format!(
                "a person may contain it anyway: keyrotor respond iam-key {} --reason {} --override-exemption",
                self.key,
                self.request.exposure.reason.as_str()
            )
        } else {
            "keyrotor never changes the root user: deactivate the root access key in the console now".to_owned()
        };
        let detail = format!(
            "key {} of {} was reported {} ({} {}), but the user is excluded from automatic changes ({}: {}); nothing was changed — {how}",
            self.key,
            user.name,
            self.request.exposure.reason.as_str(),
            self.request.exposure.event_type,
            self.request.exposure.event_id,
            exclusion.code(),
            exclusion.detail()
        );
        self.decide(Outcome::Blocked, &detail).await?;
        notify_or_log(
            self.ports.hook.notifier,
            &super::notice::blocked(owner_of(self.policy, user), user, &self.key, &detail),
        )
        .await;
        let mut r = self.response(Some(&user.name), Status::Blocked, detail);
        r.owner = owner_of(self.policy, user);
        Ok(r)
    }

    /// `mode = "plan"`: what would be done, recorded as planned; nothing changed.
    async fn planned(&self, owner: &str, bound: &Bound) -> Result<Response, StepError> {
        let replace = match bound {
            Bound::Current { name, .. } => {
                format!("publish a replacement in secret {name}, then ")
            }
            _ => String::new(),
        };
        let detail = format!(
            "would {replace}deactivate key {} of {owner} and revoke its sessions issued before now; the policy's mode is \"plan\", so nothing was changed (set mode = \"enforce\")",
            self.key
        );
        self.decide(Outcome::Planned, &detail).await?;
        Ok(self.response(Some(owner), Status::DryRun, detail))
    }
}

/// The rotation token of the replacement for `key` answering `event`: the same on every
/// retry of that response, so a retry continues the rotation the stopped run began.
fn rotation_token(key: &AccessKeyId, event: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{key}\n{event}").as_bytes());
    format!("respond-{}", &hex::encode(digest)[..32])
}

fn replacement_pair(response: &Response) -> Option<(String, String)> {
    response
        .replacement
        .as_ref()
        .and_then(|r| Some((r.secret.clone(), r.key.clone()?)))
}

/// How to undo a response.
fn undo(key: &AccessKeyId, owner: &str) -> Vec<String> {
    vec![
        format!("keyrotor reactivate iam-key {key}"),
        format!("aws iam delete-user-policy --user-name {owner} --policy-name {REVOKE_POLICY}"),
    ]
}

/// One line of what was done.
fn summary(r: &Response) -> String {
    let replaced = match &r.replacement {
        Some(Replacement {
            secret,
            key: Some(k),
        }) => {
            format!("replacement {k} published in {secret}; ")
        }
        _ => String::new(),
    };
    let failed: Vec<&str> = r
        .steps
        .iter()
        .filter(|s| s.status.is_failure())
        .map(|s| s.step)
        .collect();
    format!(
        "{replaced}key {} deactivated and sessions issued before the response revoked{}",
        r.key,
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (failed: {})", failed.join(", "))
        }
    )
}

/// The owner to notify: the user's `owner` tag, else the policy's default contact.
fn owner_of(policy: &Policy, user: &IamUser) -> Option<String> {
    user.tags
        .get(TAG_OWNER)
        .cloned()
        .or_else(|| policy.notifications.default_contact.clone())
}
