//! What people are told about a response: "Credential Exposed" once a key is contained and
//! investigated, an urgent "Action Blocked" when keyrotor may not act on its own.

use super::Response;
use crate::domain::model::{AccessKeyId, IamUser};
use crate::ports::{Notification, Notifier, notify_or_log};
use crate::steps::status::Status;

/// Sends the "Credential Exposed" notification of a response that contained a key (not
/// of a no-op, a plan or a blocked response: those were told, or need not be, already).
/// Delivery never fails the response: the change is done and audited.
pub async fn notify(notifier: &dyn Notifier, response: &Response) -> bool {
    if response.status != Status::Done {
        return false;
    }
    notify_or_log(notifier, &exposed(response)).await;
    true
}

/// The "Credential Exposed" message: what happened, what was done, the replacement, the
/// activity and how to undo it. Identifiers and counts only.
pub(super) fn exposed(r: &Response) -> Notification {
    let user = r.user.as_deref().unwrap_or("(unknown user)");
    let steps: Vec<String> = r
        .steps
        .iter()
        .map(|s| format!("- {}: {} — {}", s.step, s.status, s.detail))
        .collect();
    let failed_replacement = r
        .steps
        .iter()
        .find(|s| s.step == "replace" && s.status.is_failure());
    let replacement = match (&r.replacement, failed_replacement) {
        (_, Some(failed)) => format!(
            "The replacement could NOT be published: {}\n",
            failed.detail
        ),
        (Some(rep), None) => format!(
            "Replacement: {} in secret {}; clients reading the secret pick it up.\n",
            rep.key.as_deref().unwrap_or("(unknown key id)"),
            rep.secret
        ),
        (None, None) => {
            "No keyrotor secret holds this key: its clients need a new key from its owner.\n"
                .to_owned()
        }
    };
    let activity = match &r.activity {
        Some(a) => format!(
            "Activity (CloudTrail, last 90 days): {}\n{}\n",
            a.headline(),
            a.describe()
        ),
        None => "Activity: not investigated yet.\n".to_owned(),
    };
    let problems = if r.investigation_problems.is_empty() {
        String::new()
    } else {
        format!(
            "The investigation is incomplete: {}\n",
            r.investigation_problems.join("; ")
        )
    };
    Notification {
        event: "credential-exposed".into(),
        resource: r.key.clone(),
        owner: r.owner.clone(),
        subject: format!("Leaked IAM access key {} of {user} was contained", r.key),
        message: format!(
            "AWS reported access key {} of {user} in account {} as {} ({} {}).\nkeyrotor contained it:\n{}\n{replacement}{activity}{problems}Check the calls listed above first; the key is kept, inactive, as evidence.\nUndo: {}",
            r.key,
            r.account,
            r.reason.as_str(),
            r.event_type,
            r.event_id,
            steps.join("\n"),
            r.undo.join(" ; ")
        ),
        at: None,
        undo: Some(r.undo.join(" ; ")),
    }
}

/// The urgent "Action Blocked" message of a leaked key keyrotor may not change by itself.
pub(super) fn blocked(
    owner: Option<String>,
    user: &IamUser,
    key: &AccessKeyId,
    detail: &str,
) -> Notification {
    Notification {
        event: "action-blocked".into(),
        resource: key.to_string(),
        owner,
        subject: format!("URGENT: leaked key {key} of {} is NOT contained", user.name),
        message: format!("{detail}.\nThe key is still active: act now."),
        at: None,
        undo: None,
    }
}
