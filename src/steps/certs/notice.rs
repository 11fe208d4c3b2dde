//! What the owner of a certificate is told at each ladder step (expiring in N days, or
//! expired): why it will not renew by itself and what to do.

use crate::domain::cert::{CertAssessment, LadderStep};
use crate::domain::policy::Policy;
use crate::ports::Notification;

/// The message for the owner of a certificate at a ladder step.
pub(super) fn notification(a: &CertAssessment, step: LadderStep, policy: &Policy) -> Notification {
    let when = a
        .not_after
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let headline = match step {
        LadderStep::Expired => format!("EXPIRED: certificate {} expired on {when}", a.domain),
        LadderStep::Days(_) => format!(
            "Certificate {} expires in {} days ({when})",
            a.domain,
            a.days_left.unwrap_or_default()
        ),
    };
    let owner = a
        .owner
        .clone()
        .or_else(|| policy.notifications.default_contact.clone());
    Notification {
        event: if step == LadderStep::Expired {
            "certificate-expired".into()
        } else {
            "certificate-expiring".into()
        },
        resource: a.arn.clone(),
        owner: owner.clone(),
        subject: headline.clone(),
        message: format!(
            "{headline}.\nCertificate: {}\nRegion: {}\nLadder step: {step}\nWhy: {}\nWhat to do: {}\nOwner: {}\nTo postpone these notifications, tag the certificate keyrotor:exempt = YYYY-MM-DD.",
            a.arn,
            a.region,
            a.explanation,
            a.action,
            owner
                .as_deref()
                .unwrap_or("unknown (tag the certificate with owner)")
        ),
        at: a.not_after,
        undo: Some(
            "renew or re-import the certificate; to postpone these notifications, tag it keyrotor:exempt = YYYY-MM-DD".into(),
        ),
    }
}
