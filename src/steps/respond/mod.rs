//! `keyrotor respond`: the response to a leaked or compromised IAM access key — contain
//! first, break nothing that can be saved, then investigate, notify and record.
//!
//! Containment: when the key is bound to a keyrotor secret (the user's `keyrotor:secret`
//! names the secret, and the secret's AWSCURRENT names the user and this key — proven both
//! ways, as the rotation hook does), a replacement is created, published and verified
//! through the rotation hook's own path ([`crate::steps::secret_rotation::rotate_locally`]);
//! then the exposed key is deactivated — also when the replacement could not be made, since
//! a leaked key must not stay usable. It is never deleted (evidence; `keyrotor reactivate
//! iam-key` undoes the deactivation), and its lifecycle stage becomes `contained`, which no
//! sweep or rotation deletes. Sessions issued before the response are revoked by an inline
//! deny on `aws:TokenIssueTime`. AWS's quarantine policy is never touched. A break-glass,
//! exempt or out-of-scope user is not changed unless a person passes `--override-exemption`;
//! it gets an urgent "Action Blocked" notification instead. The root user is never changed.
//!
//! Every change is an audited mutation; every response is recorded per key in the state
//! table, so the same event again (or the CLI after the event) changes nothing more.
//!
//! Investigation ([`investigate`]) comes after containment and never delays it: CloudTrail's
//! event history of the key in every enabled region over the last 90 days. The owner is
//! told ([`notify`], "Credential Exposed") once the summary is known; a blocked response is
//! told at once.
//!
//! The folder, by concern: this module holds the ports, the request and the result;
//! `contain` the containment; `binding` finds the secret a key is bound to; `investigate`
//! reads the key's activity; `notice` words the notifications; `store` the response records.

mod binding;
mod contain;
mod investigate;
mod notice;
mod store;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StepError;
use super::secret_rotation::HookPorts;
use super::status::Status;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::Kind;
use crate::domain::plan::GLOBAL;
use crate::domain::respond::activity::ActivitySummary;
use crate::domain::respond::event::EventError;
use crate::domain::respond::{Exposure, Reason, Trigger};
use crate::ports::{ActivityLog, Clock, IamRoles};

pub use contain::respond;
pub use investigate::investigate;
pub use notice::notify;

/// The ports a response uses: the rotation hook's (identity, IAM, Secrets Manager, state,
/// audit, notifications), IAM's inline policies, and CloudTrail.
pub struct RespondPorts<'a> {
    pub hook: HookPorts<'a>,
    pub roles: &'a dyn IamRoles,
    pub activity: &'a dyn ActivityLog,
}

/// One response to run.
#[derive(Debug, Clone)]
pub struct Request {
    pub exposure: Exposure,
    /// A person decided to act on a break-glass, exempt or out-of-scope user.
    pub override_exemption: bool,
    /// The region of the secrets (the replacement is published there).
    pub region: String,
}

/// One step of a response and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResponseStep {
    /// One of [`STEP_NAMES`], in that order.
    pub step: &'static str,
    pub status: Status,
    pub detail: String,
}

/// The replacement published for a bound key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replacement {
    pub secret: String,
    /// The new key now in the secret's AWSCURRENT, when it could be read back.
    pub key: Option<String>,
}

/// What a response did. It is also the payload the respond state machine passes from
/// containment to the investigation and the notification (identifiers only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub run_id: String,
    pub account: String,
    pub key: String,
    pub user: Option<String>,
    /// Who is told (the user's `owner` tag, else the policy's default contact).
    pub owner: Option<String>,
    pub reason: Reason,
    pub trigger: Trigger,
    pub event_id: String,
    pub event_type: String,
    /// `done` (contained now), `no-op` (contained before), `blocked` (exempt: a person must
    /// decide), `dry-run` (mode = "plan").
    pub status: Status,
    pub detail: String,
    pub steps: Vec<ResponseStep>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<Replacement>,
    /// Sessions issued before this time are denied (`keyrotor-revoke-sessions`); the
    /// same cut-off on every retry of a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions_revoked_before: Option<DateTime<Utc>>,
    /// Commands that undo what was done.
    pub undo: Vec<String>,
    /// The key's activity (after containment), when investigated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivitySummary>,
    /// Why the investigation is incomplete (a region that could not be read, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub investigation_problems: Vec<String>,
}

/// The names a [`ResponseStep`] may have.
const STEP_NAMES: [&str; 6] = [
    "replace",
    "deactivate",
    "hold",
    "revoke-sessions",
    "other-keys",
    "record",
];

/// A [`ResponseStep`] as a payload holds it (a state machine passes a response between
/// its functions); its name must be one of [`STEP_NAMES`].
#[derive(Deserialize)]
struct StepPayload {
    step: String,
    status: Status,
    detail: String,
}

impl<'de> Deserialize<'de> for ResponseStep {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ResponseStep, D::Error> {
        let p = StepPayload::deserialize(d)?;
        let step = STEP_NAMES
            .iter()
            .find(|s| **s == p.step)
            .copied()
            .ok_or_else(|| format!("step {:?} is not one of {}", p.step, STEP_NAMES.join(", ")))
            .map_err(serde::de::Error::custom)?;
        Ok(ResponseStep {
            step,
            status: p.status,
            detail: p.detail,
        })
    }
}

impl crate::steps::outcome::JobOutcome for Response {
    fn kind(&self) -> Kind {
        Kind::IamKeys
    }
    fn failed(&self) -> usize {
        usize::from(self.status.is_failure())
            + self.steps.iter().filter(|s| s.status.is_failure()).count()
    }
    fn tally(&self) -> crate::metrics::Tally {
        let mut tally = crate::metrics::Tally::new(Kind::IamKeys.as_str());
        for s in &self.steps {
            tally.count(s.status.as_str());
        }
        tally
    }
    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }
}

/// Records that an event could not be acted on (it names no usable key, or is not an
/// exposure at all): an audited decision, so the trail shows the event arrived. Returns
/// the error's text for the caller to report.
pub async fn could_not_act(
    ports: &RespondPorts<'_>,
    error: &EventError,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<String, StepError> {
    refused(
        ports,
        error.event_id.as_deref(),
        error.event_type.as_deref(),
        &error.message,
        now,
        wall,
    )
    .await?;
    Ok(error.message.clone())
}

/// An exposure event that is not acted on, for `why`: a `could-not-act` decision on the
/// event's own audit chain (`event:<id>`), and an urgent "Action Blocked" notification.
pub(crate) async fn refused(
    ports: &RespondPorts<'_>,
    event_id: Option<&str>,
    event_type: Option<&str>,
    why: &str,
    now: DateTime<Utc>,
    wall: &dyn Clock,
) -> Result<(), StepError> {
    let caller = ports.hook.identity.caller().await?;
    let run_id = super::new_run_id(wall.now());
    let log = crate::audit::AuditLog::new(ports.hook.audit, run_id, caller.arn.clone());
    let id = format!("event:{}", event_id.unwrap_or("unidentified"));
    let detail = format!(
        "{} event could not be acted on: {why}",
        event_type.unwrap_or("an")
    );
    let entry = Entry {
        resource: ResourceRef {
            kind: Kind::IamKeys,
            account: caller.account.to_string(),
            region: GLOBAL.to_owned(),
            id: id.clone(),
        },
        action: "respond".into(),
        phase: Phase::Decision,
        outcome: Some(Outcome::Blocked),
        reason: "could-not-act".into(),
        detail: detail.clone(),
        before: None,
        after: None,
        dry_run: false,
        policy_time: now,
    };
    let appended = log.append(&entry, wall.now()).await.map(|_| ());
    log.finish(appended, wall.now()).await?;
    crate::ports::notify_or_log(
        ports.hook.notifier,
        &crate::ports::Notification {
            event: "action-blocked".into(),
            resource: id,
            owner: None,
            subject: "URGENT: a credential exposure event was not acted on".into(),
            message: format!(
                "{detail}.\nA leaked key may still be active: look at the event and respond by hand (keyrotor respond iam-key AKIA...)."
            ),
            at: None,
            undo: None,
        },
    )
    .await;
    Ok(())
}
