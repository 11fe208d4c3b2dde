//! One run's context and its decisions: the record of a rotation started (an audited
//! mutation of the state table), escalated, refused or, in plan mode, only planned.

use chrono::{DateTime, Utc};

use super::store::RotationStore;
use super::{Advanced, ApiKeyPorts};
use crate::audit::AuditLog;
use crate::domain::action::ActionType;
use crate::domain::api_rotation::{Rotation, RotationStage, Trigger};
use crate::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use crate::domain::model::{AccountId, ApiKey, Kind};
use crate::domain::policy::Policy;
use crate::ports::{Caller, Clock};
use crate::steps::StepError;
use crate::steps::audited::Mutation;
use crate::steps::status::Status;

/// One run's context.
pub(super) struct Run<'a> {
    pub(super) ports: &'a ApiKeyPorts<'a>,
    pub(super) policy: &'a Policy,
    pub(super) now: DateTime<Utc>,
    pub(super) wall: &'a dyn Clock,
    pub(super) log: AuditLog<'a>,
    pub(super) account: AccountId,
    pub(super) region: String,
}

impl<'a> Run<'a> {
    /// A run `run_id` by `caller` in `region`, deciding at `now` (policy time) and
    /// recording at the `wall` clock's times.
    pub(super) fn new(
        ports: &'a ApiKeyPorts<'a>,
        policy: &'a Policy,
        now: DateTime<Utc>,
        wall: &'a dyn Clock,
        run_id: &str,
        caller: &Caller,
        region: &str,
    ) -> Run<'a> {
        Run {
            ports,
            policy,
            now,
            wall,
            log: AuditLog::new(ports.audit, run_id.to_owned(), caller.arn.clone()),
            account: caller.account.clone(),
            region: region.to_owned(),
        }
    }

    /// The rotation records of this run's account and region.
    pub(super) fn store(&self) -> RotationStore<'_> {
        RotationStore::new(self.ports.state, &self.account, &self.region)
    }

    pub(super) fn entry(
        &self,
        key: &str,
        action: &str,
        reason: &str,
        (phase, outcome): (Phase, Option<Outcome>),
        detail: String,
        after: Option<String>,
    ) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::ApiKeys,
                account: self.account.to_string(),
                region: self.region.clone(),
                id: key.to_owned(),
            },
            action: action.to_owned(),
            phase,
            outcome,
            reason: reason.to_owned(),
            detail,
            before: None,
            after,
            dry_run: false,
            policy_time: self.now,
        }
    }

    pub(super) async fn append(&self, entry: Entry) -> Result<(), StepError> {
        self.log.append(&entry, self.wall.now()).await?;
        Ok(())
    }

    /// Records the decision to rotate (no AWS change yet).
    pub(super) async fn start(
        &self,
        key: &ApiKey,
        trigger: Trigger,
    ) -> Result<Rotation, StepError> {
        let named = key.bound_secret().unwrap_or_default();
        // Pinned by ARN from here on: a secret deleted and created again under the same
        // name (by anyone who may create secrets) is not the one this rotation writes to.
        let described = self.ports.secrets.describe(named).await?;
        let secret = described.as_ref().map_or(named, |d| d.arn.as_str());
        let token = uuid::Uuid::new_v4().simple().to_string();
        let rotation = Rotation::start(
            &key.id,
            &key.name,
            secret,
            &key.usage_plans,
            token,
            trigger,
            self.now,
        );
        let detail = format!(
            "rotation {} of {} ({}): replacement {} in usage plans [{}], published to {secret}",
            rotation.token,
            key.id,
            trigger.as_str(),
            rotation.replacement_name(),
            key.usage_plans.join(", ")
        );
        // The state write is the mutation: its intent comes first, and the intent has its
        // outcome even when the record could not be written.
        let mutation = Mutation::begin(
            &self.log,
            self.wall,
            self.entry(
                &key.id,
                "start",
                trigger.as_str(),
                (Phase::Intent, None),
                detail,
                None,
            ),
        )
        .await?;
        match self.store().start(rotation, None).await {
            Err(e) => {
                mutation.failed(&e).await?;
                Err(e.into())
            }
            Ok(None) => {
                mutation
                    .end(
                        Outcome::Skipped,
                        "another run started a rotation of this key first",
                        None,
                    )
                    .await?;
                Err(StepError::InProgress(format!(
                    "in progress: another run started a rotation of API key {} first",
                    key.id
                )))
            }
            Ok(Some(started)) => {
                // The outcome repeats what the intent said would be done.
                let detail = mutation.intent().detail.clone();
                mutation
                    .end(
                        Outcome::Succeeded,
                        detail,
                        Some(Some(RotationStage::Started.as_str().to_owned())),
                    )
                    .await?;
                Ok(started)
            }
        }
    }

    /// A key reported leaked while its rotation is under way: the rotation goes on, but the
    /// old key is retired as soon as the replacement is promoted (no grace period).
    pub(super) async fn escalate_to_compromised(
        &self,
        r: &Rotation,
    ) -> Result<Rotation, StepError> {
        let detail = format!(
            "reported compromised during rotation {} ({}): the old key is retired as soon as the replacement is promoted",
            r.token,
            r.stage.as_str()
        );
        self.append(self.entry(
            &r.old_key,
            "escalate",
            Trigger::Compromised.as_str(),
            (Phase::Decision, Some(Outcome::Succeeded)),
            detail,
            None,
        ))
        .await?;
        let next = Rotation {
            trigger: Trigger::Compromised,
            ..r.clone()
        };
        self.store().advance(r, next).await?.ok_or_else(|| {
            StepError::InProgress(format!(
                "in progress: the rotation of {} was changed by another run; run the command again",
                r.old_key
            ))
        })
    }

    pub(super) async fn blocked_start(
        &self,
        key: &ApiKey,
        why: String,
    ) -> Result<Advanced, StepError> {
        self.append(self.entry(
            &key.id,
            "start",
            "max-age-exceeded",
            (Phase::Decision, Some(Outcome::Blocked)),
            why.clone(),
            None,
        ))
        .await?;
        Ok(Advanced {
            status: Status::Blocked,
            error: Some(why),
            ..Advanced::none(key)
        })
    }

    pub(super) async fn dry_run(
        &self,
        key: &ApiKey,
        action: ActionType,
        detail: &str,
        rotation: Option<Rotation>,
    ) -> Result<Advanced, StepError> {
        let mut entry = self.entry(
            &key.id,
            action.as_str(),
            "mode-plan",
            (Phase::Decision, Some(Outcome::Planned)),
            format!("mode = plan, not carried out: {detail}"),
            None,
        );
        entry.dry_run = true;
        self.append(entry).await?;
        let next = rotation.as_ref().and_then(|r| r.next(self.policy));
        Ok(Advanced {
            status: Status::DryRun,
            stage: rotation.as_ref().map(|r| r.stage),
            new_key: rotation.as_ref().and_then(|r| r.new_key.clone()),
            next: next.map(|n| n.0),
            next_at: next.map(|n| n.1),
            ..Advanced::none(key)
        })
    }
}
