//! Planning for ACM certificates: a notification at each step of the escalation ladder,
//! with the diagnosis of why ACM will not renew the certificate by itself.

use super::Planner;
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::cert::{self, LadderStep};
use crate::domain::model::{Certificate, Kind};
use crate::domain::scope;

impl Planner<'_> {
    /// One certificate: its ladder step, if one is reached.
    pub(super) fn certificate(&mut self, cert: &Certificate) {
        if let Some(e) = scope::exemption(&cert.tags, self.now, self.policy) {
            return self.exclude(Kind::Certs, &cert.arn, Some(&cert.domain), &cert.region, &e);
        }
        self.exemption_notice(
            Kind::Certs,
            &cert.arn,
            Some(&cert.domain),
            &cert.region,
            &cert.tags,
        );
        let a = cert::assess(cert, self.now, self.policy);
        let (Some(not_after), Some(days_left)) = (a.not_after, a.days_left) else {
            let detail = format!("{}; {}", a.explanation, a.action);
            return self.skip(
                Kind::Certs,
                &cert.arn,
                Some(&cert.domain),
                &cert.region,
                "no-expiry-date",
                detail,
            );
        };
        let Some(step) = a.step else {
            return;
        };
        let (reason, headline) = match step {
            LadderStep::Expired => (
                Reason::Expired,
                format!(
                    "expired {} days ago on {}",
                    -days_left,
                    not_after.format("%Y-%m-%d")
                ),
            ),
            LadderStep::Days(d) => (
                Reason::Expiring,
                format!(
                    "expires in {days_left} days on {} (ladder step {d}d)",
                    not_after.format("%Y-%m-%d")
                ),
            ),
        };
        self.actions.push(Action {
            kind: Kind::Certs,
            resource: cert.arn.clone(),
            principal: Some(cert.domain.clone()),
            account: self.inv.account.clone(),
            region: cert.region.clone(),
            action: ActionType::Notify,
            reason,
            detail: format!("{headline}; {}; action: {}", a.explanation, a.action),
            due_at: cert::step_time(not_after, step),
            owner: a.owner,
            blocked: None,
        });
    }
}
