//! The respond jobs, one state each of the respond state machine
//! (`state-machine/respond.asl.json`): decode the event, contain one exposed key,
//! investigate it, notify. Containment is its own invocation, so nothing slow (CloudTrail
//! in every region, notifications) stands before it, and a failed investigation never
//! undoes it.

use chrono::{DateTime, Utc};

use super::output::{DecodedEvent, RespondedOutput};
use super::{Context, Counted, to_value};
use crate::domain::respond::event::{self, EventError};
use crate::domain::respond::{Exposure, Target};
use crate::ports::SystemClock;
use crate::steps::StepError;
use crate::steps::outcome::JobOutcome;
use crate::steps::respond::{self, Request, Response};
use crate::steps::status::Status;
use crate::wiring::Wiring;

/// `keyrotor-respond-decode`: the exposures `event` reports. An event that reports none
/// (malformed, no usable key id, not an exposure) is recorded as "could not act" and fails
/// the invocation with `KeyRotor.InvalidInput`: nothing is changed.
pub(super) async fn decode(
    ctx: &Context,
    wiring: &Wiring,
    event: &str,
    now: DateTime<Utc>,
) -> Counted {
    let error = match event::decode(event) {
        Ok(exposures) if !exposures.is_empty() => {
            for e in &exposures {
                tracing::info!(
                    event_id = %e.event_id,
                    event_type = %e.event_type,
                    target = %target(e),
                    "exposure reported"
                );
            }
            let out = DecodedEvent {
                exposures,
                region: ctx.region.clone(),
            };
            return Ok((to_value(&out)?, None));
        }
        Ok(_) => EventError {
            event_id: None,
            event_type: None,
            message: "the event names no access key or user to respond to".into(),
        },
        Err(e) => e,
    };
    let message =
        respond::could_not_act(&wiring.respond(), &error, now, &SystemClock::Real).await?;
    tracing::warn!(
        event_id = error.event_id.as_deref().unwrap_or("unidentified"),
        event_type = error.event_type.as_deref().unwrap_or("unknown"),
        "could not act on the event"
    );
    Err(StepError::InvalidInput(format!(
        "{} event {}: {message}; nothing was changed (recorded as could-not-act)",
        error.event_type.as_deref().unwrap_or("the"),
        error.event_id.as_deref().unwrap_or("(no id)"),
    )))
}

/// `keyrotor-respond-contain`: contains one exposed key of the function's own account. The
/// response is idempotent per key and event, so a retry, or the same event delivered twice,
/// changes nothing more. Never overrides an exemption: that takes a person.
#[tracing::instrument(skip_all, fields(event_id = %exposure.event_id, target = %target(&exposure)))]
pub(super) async fn contain(
    ctx: &Context,
    wiring: &Wiring,
    exposure: Exposure,
    region: Option<String>,
    now: DateTime<Utc>,
) -> Counted {
    if let Some(account) = exposure.account.as_deref() {
        let caller = wiring.identity().caller().await?;
        if account != caller.account.as_str() {
            return Err(StepError::InvalidInput(format!(
                "the event is about account {account}, and this keyrotor deployment runs in account {}; nothing was done: deploy keyrotor in account {account}, or run `keyrotor respond --event FILE` there",
                caller.account
            )));
        }
    }
    let request = Request {
        exposure,
        override_exemption: false,
        region: region.unwrap_or_else(|| ctx.region.clone()),
    };
    let response = respond::respond(
        &wiring.respond(),
        &ctx.policy,
        &request,
        now,
        &SystemClock::Real,
    )
    .await?;
    tracing::Span::current().record("run_id", response.run_id.as_str());
    tracing::info!(
        key = %response.key,
        status = response.status.as_str(),
        "responded"
    );
    let tally = response.tally();
    Ok((to_value(&response)?, Some(tally)))
}

/// `keyrotor-respond-investigate`: adds the key's CloudTrail activity to `response` — of a
/// key contained now or blocked (a person must decide, and needs the activity to); a no-op,
/// or a plan, passes through unchanged, as with `keyrotor respond`.
#[tracing::instrument(skip_all, fields(key = %response.key, run_id = %response.run_id))]
pub(super) async fn investigate(
    ctx: &Context,
    wiring: &Wiring,
    mut response: Response,
    now: DateTime<Utc>,
) -> Counted {
    if matches!(response.status, Status::Done | Status::Blocked) {
        respond::investigate(
            &wiring.respond(),
            &mut response,
            &ctx.region,
            now,
            &SystemClock::Real,
        )
        .await?;
    }
    Ok((to_value(&response)?, None))
}

/// `keyrotor-respond-notify`: sends the "Credential Exposed" notification of a contained
/// key (a blocked response was told at once, a no-op before). Returns the response's line.
#[tracing::instrument(skip_all, fields(key = %response.key, run_id = %response.run_id))]
pub(super) async fn notify(wiring: &Wiring, response: &Response) -> Counted {
    let notified = respond::notify(wiring.notifier(), response).await;
    let out = RespondedOutput {
        key: response.key.clone(),
        user: response.user.clone(),
        run_id: response.run_id.clone(),
        status: response.status,
        replacement: response.replacement.as_ref().and_then(|r| r.key.clone()),
        notified,
        failed: JobOutcome::failed(response) > 0,
    };
    Ok((to_value(&out)?, None))
}

/// What an exposure names, for logs.
fn target(exposure: &Exposure) -> String {
    match &exposure.target {
        Target::Key(key) => key.to_string(),
        Target::User(user) => format!("user {user}"),
    }
}
