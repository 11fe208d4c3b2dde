//! The Secrets Manager rotation hook: the four steps of AWS's rotation protocol
//! (createSecret, setSecret, testSecret, finishSecret) for secrets tagged
//! `keyrotor:type = iam-access-key` (`{"userName", "accessKeyId", "secretAccessKey"}`) or
//! `apigw-api-key` (`{"apiKeyId", "value"}`).
//!
//! Protocol rules, checked on every step: the token must be a version of the secret staged
//! AWSPENDING; a token already AWSCURRENT is a no-op; rotation must be enabled (when invoked
//! by Secrets Manager). Every step is idempotent. The previous credential is never disabled
//! here: finishSecret schedules it (IAM: deactivation after `rotation_grace_days`; API key:
//! retirement after `grace_days`), and the sweep carries it out.

use std::time::Duration as StdDuration;

use aws_lambda_events::event::secretsmanager::SecretsManagerSecretRotationEvent;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api_keys::{Stop, ensure_replacement, replacement_problems};
use super::guard::{self, Removal};
use super::{StepError, new_run_id};
use crate::audit::AuditLog;
use crate::domain::api_rotation::{
    ApiKeySecret, Rotation, RotationStage, RotationStep, Trigger, is_token,
};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::lifecycle::{KeyRecord, Stage};
use crate::domain::model::{AccessKeyId, AccountId, Kind, TAG_TYPE};
use crate::domain::policy::{Mode, Policy};
use crate::domain::scope;
use crate::ports::{
    ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory, AuditStore, Clock, IamInventory, IamKeyAdmin,
    Identity, KeyTester, PortError, SecretDescription, SecretValue, SecretVersions, StateStore,
};

/// `keyrotor:type` of a secret holding an IAM access key.
pub const TYPE_IAM: &str = "iam-access-key";
/// `keyrotor:type` of a secret holding an API Gateway API key.
pub const TYPE_API_KEY: &str = crate::domain::binding::TYPE_API_KEY;

/// Delays between the attempts of testSecret while a new IAM key becomes valid.
const IAM_TEST_BACKOFF: [u64; 6] = [1, 2, 4, 8, 16, 16];

/// The step Secrets Manager asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ProtocolStep {
    CreateSecret,
    SetSecret,
    TestSecret,
    FinishSecret,
}

impl ProtocolStep {
    pub const ALL: [ProtocolStep; 4] = [
        ProtocolStep::CreateSecret,
        ProtocolStep::SetSecret,
        ProtocolStep::TestSecret,
        ProtocolStep::FinishSecret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolStep::CreateSecret => "createSecret",
            ProtocolStep::SetSecret => "setSecret",
            ProtocolStep::TestSecret => "testSecret",
            ProtocolStep::FinishSecret => "finishSecret",
        }
    }
}

/// A rotation request: one step for one secret version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub step: ProtocolStep,
    pub secret_id: String,
    pub token: String,
}

impl Request {
    /// Reads a Lambda event; the error names the field that is missing or wrong.
    pub fn from_event(event: serde_json::Value) -> Result<Request, StepError> {
        let parsed: SecretsManagerSecretRotationEvent = serde_json::from_value(event)
            .map_err(|e| {
                StepError::InvalidInput(format!(
                    "rotation event: {e}; expected {{\"Step\": \"createSecret|setSecret|testSecret|finishSecret\", \"SecretId\": ..., \"ClientRequestToken\": ...}}"
                ))
            })?;
        let step = ProtocolStep::ALL
            .into_iter()
            .find(|s| s.as_str() == parsed.step)
            .ok_or_else(|| {
                StepError::InvalidInput(format!(
                    "rotation event: Step {:?} is not one of createSecret, setSecret, testSecret, finishSecret",
                    parsed.step
                ))
            })?;
        for (name, value) in [
            ("SecretId", &parsed.secret_id),
            ("ClientRequestToken", &parsed.client_request_token),
        ] {
            if value.trim().is_empty() {
                return Err(StepError::InvalidInput(format!(
                    "rotation event: {name} is empty"
                )));
            }
        }
        Ok(Request {
            step,
            secret_id: parsed.secret_id,
            token: parsed.client_request_token,
        })
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub step: ProtocolStep,
    pub secret: String,
    pub token: String,
    /// `done`, or `no-op` with the reason in `detail`.
    pub status: &'static str,
    pub detail: String,
}

/// The ports the hook uses.
pub struct HookPorts<'a> {
    pub identity: &'a dyn Identity,
    pub secrets: &'a dyn SecretVersions,
    pub iam: &'a dyn IamInventory,
    pub iam_admin: &'a dyn IamKeyAdmin,
    pub tester: &'a dyn KeyTester,
    pub api_keys: &'a dyn ApiKeyInventory,
    pub api_admin: &'a dyn ApiKeyAdmin,
    pub state: &'a dyn StateStore,
    pub audit: &'a dyn AuditStore,
    /// Tells the owner when the secret's credential was replaced.
    pub notifier: &'a dyn crate::ports::Notifier,
}

/// Who invoked the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Secrets Manager (RotateSecret): the token version exists, staged AWSPENDING.
    SecretsManager,
    /// `keyrotor rotate secret`: createSecret writes the token version itself, and the
    /// secret need not have rotation enabled.
    Local,
}

/// The two credential shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretType {
    Iam,
    ApiKey,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IamKeySecret {
    #[serde(rename = "userName")]
    user_name: String,
    #[serde(rename = "accessKeyId")]
    access_key_id: String,
    #[serde(rename = "secretAccessKey")]
    secret_access_key: String,
}

impl IamKeySecret {
    fn parse(text: &str) -> Result<IamKeySecret, String> {
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

/// The attempts of one createSecret (one secret, one token) at creating an IAM key, noted
/// right before each CreateAccessKey.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Attempt {
    /// The user's keys before the first attempt.
    before: Vec<String>,
    /// When each attempt whose CreateAccessKey answer never came back called it (the
    /// latest few): the key it may have created is known only by its creation time.
    times: Vec<DateTime<Utc>>,
    /// Keys these attempts created, as CreateAccessKey answered.
    created: Vec<String>,
}

impl Attempt {
    /// Attempt times kept.
    const KEPT: usize = 20;

    fn attrs(&self) -> std::collections::BTreeMap<String, String> {
        let times: Vec<String> = self.times.iter().map(|t| t.to_rfc3339()).collect();
        std::collections::BTreeMap::from([
            ("before".to_owned(), self.before.join(",")),
            ("times".to_owned(), times.join(",")),
            ("created".to_owned(), self.created.join(",")),
        ])
    }

    fn from_attrs(attrs: &std::collections::BTreeMap<String, String>) -> Option<Attempt> {
        let list = |name: &str| {
            attrs.get(name).map(|v| {
                v.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        let times = list("times")?
            .iter()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Attempt {
            before: list("before")?,
            times,
            created: list("created").unwrap_or_default(),
        })
    }

    /// These attempts with only the keys CreateAccessKey named (no creation-time match).
    fn without_times(self) -> Attempt {
        Attempt {
            times: Vec::new(),
            ..self
        }
    }

    /// Whether `key` was created by one of these attempts: CreateAccessKey named it, or —
    /// for an attempt whose answer was lost — it was not among the keys before and AWS
    /// created it within moments of that attempt's call.
    fn created(&self, key: &crate::domain::model::AccessKey) -> bool {
        let id = key.id.to_string();
        if self.created.contains(&id) {
            return true;
        }
        !self.before.contains(&id)
            && self.times.iter().any(|t| {
                key.created >= *t - chrono::Duration::seconds(30)
                    && key.created <= *t + chrono::Duration::seconds(90)
            })
    }
}

/// One invocation's context.
struct Hook<'a> {
    ports: &'a HookPorts<'a>,
    policy: &'a Policy,
    now: DateTime<Utc>,
    wall: &'a dyn Clock,
    log: AuditLog<'a>,
    account: AccountId,
    region: String,
    request: &'a Request,
    secret: SecretDescription,
    kind: SecretType,
    /// Changes this step made to AWS besides its main one (named in a failed outcome).
    effects: std::sync::Mutex<Vec<String>>,
}

/// Runs one protocol step.
pub async fn run_step(
    ports: &HookPorts<'_>,
    policy: &Policy,
    request: &Request,
    caller_kind: Caller,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<StepResult, StepError> {
    let invalid = |m: String| StepError::InvalidInput(m);
    let secret = ports
        .secrets
        .describe(&request.secret_id)
        .await?
        .ok_or_else(|| invalid(format!("secret {:?} does not exist", request.secret_id)))?;
    if caller_kind == Caller::SecretsManager && !secret.rotation_enabled {
        return Err(invalid(format!(
            "rotation is not enabled for secret {}; enable it (aws secretsmanager rotate-secret --rotation-lambda-arn ...) before invoking the hook",
            secret.name
        )));
    }
    let kind = match secret.tags.get(TAG_TYPE).map(String::as_str) {
        Some(TYPE_IAM) => SecretType::Iam,
        Some(TYPE_API_KEY) => SecretType::ApiKey,
        other => {
            return Err(invalid(format!(
                "secret {} has tag {TAG_TYPE} = {:?}; keyrotor rotates secrets tagged {TAG_TYPE} = {TYPE_IAM} or {TYPE_API_KEY}",
                secret.name,
                other.unwrap_or("(missing)")
            )));
        }
    };
    if kind == SecretType::ApiKey && !is_token(&request.token) {
        return Err(invalid(format!(
            "ClientRequestToken {:?} of secret {} is not 8 to 64 letters, digits or dashes; keyrotor uses it as the replacement API key's tag, so rotate with such a token (Secrets Manager's own are UUIDs)",
            request.token, secret.name
        )));
    }
    let name = secret.name.clone();
    let result = |status, detail: String| StepResult {
        step: request.step,
        secret: name.clone(),
        token: request.token.clone(),
        status,
        detail,
    };
    match secret.versions.get(&request.token) {
        // finishSecret still makes sure the previous credential is scheduled for retirement
        // (a run that stopped right after promoting did not get to it).
        Some(stages)
            if stages.iter().any(|s| s == "AWSCURRENT")
                && request.step != ProtocolStep::FinishSecret =>
        {
            return Ok(result(
                "no-op",
                format!("version {} is already AWSCURRENT", request.token),
            ));
        }
        Some(stages)
            if !stages
                .iter()
                .any(|s| s == "AWSPENDING" || s == "AWSCURRENT") =>
        {
            return Err(invalid(format!(
                "version {} of secret {} is not staged AWSPENDING (stages: {stages:?}); it is not a rotation in progress",
                request.token, secret.name
            )));
        }
        None if !(caller_kind == Caller::Local && request.step == ProtocolStep::CreateSecret) => {
            return Err(invalid(format!(
                "ClientRequestToken {} is not a version of secret {}",
                request.token, secret.name
            )));
        }
        _ => {}
    }
    // Creating, deleting and promoting credentials are changes: a fresh deployment
    // (mode = "plan") plans and reports only.
    if policy.mode != Mode::Enforce && request.step != ProtocolStep::TestSecret {
        return Err(StepError::Blocked(format!(
            "{} of secret {}: the policy's mode is \"plan\"; set mode = \"enforce\" to let the hook change credentials",
            request.step.as_str(),
            secret.name
        )));
    }
    let who = ports.identity.caller().await?;
    let run_id = new_run_id(wall.now());
    let hook = Hook {
        ports,
        policy,
        now,
        wall,
        log: AuditLog::new(ports.audit, run_id.clone(), who.arn.clone()),
        account: who.account.clone(),
        region: region.to_owned(),
        request,
        secret,
        kind,
        effects: Default::default(),
    };
    // Every step on an API key runs under the key's lease, like the API key rotation's
    // (schedule, CLI): while one of those is under way, this step answers "in progress"
    // and Secrets Manager retries it. The key is the one being replaced: AWSCURRENT's, or
    // AWSPREVIOUS's once this token is current.
    let lease = match kind {
        SecretType::ApiKey => {
            let promoted = hook
                .secret
                .versions
                .get(&request.token)
                .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"));
            let stage = if promoted {
                "AWSPREVIOUS"
            } else {
                "AWSCURRENT"
            };
            // A missing or malformed value is the step's to report; a value that cannot be
            // read leaves the key unknown, so the step does not run without its lease.
            let value = match hook.staged(stage) {
                Some(version) => hook.version(version).await,
                None => Ok(None),
            };
            let value = value
                .map_err(|e| {
                    StepError::Port(PortError::NotReady {
                        operation: request.step.as_str().into(),
                        message: format!(
                            "cannot read {stage} of secret {} to take the API key's lease ({e}); Secrets Manager retries the step",
                            hook.secret.name
                        ),
                    })
                })?;
            value
                .and_then(|v| ApiKeySecret::parse(v.expose()).ok())
                .map(|old| {
                    (
                        super::api_keys::lease_name(&who.account, region, &old.api_key_id),
                        format!("API key {}", old.api_key_id),
                    )
                })
        }
        SecretType::Iam => None,
    };
    let detail = match lease {
        Some((lease, what)) => {
            super::with_lease(ports.state, &lease, &what, &run_id, wall, hook.step()).await
        }
        None => hook.step().await,
    };
    let detail = hook.log.finish(detail, wall.now()).await?;
    Ok(result(
        if detail.starts_with("no-op") {
            "no-op"
        } else {
            "done"
        },
        detail,
    ))
}

impl Hook<'_> {
    fn entry(&self, phase: Phase, outcome: Option<Outcome>, detail: String) -> Entry {
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
            phase,
            outcome,
            reason: "secrets-manager-rotation".into(),
            detail,
            before: None,
            after: Some(self.request.token.clone()),
            dry_run: false,
            policy_time: self.now,
        }
    }

    /// Audits the step around its work: intent, work, outcome (failed or succeeded).
    async fn step(&self) -> Result<String, StepError> {
        let step = self.request.step;
        // A step with nothing to change is not audited: Secrets Manager retries steps.
        if let Some(noop) = self.nothing_to_do().await? {
            return Ok(noop);
        }
        self.log
            .append(
                &self.entry(
                    Phase::Intent,
                    None,
                    format!("{} of secret {}", step.as_str(), self.secret.name),
                ),
                self.wall.now(),
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
        self.log
            .append(
                &self.entry(Phase::Outcome, Some(outcome), detail),
                self.wall.now(),
            )
            .await?;
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
            SecretType::Iam => {
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
            SecretType::ApiKey => {
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

    async fn pending(&self) -> Result<Option<SecretValue>, PortError> {
        self.ports
            .secrets
            .value(
                &self.secret.name,
                Some(&self.request.token),
                Some("AWSPENDING"),
            )
            .await
    }

    /// The version that held `stage` when this step began (DescribeSecret at its start).
    /// Values are read by version id from then on: a version's value never changes, so a
    /// label moved during the step cannot swap what was checked for what is acted on.
    fn staged(&self, stage: &str) -> Option<&str> {
        self.secret
            .versions
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.as_str())
    }

    /// The value of version `version`, `None` when it has none.
    async fn version(&self, version: &str) -> Result<Option<SecretValue>, PortError> {
        self.ports
            .secrets
            .value(&self.secret.name, Some(version), None)
            .await
    }

    /// The AWSCURRENT value as the step began.
    async fn current(&self) -> Result<SecretValue, Stop> {
        let missing = || {
            Stop::Blocked(format!(
                "secret {} has no AWSCURRENT value to rotate from",
                self.secret.name
            ))
        };
        let version = self.staged("AWSCURRENT").ok_or_else(missing)?;
        self.version(version).await?.ok_or_else(missing)
    }

    fn shape<T>(&self, stage: &str, parsed: Result<T, String>) -> Result<T, Stop> {
        parsed.map_err(|why| {
            Stop::Blocked(format!(
                "the {stage} value of secret {} {why}; fix the secret",
                self.secret.name
            ))
        })
    }

    /// Versions other than the token's that still carry AWSPENDING: left by a rotation
    /// that failed. They would block every later rotation, so they are cleared.
    async fn clear_stale_pending(&self) -> Result<Vec<String>, Stop> {
        let stale: Vec<String> = self
            .secret
            .versions
            .iter()
            .filter(|(v, s)| *v != &self.request.token && s.iter().any(|x| x == "AWSPENDING"))
            .map(|(v, _)| v.clone())
            .collect();
        for version in &stale {
            self.ports
                .secrets
                .move_stage(&self.secret.name, "AWSPENDING", None, Some(version))
                .await?;
        }
        Ok(stale)
    }

    async fn create(&self) -> Result<String, Stop> {
        let current = self.current().await?;
        // An API key has one rotation at a time, whoever started it: claim it before
        // anything is touched, so a rotation under way elsewhere keeps its pending version.
        let claimed = match self.kind {
            SecretType::ApiKey => {
                let current = self.shape("AWSCURRENT", ApiKeySecret::parse(current.expose()))?;
                Some(self.claim_rotation(&current.api_key_id).await?)
            }
            SecretType::Iam => None,
        };
        let stale = self.clear_stale_pending().await?;
        let mut created = None;
        let (value, what) = match claimed {
            None => {
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
                (
                    SecretValue::new(json),
                    format!("created access key {id} for {}{removed}", current.user_name),
                )
            }
            Some(rotation) => {
                let admin = self.ports.api_admin;
                let name = rotation.replacement_name();
                let new = ensure_replacement(
                    admin,
                    self.ports.state,
                    &rotation,
                    &Rotation::partition(self.account.as_str(), &self.region),
                )
                .await?;
                created = Some(
                    self.record_rotation(&rotation, RotationStep::CreateReplacement, Some(&new))
                        .await?,
                );
                let value = admin.key_value(&new).await?;
                let body = ApiKeySecret {
                    api_key_id: new.clone(),
                    value: value.expose().to_owned(),
                };
                (
                    SecretValue::new(body.to_json()),
                    format!(
                        "created API key {new} ({name}) in usage plans [{}]",
                        rotation.plans.join(", ")
                    ),
                )
            }
        };
        self.ports
            .secrets
            .put_pending(&self.secret.name, &self.request.token, &value)
            .await?;
        if let Some(rotation) = &created {
            self.record_rotation(rotation, RotationStep::Publish, None)
                .await?;
        }
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
        let migrations = super::migration::records(self.ports.state, &self.account)
            .await
            .map_err(|e| {
                Stop::Blocked(format!(
                    "cannot read the migration records, so it is unknown whether a migration owns {user}'s keys: {e}"
                ))
            })?;
        if super::migration::owning_keys(&migrations).contains(user) {
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
            let records = match super::iam_keys::key_records(self.ports.state, &self.account).await
            {
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

    /// Where this step's attempts at creating a key are noted (state table).
    fn attempt_item(&self) -> (String, String) {
        (
            format!("hook-attempt#{}", self.account),
            format!("{}#{}", self.secret.arn, self.request.token),
        )
    }

    /// What an earlier attempt of this very createSecret (same secret, same token) noted
    /// before it created a key: it may have stopped after CreateAccessKey (its answer lost,
    /// or a later call failed), leaving a key nobody was given.
    async fn earlier_attempt(&self) -> Result<Option<Attempt>, Stop> {
        let (pk, sk) = self.attempt_item();
        let Some(attrs) = self.ports.state.get(&pk, &sk).await? else {
            return Ok(None);
        };
        Ok(Attempt::from_attrs(&attrs))
    }

    /// Notes, right before CreateAccessKey, which keys the user had (the first attempt's
    /// list is kept) and when this attempt ran.
    async fn note_attempt(&self, before: &[String]) -> Result<(), Stop> {
        self.update_attempt(|earlier| match earlier {
            Some(mut a) => {
                a.times.push(self.now);
                let over = a.times.len().saturating_sub(Attempt::KEPT);
                a.times.drain(..over);
                a
            }
            None => Attempt {
                before: before.to_vec(),
                times: vec![self.now],
                created: Vec::new(),
            },
        })
        .await
    }

    /// Notes the key CreateAccessKey answered with: this attempt's outcome is known, so it
    /// no longer needs the creation-time match.
    async fn note_created(&self, key: &AccessKeyId) -> Result<(), Stop> {
        self.update_attempt(|earlier| {
            let mut a = earlier.unwrap_or(Attempt {
                before: Vec::new(),
                times: Vec::new(),
                created: Vec::new(),
            });
            a.times.retain(|t| *t != self.now);
            a.created.push(key.to_string());
            a
        })
        .await
    }

    /// Removes this attempt's time: its CreateAccessKey was answered with an error.
    async fn forget_attempt_time(&self) -> Result<(), Stop> {
        self.update_attempt(|earlier| {
            let mut a = earlier.unwrap_or(Attempt {
                before: Vec::new(),
                times: Vec::new(),
                created: Vec::new(),
            });
            a.times.retain(|t| *t != self.now);
            a
        })
        .await
    }

    /// Rewrites this step's attempt item with `update` of what is stored (compare-and-set
    /// on a count that only grows: of two attempts racing, one writes, the other stops).
    async fn update_attempt(
        &self,
        update: impl FnOnce(Option<Attempt>) -> Attempt,
    ) -> Result<(), Stop> {
        let (pk, sk) = self.attempt_item();
        let stored = self.ports.state.get(&pk, &sk).await?;
        let count: u64 = stored
            .as_ref()
            .and_then(|a| a.get("count"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let attempt = update(stored.as_ref().and_then(Attempt::from_attrs));
        let mut attrs = attempt.attrs();
        attrs.insert("count".to_owned(), (count + 1).to_string());
        if !self
            .ports
            .state
            .advance(&pk, &sk, count + 1, &attrs)
            .await?
        {
            return Err(Stop::Port(PortError::Conflict {
                operation: "createSecret".into(),
                message: format!(
                    "another attempt of the rotation of secret {} is creating a key; Secrets Manager retries this step",
                    self.secret.name
                ),
            }));
        }
        Ok(())
    }

    /// Deletes `key` of `user` to make room, audited on the key's own resource (intent,
    /// outcome); the deletion is also noted for the step's outcome, so a later failure in
    /// the same step says the key is gone.
    async fn remove_to_make_room(&self, user: &str, key: &AccessKeyId) -> Result<(), Stop> {
        let entry = |phase, outcome, detail: String| Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: self.account.to_string(),
                region: crate::domain::plan::GLOBAL.to_owned(),
                id: key.to_string(),
            },
            action: "delete".into(),
            phase,
            outcome,
            reason: "make-room-for-rotation".into(),
            detail,
            before: None,
            after: Some(self.secret.arn.clone()),
            dry_run: false,
            policy_time: self.now,
        };
        let detail = format!(
            "delete access key {key} of {user} to make room under the 2-key limit for the rotation of secret {} (version {})",
            self.secret.name, self.request.token
        );
        self.log
            .append(&entry(Phase::Intent, None, detail.clone()), self.wall.now())
            .await?;
        let result = match self.ports.iam_admin.delete_key(user, key).await {
            Err(PortError::NotFound { .. }) => Ok(()),
            other => other,
        };
        let (outcome, text) = match &result {
            Ok(()) => (Outcome::Succeeded, detail),
            Err(e) => (Outcome::Failed, e.to_string()),
        };
        self.log
            .append(&entry(Phase::Outcome, Some(outcome), text), self.wall.now())
            .await?;
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
        let mut ids = Vec::new();
        for (version, stages) in &self.secret.versions {
            if stages.is_empty() {
                continue;
            }
            if let Some(v) = self
                .ports
                .secrets
                .value(&self.secret.name, Some(version), None)
                .await?
                && let Ok(body) = IamKeySecret::parse(v.expose())
            {
                ids.push(body.access_key_id);
            }
        }
        Ok(ids)
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
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        let Some(item) = self
            .ports
            .state
            .list(&pk)
            .await?
            .into_iter()
            .find(|i| i.sk == key)
        else {
            return Ok(None);
        };
        Rotation::from_item(&item.sk, item.version, &item.attrs)
            .map(Some)
            .map_err(|why| {
                Stop::Blocked(format!(
                    "the rotation record of API key {key} cannot be read ({why}); fix or delete the state-table item"
                ))
            })
    }

    /// Claims the rotation of API key `key` for this token: the record of this token (a
    /// repeated createSecret), or a new record in the state table. A rotation of the key
    /// under way with another token (the sweep's, the CLI's, another hook run's) owns the
    /// key: this step stops as in progress and changes nothing.
    async fn claim_rotation(&self, key: &str) -> Result<Rotation, Stop> {
        let found = self.rotation_of(key).await?;
        let version = found.as_ref().map_or(0, |r| r.version);
        if let Some(r) = found.filter(|r| r.stage != RotationStage::Deleted) {
            if r.token == self.request.token {
                return Ok(r);
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
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        if !self
            .ports
            .state
            .put_versioned(&pk, key, version, &rotation.attrs())
            .await?
        {
            return Err(Stop::Port(PortError::Conflict {
                operation: "createSecret".into(),
                message: format!(
                    "another run started a rotation of API key {key} first; Secrets Manager retries this step"
                ),
            }));
        }
        Ok(Rotation {
            version: version + 1,
            ..rotation
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
        let pk = Rotation::partition(self.account.as_str(), &self.region);
        if !self
            .ports
            .state
            .put_versioned(&pk, &rotation.old_key, rotation.version, &next.attrs())
            .await?
        {
            return Err(Stop::Port(PortError::NotReady {
                operation: self.request.step.as_str().into(),
                message: format!(
                    "the rotation record of {} changed meanwhile; Secrets Manager retries the step",
                    rotation.old_key
                ),
            }));
        }
        next.version = rotation.version + 1;
        Ok(next)
    }

    async fn test(&self) -> Result<String, Stop> {
        let pending = self.pending().await?.ok_or_else(|| {
            Stop::Blocked(format!(
                "version {} of secret {} has no value; run createSecret first",
                self.request.token, self.secret.name
            ))
        })?;
        match self.kind {
            SecretType::Iam => {
                let body = self.shape("AWSPENDING", IamKeySecret::parse(pending.expose()))?;
                let id = AccessKeyId::parse(&body.access_key_id)
                    .map_err(|e| Stop::Blocked(e.to_string()))?;
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
            SecretType::ApiKey => {
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
                let problems =
                    replacement_problems(self.ports.api_admin, &body.api_key_id, &plans).await?;
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
        }
    }

    /// Moves AWSCURRENT to the token's version (unless it is there already), removes
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
            SecretType::Iam => {
                let old = self.shape("AWSPREVIOUS", IamKeySecret::parse(previous.expose()))?;
                let key = AccessKeyId::parse(&old.access_key_id)
                    .map_err(|e| Stop::Blocked(e.to_string()))?;
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
                let pk = KeyRecord::partition(self.account.as_str());
                let existing = self
                    .ports
                    .state
                    .list(&pk)
                    .await?
                    .into_iter()
                    .find(|i| i.sk == key.as_str());
                match existing
                    .as_ref()
                    .and_then(|i| i.attrs.get("stage"))
                    .map(String::as_str)
                {
                    Some(s) if s == Stage::Superseded.as_str() => {
                        return Ok(format!("previous key {key} is already scheduled"));
                    }
                    // Already further along (deactivated, deleted): superseding it again would
                    // restart its lifecycle and lose its recovery window.
                    Some(s) if s == Stage::Deactivated.as_str() || s == Stage::Deleted.as_str() => {
                        return Ok(format!(
                            "previous key {key} is not rescheduled: its lifecycle is already at {s}"
                        ));
                    }
                    _ => {}
                }
                let version = existing.map_or(0, |i| i.version);
                let record = KeyRecord {
                    key: key.clone(),
                    user: old.user_name.clone(),
                    stage: Stage::Superseded,
                    since: self.now,
                    version,
                    secret: Some(self.secret.arn.clone()),
                };
                if !self
                    .ports
                    .state
                    .put_versioned(&pk, key.as_str(), version, &record.attrs())
                    .await?
                {
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
            SecretType::ApiKey => {
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
                        let mut r = Rotation::start(
                            &old.api_key_id,
                            &info.name,
                            &self.secret.arn,
                            &plans,
                            self.request.token.clone(),
                            Trigger::OnDemand,
                            self.now,
                        )
                        .advanced(RotationStep::Verify, self.now);
                        let pk = Rotation::partition(self.account.as_str(), &self.region);
                        if !self
                            .ports
                            .state
                            .put_versioned(&pk, &old.api_key_id, 0, &r.attrs())
                            .await?
                        {
                            return Err(Stop::Port(PortError::NotReady {
                                operation: "finishSecret".into(),
                                message: format!(
                                    "the rotation record of {} changed while it was scheduled; Secrets Manager retries the step",
                                    old.api_key_id
                                ),
                            }));
                        }
                        r.version = 1;
                        r
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
    }
}

/// Whether `e` is an answer from AWS (the call was refused), as opposed to a call whose
/// outcome is unknown (timeout, transport, server error): only the latter may have made a
/// key.
fn answered(e: &PortError) -> bool {
    matches!(
        e,
        PortError::NoCredentials { .. }
            | PortError::AccessDenied { .. }
            | PortError::InvalidCredentials { .. }
            | PortError::Throttled { .. }
            | PortError::NotFound { .. }
            | PortError::Limit { .. }
            | PortError::Conflict { .. }
    )
}

/// `keyrotor rotate secret`: the four steps in this process, with a new token, as Secrets
/// Manager would run them through the hook. One run per secret at a time (lease).
pub async fn rotate_locally(
    ports: &HookPorts<'_>,
    policy: &Policy,
    secret_id: &str,
    region: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<Vec<StepResult>, StepError> {
    let secret = ports.secrets.describe(secret_id).await?.ok_or_else(|| {
        StepError::InvalidInput(format!("secret {secret_id:?} does not exist in {region}"))
    })?;
    let run_id = new_run_id(wall.now());
    let token = uuid::Uuid::new_v4().to_string();
    let work = async {
        let mut done = Vec::new();
        for step in ProtocolStep::ALL {
            let request = Request {
                step,
                secret_id: secret.arn.clone(),
                token: token.clone(),
            };
            done.push(run_step(ports, policy, &request, Caller::Local, region, now, wall).await?);
        }
        Ok(done)
    };
    super::with_lease(
        ports.state,
        &format!("secret#{}", secret.arn),
        &format!("secret {}", secret.name),
        &run_id,
        wall,
        work,
    )
    .await
}

#[cfg(test)]
mod tests {
    //! Behaviour the emulator cannot show, with injected responses: IAM's eventual
    //! consistency (a new key rejected for a while), and errors that must stop a step.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;

    use super::*;
    use crate::domain::credential_report::ReportRow;
    use crate::domain::model::{AccessKey, ApiKey, LastUsed, Tags};
    use crate::ports::{ApiKeyInfo, PortResult, SystemClock};
    use crate::steps::memory::{Me, MemAudit, MemState};

    const TOKEN: &str = "11111111-2222-3333-4444-555555555555";
    const NEW_KEY: &str = "AKIAAAAAAAAAAAAANEW1";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    /// A secret with a pending IAM key, and a tester that rejects the key `rejections`
    /// times before accepting it (or always, with `usize::MAX`).
    struct World {
        rejections: usize,
        tries: Mutex<usize>,
    }

    #[async_trait]
    impl SecretVersions for World {
        async fn describe(&self, _secret: &str) -> PortResult<Option<SecretDescription>> {
            Ok(Some(SecretDescription {
                arn: SECRET_ARN.into(),
                name: "svc/iam".into(),
                rotation_enabled: true,
                tags: Tags::from([(TAG_TYPE.to_owned(), TYPE_IAM.to_owned())]),
                versions: BTreeMap::from([
                    ("v0".to_owned(), vec!["AWSCURRENT".to_owned()]),
                    (TOKEN.to_owned(), vec!["AWSPENDING".to_owned()]),
                ]),
            }))
        }
        async fn rotate_now(&self, _secret: &str) -> PortResult<String> {
            unreachable!()
        }
        async fn stages(&self, _s: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>> {
            unreachable!()
        }
        async fn value(
            &self,
            _secret: &str,
            _version: Option<&str>,
            _stage: Option<&str>,
        ) -> PortResult<Option<SecretValue>> {
            Ok(Some(SecretValue::new(
                serde_json::json!({"userName": "svc", "accessKeyId": NEW_KEY, "secretAccessKey": "s3cr3t"})
                    .to_string(),
            )))
        }
        async fn put_pending(&self, _s: &str, _t: &str, _v: &SecretValue) -> PortResult<()> {
            unreachable!()
        }
        async fn move_stage(
            &self,
            _s: &str,
            _stage: &str,
            _to: Option<&str>,
            _from: Option<&str>,
        ) -> PortResult<()> {
            unreachable!()
        }
    }

    #[async_trait]
    impl KeyTester for World {
        async fn works(&self, key: &AccessKeyId, secret: &SecretValue) -> PortResult<bool> {
            assert_eq!((key.as_str(), secret.expose()), (NEW_KEY, "s3cr3t"));
            let mut tries = self.tries.lock().unwrap();
            *tries += 1;
            Ok(*tries > self.rejections)
        }
    }

    const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc/iam";

    /// IAM as the binding check reads it: user `svc` names the secret and owns the key.
    #[async_trait]
    impl IamInventory for World {
        async fn credential_report(
            &self,
            _now: DateTime<Utc>,
            _max_age_hours: u32,
        ) -> PortResult<Vec<ReportRow>> {
            unreachable!()
        }
        async fn access_keys(&self, _u: &str) -> PortResult<Vec<AccessKey>> {
            unreachable!()
        }
        async fn user_tags(&self, _u: &str) -> PortResult<Tags> {
            unreachable!()
        }
        async fn key_last_used(&self, _k: &AccessKeyId) -> PortResult<Option<LastUsed>> {
            unreachable!()
        }
        async fn key_owner(&self, _k: &AccessKeyId) -> PortResult<Option<String>> {
            Ok(Some("svc".into()))
        }
        async fn user(&self, name: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
            Ok(Some(crate::domain::model::IamUser {
                name: name.to_owned(),
                arn: format!("arn:aws:iam::123456789012:user/{name}"),
                path: "/".into(),
                created: now(),
                tags: Tags::from([(
                    crate::domain::model::TAG_SECRET.to_owned(),
                    SECRET_ARN.to_owned(),
                )]),
                keys: Vec::new(),
                is_root: false,
            }))
        }
    }

    /// Ports testSecret never reaches.
    struct Unused;
    #[async_trait]
    impl IamInventory for Unused {
        async fn credential_report(
            &self,
            _n: DateTime<Utc>,
            _h: u32,
        ) -> PortResult<Vec<ReportRow>> {
            unreachable!()
        }
        async fn access_keys(&self, _u: &str) -> PortResult<Vec<AccessKey>> {
            unreachable!()
        }
        async fn user_tags(&self, _u: &str) -> PortResult<Tags> {
            unreachable!()
        }
        async fn key_last_used(&self, _k: &AccessKeyId) -> PortResult<Option<LastUsed>> {
            unreachable!()
        }
        async fn key_owner(&self, _k: &AccessKeyId) -> PortResult<Option<String>> {
            unreachable!()
        }
        async fn user(&self, _u: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
            unreachable!()
        }
    }
    #[async_trait]
    impl IamKeyAdmin for Unused {
        async fn create_key(&self, _u: &str) -> PortResult<(AccessKeyId, SecretValue)> {
            unreachable!()
        }
        async fn set_key_active(&self, _u: &str, _k: &AccessKeyId, _a: bool) -> PortResult<()> {
            unreachable!()
        }
        async fn delete_key(&self, _u: &str, _k: &AccessKeyId) -> PortResult<()> {
            unreachable!()
        }
    }
    #[async_trait]
    impl ApiKeyInventory for Unused {
        async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
            unreachable!()
        }
    }
    #[async_trait]
    impl ApiKeyAdmin for Unused {
        async fn key(&self, _id: &str) -> PortResult<Option<ApiKeyInfo>> {
            unreachable!()
        }
        async fn keys_named(&self, _p: &str) -> PortResult<Vec<ApiKeyInfo>> {
            unreachable!()
        }
        async fn create_key(
            &self,
            _n: &str,
            _d: Option<&str>,
            _t: &Tags,
            _v: &SecretValue,
        ) -> PortResult<String> {
            unreachable!()
        }
        async fn key_value(&self, _id: &str) -> PortResult<SecretValue> {
            unreachable!()
        }
        async fn plan_keys(&self, _p: &str) -> PortResult<Vec<String>> {
            unreachable!()
        }
        async fn key_plans(&self, _id: &str) -> PortResult<Vec<String>> {
            unreachable!()
        }
        async fn attach(&self, _p: &str, _k: &str) -> PortResult<()> {
            unreachable!()
        }
        async fn detach(&self, _p: &str, _k: &str) -> PortResult<()> {
            unreachable!()
        }
        async fn set_enabled(&self, _id: &str, _e: bool) -> PortResult<()> {
            unreachable!()
        }
        async fn delete_key(&self, _id: &str) -> PortResult<()> {
            unreachable!()
        }
    }

    async fn test_secret(world: &World, audit: &MemAudit) -> Result<StepResult, StepError> {
        run(world, audit, ProtocolStep::TestSecret, &Policy::default()).await
    }

    async fn run(
        world: &World,
        audit: &MemAudit,
        step: ProtocolStep,
        policy: &Policy,
    ) -> Result<StepResult, StepError> {
        let state = MemState::default();
        let ports = HookPorts {
            identity: &Me,
            secrets: world,
            iam: world,
            iam_admin: &Unused,
            tester: world,
            api_keys: &Unused,
            api_admin: &Unused,
            state: &state,
            audit,
            notifier: &crate::aws::sns::NoNotifier,
        };
        let request = Request {
            step,
            secret_id: "svc/iam".into(),
            token: TOKEN.into(),
        };
        run_step(
            &ports,
            policy,
            &request,
            Caller::SecretsManager,
            "us-east-1",
            now(),
            &SystemClock::Fixed(now()),
        )
        .await
    }

    // Virtual time: the backoff sleeps are skipped, their schedule is what is tested.
    #[tokio::test(start_paused = true)]
    async fn a_new_key_rejected_for_a_while_is_retried_with_backoff_until_it_works() {
        let world = World {
            rejections: 3,
            tries: Mutex::new(0),
        };
        let started = tokio::time::Instant::now();
        let done = test_secret(&world, &MemAudit::default()).await.unwrap();
        assert_eq!(done.status, "done");
        assert!(done.detail.contains("attempt 4"), "{}", done.detail);
        // Waited 1 + 2 + 4 seconds between the four attempts.
        assert_eq!(started.elapsed().as_secs(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_that_never_works_fails_the_step_as_retryable_and_audited() {
        let world = World {
            rejections: usize::MAX,
            tries: Mutex::new(0),
        };
        let audit = MemAudit::default();
        let err = test_secret(&world, &audit).await.unwrap_err();
        assert_eq!(err.name(), "KeyRotor.Retryable", "{err}");
        assert!(err.to_string().contains("eventual consistency"), "{err}");
        assert_eq!(*world.tries.lock().unwrap(), IAM_TEST_BACKOFF.len());
        let records = audit.resource_records();
        assert_eq!(records.len(), 2, "intent and failed outcome");
        assert_eq!(records[1].outcome, Some(Outcome::Failed));
        assert!(records.iter().all(|r| !r.detail.contains("s3cr3t")));
    }

    #[tokio::test]
    async fn in_plan_mode_the_hook_changes_nothing() {
        let world = World {
            rejections: 0,
            tries: Mutex::new(0),
        };
        let audit = MemAudit::default();
        for step in [ProtocolStep::CreateSecret, ProtocolStep::FinishSecret] {
            let err = run(&world, &audit, step, &Policy::default())
                .await
                .unwrap_err();
            assert_eq!(err.name(), "KeyRotor.Blocked", "{err}");
            assert!(err.to_string().contains("mode"), "{err}");
        }
        assert!(audit.records.lock().unwrap().is_empty());
    }

    #[test]
    fn only_keys_an_attempt_made_count_as_its_leftovers() {
        let t = now();
        let key = |id: &str, created| AccessKey {
            id: AccessKeyId::parse(id).unwrap(),
            status: crate::domain::model::KeyStatus::Active,
            created,
            last_used: None,
        };
        let mut attempt = Attempt {
            before: vec!["AKIAAAAAAAAAAAAAOLD1".into()],
            times: vec![t],
            created: Vec::new(),
        };
        // The answer of the attempt at `t` was lost: a new key created at `t` is its own,
        // one created an hour later (by a person) is not, and a key from before never is.
        assert!(attempt.created(&key(
            "AKIAAAAAAAAAAAAANEW1",
            t + chrono::Duration::seconds(2)
        )));
        assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAPER1", t + chrono::Duration::hours(1))));
        assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAOLD1", t)));
        // Once CreateAccessKey's answer is noted, only the key it named is the attempt's:
        // a person's key made in the same second is not.
        attempt.times.clear();
        attempt.created.push("AKIAAAAAAAAAAAAANEW1".into());
        assert!(attempt.created(&key("AKIAAAAAAAAAAAAANEW1", t)));
        assert!(!attempt.created(&key("AKIAAAAAAAAAAAAAPER1", t)));
        let back = Attempt::from_attrs(&attempt.attrs()).unwrap();
        assert_eq!(back, attempt);
    }

    #[test]
    fn events_with_missing_or_wrong_fields_name_the_field() {
        for (event, field) in [
            (
                serde_json::json!({"SecretId": "s", "ClientRequestToken": "t"}),
                "Step",
            ),
            (
                serde_json::json!({"Step": "createSecret", "ClientRequestToken": "t"}),
                "SecretId",
            ),
            (
                serde_json::json!({"Step": "createSecret", "SecretId": "", "ClientRequestToken": "t"}),
                "SecretId",
            ),
            (
                serde_json::json!({"Step": "create", "SecretId": "s", "ClientRequestToken": "t"}),
                "create",
            ),
            (serde_json::json!("truncated"), "expected"),
        ] {
            let err = Request::from_event(event.clone()).unwrap_err();
            assert_eq!(err.name(), "KeyRotor.InvalidInput");
            assert!(err.to_string().contains(field), "{event}: {err}");
        }
    }
}
