//! The four protocol steps of one invocation, each audited around its work (safety
//! invariant 4: intent, the work, outcome), after the secret and its credential are shown
//! to name each other (invariant 8), and dispatched by credential kind.

use super::{Hook, ProtocolStep, SecretType};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::Kind;
use crate::steps::StepError;
use crate::steps::api_keys::replacement::Stop;
use crate::steps::audited::Mutation;

impl Hook<'_> {
    /// The intent record of this step (its outcome repeats it, with what came of it).
    fn intent(&self, detail: String) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: match self.kind {
                    SecretType::Iam => Kind::IamKeys,
                    SecretType::ApiKey => Kind::ApiKeys,
                },
                account: self.account.to_string(),
                region: self.region.clone(),
                id: self.secret.arn.clone(),
            },
            action: self.request.step.as_str().to_owned(),
            phase: Phase::Intent,
            outcome: None,
            reason: "secrets-manager-rotation".into(),
            detail,
            before: None,
            after: Some(self.request.token.clone()),
            dry_run: false,
            policy_time: self.now,
        }
    }

    /// Audits the step around its work: intent, work, outcome (failed or succeeded).
    pub(super) async fn step(&self) -> Result<String, StepError> {
        let step = self.request.step;
        // A step with nothing to change is not audited: Secrets Manager retries steps.
        if let Some(noop) = self.nothing_to_do().await? {
            return Ok(noop);
        }
        let mutation = Mutation::begin(
            &self.log,
            self.wall,
            self.intent(format!("{} of secret {}", step.as_str(), self.secret.name)),
        )
        .await?;
        let work = match self.bound().await {
            Err(stop) => Err(stop),
            Ok(()) => self.work(step).await,
        };
        let (outcome, detail) = match &work {
            Ok(detail) => (Outcome::Succeeded, detail.clone()),
            Err(Stop::Blocked(m)) => (Outcome::Blocked, m.clone()),
            Err(Stop::Port(e)) => (Outcome::Failed, e.to_string()),
        };
        let detail = match (&work, self.effects.lock().map(|e| e.join("; "))) {
            (Err(_), Ok(done)) if !done.is_empty() => format!("{detail}; already done: {done}"),
            _ => detail,
        };
        // Every outcome keeps the intent's `after` (the token), a failed one too.
        mutation.end(outcome, detail, None).await?;
        work.map_err(|stop| match stop {
            Stop::Blocked(m) => StepError::Blocked(m),
            Stop::Port(e) => StepError::Port(e),
        })
    }

    async fn work(&self, step: ProtocolStep) -> Result<String, Stop> {
        match step {
            ProtocolStep::CreateSecret => self.create().await,
            ProtocolStep::SetSecret => Ok(
                "nothing to set: the credential was created and attached in createSecret".into(),
            ),
            ProtocolStep::TestSecret => self.test().await,
            ProtocolStep::FinishSecret => self.finish().await,
        }
    }

    /// The secret and the credential it holds name each other, as AWS has them now (every
    /// step: a secret's content and tags are written by people with weaker rights than
    /// keyrotor's, and may change between steps). IAM: the user the versions name carries
    /// `keyrotor:secret` = this secret's ARN, and the keys in AWSCURRENT and in this
    /// token's version belong to that user. API key: the key in AWSCURRENT and this secret
    /// are bound both ways ([`crate::domain::binding`]).
    async fn bound(&self) -> Result<(), Stop> {
        let current = self.current().await?;
        let mine = self
            .ports
            .secrets
            .value(&self.secret.name, Some(&self.request.token), None)
            .await?;
        match self.kind {
            SecretType::Iam => self.iam_bound(&current, mine).await,
            SecretType::ApiKey => self.api_key_bound(&current).await,
        }
    }

    /// `Some(reason)` when the step has already been done.
    async fn nothing_to_do(&self) -> Result<Option<String>, StepError> {
        Ok(match self.request.step {
            ProtocolStep::CreateSecret => self
                .pending()
                .await?
                .map(|_| "no-op: the pending version already has a value".to_owned()),
            ProtocolStep::SetSecret => Some("no-op: nothing to set".into()),
            _ => None,
        })
    }

    async fn create(&self) -> Result<String, Stop> {
        let current = self.current().await?;
        let (what, stale) = match self.kind {
            SecretType::Iam => self.create_iam(&current).await?,
            SecretType::ApiKey => self.create_api_key(&current).await?,
        };
        let stale = if stale.is_empty() {
            String::new()
        } else {
            format!(
                "; cleared AWSPENDING left on version(s) {} by an earlier failed rotation",
                stale.join(", ")
            )
        };
        Ok(format!(
            "{what}; written as version {} (AWSPENDING){stale}",
            self.request.token
        ))
    }

    async fn test(&self) -> Result<String, Stop> {
        let pending = self.pending().await?.ok_or_else(|| {
            Stop::Blocked(format!(
                "version {} of secret {} has no value; run createSecret first",
                self.request.token, self.secret.name
            ))
        })?;
        match self.kind {
            SecretType::Iam => self.test_iam(&pending).await,
            SecretType::ApiKey => self.test_api_key(&pending).await,
        }
    }

    /// AWSPENDING, then schedules the previous credential's retirement, once.
    async fn finish(&self) -> Result<String, Stop> {
        let token = &self.request.token;
        let staged = |stage: &str| {
            self.secret
                .versions
                .iter()
                .find(|(_, s)| s.iter().any(|x| x == stage))
                .map(|(v, _)| v.clone())
        };
        let current = staged("AWSCURRENT");
        let mut moved = false;
        if current.as_deref() != Some(token.as_str()) {
            if self.pending().await?.is_none() {
                return Err(Stop::Blocked(format!(
                    "version {token} has no value to promote; run createSecret first"
                )));
            }
            self.ports
                .secrets
                .move_stage(
                    &self.secret.name,
                    "AWSCURRENT",
                    Some(token),
                    current.as_deref(),
                )
                .await?;
            moved = true;
        }
        if self
            .secret
            .versions
            .get(token)
            .is_some_and(|s| s.iter().any(|x| x == "AWSPENDING"))
            || moved
        {
            self.ports
                .secrets
                .move_stage(&self.secret.name, "AWSPENDING", None, Some(token))
                .await?;
        }
        let scheduled = self.schedule_previous().await?;
        if moved {
            self.notify_rotated(token, &scheduled).await;
        }
        Ok(format!(
            "version {token} is AWSCURRENT{}; {scheduled}",
            if moved { "" } else { " (already)" }
        ))
    }

    /// Tells the owner the new credential is current (identifiers only, never a value). A
    /// failed delivery is logged; it does not fail the step.
    async fn notify_rotated(&self, token: &str, scheduled: &str) {
        let (event, what, grace) = match self.kind {
            SecretType::Iam => (
                "iam-key-rotated",
                "IAM access key",
                self.policy.iam_keys.rotation_grace_days,
            ),
            SecretType::ApiKey => (
                "api-key-rotated",
                "API key",
                self.policy.api_keys.grace_days,
            ),
        };
        let n = crate::ports::Notification {
            event: event.into(),
            resource: self.secret.name.clone(),
            owner: self.policy.notifications.default_contact.clone(),
            subject: format!(
                "Secret {} rotated: a new {what} is current",
                self.secret.name
            )
            .chars()
            .take(100)
            .collect(),
            message: format!(
                "Secrets Manager rotated {} (version {token} is AWSCURRENT); {scheduled}.\nClients that read the secret pick the new value up on their next read.",
                self.secret.name
            ),
            at: Some(self.now),
            undo: Some(format!(
                "for {grace} days the previous {what} still works; to go back, make the previous version of {} AWSCURRENT again (update-secret-version-stage)",
                self.secret.name
            )),
        };
        crate::ports::notify_or_log(self.ports.notifier, &n).await;
    }

    /// Records the retirement of the credential in AWSPREVIOUS: the IAM key becomes
    /// Superseded (the sweep deactivates it after `rotation_grace_days` unless it is still
    /// used), the API key's rotation becomes Promoted (the sweep retires it after
    /// `grace_days`). Never disables anything itself.
    async fn schedule_previous(&self) -> Result<String, Stop> {
        // By version id, as the step began: the version finish demoted (or, when this
        // token was already current, the one that was AWSPREVIOUS), and the token's.
        let token = self.request.token.as_str();
        let demoted = if self.staged("AWSCURRENT") == Some(token) {
            self.staged("AWSPREVIOUS")
        } else {
            self.staged("AWSCURRENT")
        };
        let previous = match demoted {
            Some(v) => self.version(v).await?,
            None => None,
        };
        let promoted = self.version(token).await?.ok_or_else(|| {
            Stop::Blocked(format!(
                "version {token} of secret {} has no value",
                self.secret.name
            ))
        })?;
        let Some(previous) = previous else {
            return Ok("no previous version to retire".into());
        };
        match self.kind {
            SecretType::Iam => self.schedule_iam(&previous, &promoted).await,
            SecretType::ApiKey => self.schedule_api_key(&previous, &promoted).await,
        }
    }
}
