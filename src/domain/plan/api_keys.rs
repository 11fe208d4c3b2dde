//! Planning for API Gateway API keys: a rotation in progress goes on to its end (retire
//! and delete stop only for an exemption or a selector change made since), a managed key
//! past its maximum age is rotated when its secret exists, and every key left alone says why.

use super::{Planner, days, whole_days};
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::api_rotation::{RotationStage, RotationStep};
use crate::domain::model::{ApiKey, Kind, TAG_OWNER};
use crate::domain::scope;

impl Planner<'_> {
    /// One API key of the inventory's region.
    pub(super) fn api_key(&mut self, key: &ApiKey) {
        let region = self.inv.region.clone();
        // A rotation in progress goes on whatever the key's tags or state now: it must not
        // stop halfway, with two keys and a pending secret.
        if let Some(rotation) = self.rotations.get(key.id.as_str()).copied()
            && rotation.stage != RotationStage::Deleted
        {
            let Some((step, due)) = rotation.next(self.policy) else {
                return;
            };
            if due > self.now {
                return;
            }
            // Past promotion, stopping is safe: an exemption or a selector change made
            // since the rotation started keeps the old key (retire and delete wait).
            if matches!(step, RotationStep::Retire | RotationStep::Delete) {
                if let Some(e) =
                    scope::api_key_exclusion(&key.name, &key.tags, self.now, self.policy)
                {
                    return self.exclude(Kind::ApiKeys, &key.id, Some(&key.name), &region, &e);
                }
                self.exemption_notice(Kind::ApiKeys, &key.id, Some(&key.name), &region, &key.tags);
            }
            let (action, reason) = match step {
                RotationStep::Retire => (ActionType::Retire, Reason::GraceOver),
                RotationStep::Delete => (ActionType::Delete, Reason::RecoveryOver),
                _ => (ActionType::Rotate, Reason::RotationInProgress),
            };
            let detail = match step {
                RotationStep::Retire => format!(
                    "rotated to {} on {}; grace over: detach from usage plans [{}] and disable",
                    rotation.new_key.as_deref().unwrap_or("?"),
                    rotation
                        .promoted_at
                        .unwrap_or(rotation.since)
                        .format("%Y-%m-%d"),
                    rotation.plans.join(", ")
                ),
                RotationStep::Delete => format!(
                    "retired on {}; recovery window over: delete",
                    rotation
                        .retired_at
                        .unwrap_or(rotation.since)
                        .format("%Y-%m-%d")
                ),
                _ => format!(
                    "rotation ({}) stopped at {}; continue with {}",
                    rotation.trigger.as_str(),
                    rotation.stage.as_str(),
                    step.as_str()
                ),
            };
            self.actions.push(Action {
                kind: Kind::ApiKeys,
                resource: key.id.clone(),
                principal: Some(key.name.clone()),
                account: self.inv.account.clone(),
                region,
                action,
                reason,
                detail,
                due_at: due,
                owner: key.tags.get(TAG_OWNER).cloned(),
                blocked: None,
            });
            return;
        }
        if let Some(e) = scope::api_key_exclusion(&key.name, &key.tags, self.now, self.policy) {
            return self.exclude(Kind::ApiKeys, &key.id, Some(&key.name), &region, &e);
        }
        self.exemption_notice(Kind::ApiKeys, &key.id, Some(&key.name), &region, &key.tags);
        let age = whole_days(self.now - key.created);
        let Some(secret) = key.bound_secret() else {
            let detail = format!(
                "not managed (no keyrotor:secret tag): {age} days old, last changed {}, in usage plans [{}]; tag it keyrotor:secret = <secret name> to rotate it",
                key.last_updated.unwrap_or(key.created).format("%Y-%m-%d"),
                key.usage_plans.join(", ")
            );
            return self.skip(
                Kind::ApiKeys,
                &key.id,
                Some(&key.name),
                &region,
                "unmanaged",
                detail,
            );
        };
        if !key.enabled {
            let detail = "disabled: keyrotor rotates enabled keys only".to_owned();
            return self.skip(
                Kind::ApiKeys,
                &key.id,
                Some(&key.name),
                &region,
                "disabled",
                detail,
            );
        }
        let due = key.created + days(self.policy.api_keys.max_age_days);
        if self.now < due {
            return;
        }
        if !self.secrets.contains(secret) {
            let detail = format!(
                "due for rotation ({age} days old) but its secret {secret:?} (tag keyrotor:secret) does not exist in {region}; create it or fix the tag"
            );
            return self.skip(
                Kind::ApiKeys,
                &key.id,
                Some(&key.name),
                &region,
                "secret-missing",
                detail,
            );
        }
        self.actions.push(Action {
            kind: Kind::ApiKeys,
            resource: key.id.clone(),
            principal: Some(key.name.clone()),
            account: self.inv.account.clone(),
            region,
            action: ActionType::Rotate,
            reason: Reason::MaxAgeExceeded,
            detail: format!(
                "{age} days old (limit {}); create a replacement in {} usage plan(s), publish it to {secret}, keep the old key {} days, then retire it",
                self.policy.api_keys.max_age_days,
                key.usage_plans.len(),
                self.policy.api_keys.grace_days
            ),
            due_at: due,
            owner: key.tags.get(TAG_OWNER).cloned(),
            blocked: None,
        });
    }
}
