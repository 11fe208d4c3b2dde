//! `keyrotor-record-failure`: audits and notifies a failed state, `{"what": ...,
//! "resource": ..., "error": {"Error", "Cause"}}` from a Catch, with the resource's
//! `"account"` when it is not the function's.

use chrono::{DateTime, Utc};

use super::input::Failure;
use super::output::RecordedFailure;
use super::{Context, Counted, to_value};
use crate::audit::AuditLog;
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::{AccountId, Kind};
use crate::metrics::Tally;
use crate::ports::{Clock, Notification, SystemClock};
use crate::steps::StepError;
use crate::wiring::Wiring;

/// Records `failure` (of a resource in `account`, or the function's own); `kind` names
/// the metrics' `Kind` as the state gave it.
pub(super) async fn run(
    ctx: &Context,
    wiring: &Wiring,
    failure: &Failure,
    account: Option<&AccountId>,
    kind: &str,
    now: DateTime<Utc>,
) -> Counted {
    let out = record(
        wiring,
        failure,
        account,
        &ctx.region,
        now,
        &SystemClock::Real,
    )
    .await?;
    let mut tally = Tally::new(kind);
    tally.count(if out.blocked { "blocked" } else { "failed" });
    Ok((to_value(&out)?, Some(tally)))
}

#[tracing::instrument(skip_all, fields(resource = %failure.resource, error = %failure.error))]
async fn record(
    wiring: &Wiring,
    failure: &Failure,
    account: Option<&AccountId>,
    region: &str,
    now: DateTime<Utc>,
    clock: &dyn Clock,
) -> Result<RecordedFailure, StepError> {
    let caller = wiring.identity().caller().await?;
    let (name, cause, kind) = (&failure.error, &failure.cause, failure.kind);
    // Stopped before a change (a person must look) rather than failed.
    let blocked = name == "KeyRotor.Blocked" || name == "KeyRotor.InvalidInput";
    // The chain of the resource itself: API keys and certificates are regional.
    let region = match kind {
        Kind::ApiKeys | Kind::Certs => region.to_owned(),
        _ => "global".to_owned(),
    };
    let log = AuditLog::new(
        wiring.audit(),
        crate::steps::new_run_id(clock.now()),
        caller.arn.clone(),
    );
    let resource = failure.resource.clone();
    log.append(
        &Entry {
            resource: ResourceRef {
                kind,
                // The failed resource's account: a member account's, when the state names it.
                account: account.map_or_else(|| caller.account.to_string(), |a| a.to_string()),
                region,
                id: resource.clone(),
            },
            action: failure.what.clone(),
            phase: Phase::Decision,
            outcome: Some(if blocked {
                Outcome::Blocked
            } else {
                Outcome::Failed
            }),
            reason: name.clone(),
            detail: cause.clone(),
            before: None,
            after: None,
            dry_run: false,
            policy_time: now,
        },
        clock.now(),
    )
    .await?;
    log.anchor(clock.now()).await?;
    let sent = wiring
        .notifier()
        .notify(&Notification {
            event: if blocked {
                "action-blocked".into()
            } else {
                "action-failed".into()
            },
            resource: resource.clone(),
            owner: None,
            subject: format!(
                "keyrotor: {} of {resource} {} ({name})",
                failure.what,
                if blocked { "was blocked" } else { "failed" }
            )
                .chars()
                .take(100)
                .collect(),
            message: format!(
                "{} of {resource} stopped with {name}: {cause}\nNothing further is done for it until a person looks; see `keyrotor audit list --resource {resource}`.",
                failure.what
            ),
            at: Some(now),
            undo: Some(
                "nothing was changed by the stopped step; fix the cause, then run the sweep or `keyrotor rotate` again".into(),
            ),
        })
        .await;
    Ok(RecordedFailure {
        recorded: true,
        resource,
        error: name.clone(),
        blocked,
        notified: sent.is_ok(),
    })
}
