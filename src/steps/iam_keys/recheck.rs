//! The guards of safety invariant 8 for IAM keys: right before a destructive step, read
//! again what it depends on (the user's scope, the key's last use, the key itself, the
//! secret that superseded it), and turn the action into what the facts now call for. A
//! guard that cannot read blocks the step.

use chrono::Duration;

use super::Run;
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::lifecycle::KeyRecord;
use crate::domain::model::{AccessKeyId, KeyStatus};
use crate::ports::PortError;
use crate::steps::guard::{self, Removal};

impl Run<'_> {
    /// Reads again, right before a destructive step, what it depends on, and turns the
    /// action into what the facts now call for: a key used since the warning is reset, a
    /// superseded key still in use or rolled back to is kept, a key found active again is
    /// not deleted, a key missing from the credential report is confirmed gone with IAM.
    /// `Err(why)` when the step must not go on (a guard refused, or could not read).
    pub(super) async fn recheck(
        &self,
        action: &mut Action,
        key: &AccessKeyId,
        user: &str,
        record: Option<&KeyRecord>,
    ) -> Result<(), String> {
        let cannot = |what: &str, e: PortError| {
            format!("cannot {what} right before acting, so nothing was changed: {e}")
        };
        // Scope as IAM has the user now: an exemption, break-glass tag or path change made
        // since discovery stops a deactivation or deletion here.
        if matches!(action.action, ActionType::Deactivate | ActionType::Delete) {
            // A user deleted meanwhile has no keys left to protect: the step finds the key gone.
            if let Some(found) = self
                .ports
                .iam
                .user(user)
                .await
                .map_err(|e| cannot("read the user", e))?
                && let Some(e) =
                    crate::domain::scope::iam_user_exclusion(&found, self.now, self.policy)
            {
                return Err(format!(
                    "IAM user {user} is out of keyrotor's scope now ({}): {}; nothing was changed",
                    e.code(),
                    e.detail()
                ));
            }
        }
        match (action.action, action.reason) {
            (ActionType::Deactivate, _) => {
                let used = self
                    .ports
                    .iam
                    .key_last_used(key)
                    .await
                    .map_err(|e| cannot("read the key's last use", e))?;
                if let (Some(since), Some(used)) = (record.map(|r| r.since), used) {
                    let service = used.service.as_deref().unwrap_or("service unknown");
                    if action.reason == Reason::StillUnused && used.at > since {
                        action.action = ActionType::Reset;
                        action.reason = Reason::UsedAfterWarning;
                        action.detail = format!(
                            "warned on {}, then used on {} ({service}): in use, so back to active; no deactivation",
                            since.format("%Y-%m-%d"),
                            used.at.format("%Y-%m-%d"),
                        );
                        return Ok(());
                    }
                    if action.reason == Reason::Superseded
                        && used.at > action.due_at - Duration::days(1)
                    {
                        action.action = ActionType::Rotate;
                        action.reason = Reason::SupersededInUse;
                        action.detail = format!(
                            "replaced by a Secrets Manager rotation on {}, but still used on {} ({service}): a client has not picked up the new secret; not deactivated, owner escalated",
                            since.format("%Y-%m-%d"),
                            used.at.format("%Y-%m-%d"),
                        );
                        return Ok(());
                    }
                }
                if action.reason == Reason::Superseded {
                    self.recheck_secret(action, key, user, record).await?;
                }
                Ok(())
            }
            (ActionType::Delete, _) => {
                match guard::removable(self.ports.iam, user, key, record, self.now, self.policy)
                    .await
                    .map_err(|e| cannot("read the key", e))?
                {
                    // An active key is never deleted by the lifecycle, even one the removal
                    // guard would allow (never used, older than the lag): it was reactivated.
                    Removal::Allowed(found) | Removal::Refused(found, _)
                        if found.status == KeyStatus::Active =>
                    {
                        action.action = ActionType::Reset;
                        action.reason = Reason::ReactivatedOutside;
                        action.detail = "found active again right before deletion (reactivated outside keyrotor); back to active, not deleted".into();
                        Ok(())
                    }
                    Removal::Allowed(_) | Removal::Gone => Ok(()),
                    Removal::Refused(_, why) => Err(format!("not deleted: {why}")),
                }
            }
            (ActionType::Reconcile, Reason::KeyGone) => {
                // Absence from a credential report hours old proves nothing: a user
                // created or renamed since is not in it. Ask IAM for the key itself.
                match self
                    .ports
                    .iam
                    .key_owner(key)
                    .await
                    .map_err(|e| cannot("confirm the key is gone", e))?
                {
                    None => Ok(()),
                    Some(owner) => Err(format!(
                        "key {key} still exists (user {owner}{}); it is missing only from the credential report, which can be hours old; its lifecycle goes on once the report shows it",
                        if owner == user {
                            String::new()
                        } else {
                            format!(", was {user}")
                        }
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    /// A superseded key is deactivated only while its secret still hands out another key:
    /// an owner who moved AWSCURRENT back to it (the rotation notice tells them how) keeps
    /// it. No secret on the record, or a secret that cannot be read: blocked.
    async fn recheck_secret(
        &self,
        action: &mut Action,
        key: &AccessKeyId,
        owner: &str,
        record: Option<&KeyRecord>,
    ) -> Result<(), String> {
        let Some(secret) = record.and_then(|r| r.secret.as_deref()) else {
            return Err(format!(
                "the lifecycle record of {key} does not name the secret that superseded it, so keyrotor cannot check that AWSCURRENT was not moved back to it; deactivate it by hand once no client uses it, or run `keyrotor rotate secret` again"
            ));
        };
        let current = self
            .ports
            .secrets
            .value(secret, None, Some("AWSCURRENT"))
            .await
            .map_err(|e| format!("cannot read AWSCURRENT of secret {secret} right before deactivating {key}, so nothing was changed: {e}"))?
            .ok_or_else(|| format!("secret {secret} has no AWSCURRENT value; not deactivating {key} until it does"))?;
        // The record is state-table content: the secret it names must hold this user's key
        // and the user must name that secret (both ways, read now), or nothing is done.
        let user = record.map(|r| r.user.as_str()).unwrap_or_default();
        if user != owner {
            return Err(format!(
                "the lifecycle record of {key} names user {user}, but IAM shows the key belongs to {owner}; the record does not match AWS, so nothing was changed"
            ));
        }
        let held = serde_json::from_str::<serde_json::Value>(current.expose())
            .ok()
            .and_then(|v| {
                let field = |f: &str| v.get(f).and_then(|k| k.as_str()).map(str::to_owned);
                Some((field("userName")?, field("accessKeyId")?))
            });
        let Some((holder, held_key)) = held else {
            return Err(format!(
                "the AWSCURRENT value of secret {secret} is not {{\"userName\", \"accessKeyId\", ...}}, so keyrotor cannot tell whether it was moved back to {key}; not deactivating it until the secret is fixed"
            ));
        };
        if holder != user {
            return Err(format!(
                "secret {secret} holds a key of {holder}, but {key} belongs to {user}; the lifecycle record does not match the secret, so nothing was changed"
            ));
        }
        match guard::user_bound(self.ports.iam, user, secret).await {
            Ok(Ok(_)) => {}
            Ok(Err(why)) => return Err(format!("{why}; not deactivating {key}")),
            Err(e) => {
                return Err(format!(
                    "cannot read IAM user {user} right before deactivating {key}, so nothing was changed: {e}"
                ));
            }
        }
        if held_key == key.as_str() {
            action.action = ActionType::Reset;
            action.reason = Reason::RolledBack;
            action.detail = format!(
                "superseded by a rotation of secret {secret}, but AWSCURRENT names {key} again (moved back): in use, back to active; not deactivated"
            );
        }
        Ok(())
    }
}
