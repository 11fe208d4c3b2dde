//! Planning for IAM users and their access keys: the lifecycle of each key (warn,
//! deactivate, delete, rotate), what IAM's 2-key limit blocks, keys a migration owns, and
//! lifecycle records whose key is gone. Users tagged for a migration are handed to
//! `migration` from here, since both kinds come from the same user.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GLOBAL, Planner, whole_days};
use crate::domain::action::{Action, ActionType, Reason};
use crate::domain::lifecycle::{self, KeyFacts, KeyRecord, Stage};
use crate::domain::model::{AccessKey, IamUser, KeyStatus, Kind, TAG_MIGRATE_TO, TAG_OWNER};
use crate::domain::policy::Policy;
use crate::domain::scope::{self, Exclusion};

/// One IAM access key as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub user: String,
    pub key: String,
    /// `active` or `inactive`.
    pub status: &'static str,
    pub created: DateTime<Utc>,
    pub age_days: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_service: Option<String>,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_since: Option<DateTime<Utc>>,
    /// The next step and when it is due; `none` for an excluded key.
    pub next_action: Option<ActionType>,
    pub next_at: Option<DateTime<Utc>>,
    /// Why keyrotor leaves this key alone, when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
}

impl KeyView {
    fn new(
        user: &IamUser,
        key: &AccessKey,
        record: Option<&KeyRecord>,
        now: DateTime<Utc>,
        policy: &Policy,
        exclusion: Option<&Exclusion>,
    ) -> KeyView {
        let next = match exclusion {
            Some(_) => None,
            None => lifecycle::next(key_facts(key), record, now, policy),
        };
        KeyView {
            user: user.name.clone(),
            key: key.id.to_string(),
            status: match key.status {
                KeyStatus::Active => "active",
                KeyStatus::Inactive => "inactive",
            },
            created: key.created,
            age_days: whole_days(now - key.created),
            last_used: key.last_used.as_ref().map(|u| u.at),
            last_used_service: key.last_used.as_ref().and_then(|u| u.service.clone()),
            stage: record.map_or(Stage::Active, |r| r.stage),
            stage_since: record.map(|r| r.since),
            next_action: next.as_ref().map(|n| n.action),
            next_at: next.map(|n| n.at),
            excluded: exclusion.map(|e| e.code().to_owned()),
        }
    }
}

/// The decision for one IAM access key of an in-scope user, if any is due at `now`.
pub fn iam_key_decision(
    key: &AccessKey,
    record: Option<&KeyRecord>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<lifecycle::Next> {
    lifecycle::due(key_facts(key), record, now, policy)
}

/// The lifecycle facts of a key.
pub fn key_facts(key: &AccessKey) -> KeyFacts {
    KeyFacts {
        active: key.status == KeyStatus::Active,
        created: key.created,
        last_used: key.last_used.as_ref().map(|u| u.at),
    }
}

impl<'a> Planner<'a> {
    /// One IAM user: its keys (with the key view of each) and, when it is tagged
    /// `keyrotor:migrate-to`, its migration.
    pub(super) fn iam_user(&mut self, user: &'a IamUser, kinds: &[Kind]) {
        let want_keys = kinds.contains(&Kind::IamKeys);
        let want_migration = kinds.contains(&Kind::Migration) && self.policy.migration.enabled;
        let exclusion = scope::iam_user_exclusion(user, self.now, self.policy);
        if exclusion.is_none() {
            let keys = want_keys && !user.keys.is_empty();
            let migrating = want_migration && user.tags.contains_key(TAG_MIGRATE_TO);
            if keys || migrating {
                let kind = if keys { Kind::IamKeys } else { Kind::Migration };
                self.exemption_notice(kind, &user.name, Some(&user.name), GLOBAL, &user.tags);
            }
        }
        if want_keys {
            for key in &user.keys {
                self.seen.insert(key.id.as_str());
                let record = self.records.get(key.id.as_str()).copied();
                self.keys.push(KeyView::new(
                    user,
                    key,
                    record,
                    self.now,
                    self.policy,
                    exclusion.as_ref(),
                ));
            }
        }
        // A migration in progress owns the user's keys: one lifecycle per key, so that
        // `migrate rollback` restores everything done to them.
        let want_keys = want_keys
            && {
                let owned = self.inv.migration_owned.contains(&user.name);
                if owned && exclusion.is_none() {
                    for key in &user.keys {
                        let record = self.records.get(key.id.as_str()).copied();
                        if iam_key_decision(key, record, self.now, self.policy).is_some() {
                            self.skip(
                            Kind::IamKeys,
                            key.id.as_str(),
                            Some(&user.name),
                            GLOBAL,
                            "migration-in-progress",
                            format!(
                                "the migration of {} to a role owns its keys until it completes or is rolled back (keyrotor migrate status {})",
                                user.name, user.name
                            ),
                        );
                        }
                    }
                }
                !owned
            };
        if let Some(e) = exclusion {
            // Report exclusions only where something would otherwise have been done, so
            // the skipped list stays about decisions, not about every user in the account.
            if want_keys {
                for key in &user.keys {
                    let record = self.records.get(key.id.as_str()).copied();
                    if iam_key_decision(key, record, self.now, self.policy).is_some() {
                        self.exclude(Kind::IamKeys, key.id.as_str(), Some(&user.name), GLOBAL, &e);
                    }
                }
            }
            if want_migration && user.tags.contains_key(TAG_MIGRATE_TO) {
                self.exclude(Kind::Migration, &user.name, Some(&user.name), GLOBAL, &e);
            }
            return;
        }
        let owner = user.tags.get(TAG_OWNER).cloned();
        if want_keys {
            for key in &user.keys {
                let record = self.records.get(key.id.as_str()).copied();
                let Some(next) = iam_key_decision(key, record, self.now, self.policy) else {
                    continue;
                };
                let blocked = (next.action == ActionType::Rotate)
                    .then(|| rotation_room(user, key))
                    .flatten();
                self.actions.push(Action {
                    kind: Kind::IamKeys,
                    resource: key.id.to_string(),
                    principal: Some(user.name.clone()),
                    account: self.inv.account.clone(),
                    region: GLOBAL.to_owned(),
                    action: next.action,
                    reason: next.reason,
                    detail: next.detail,
                    due_at: next.at,
                    owner: owner.clone(),
                    blocked,
                });
            }
        }
        if want_migration {
            self.migration_candidate(user, owner);
        }
    }

    /// Lifecycle records whose key no longer exists: record it, so the lifecycle ends.
    pub(super) fn gone_keys(&mut self) {
        let mut gone: Vec<&KeyRecord> = self
            .records
            .values()
            .filter(|r| r.stage != Stage::Deleted && !self.seen.contains(r.key.as_str()))
            .copied()
            .collect();
        gone.sort_by(|a, b| a.key.cmp(&b.key));
        for r in gone {
            self.actions.push(Action {
                kind: Kind::IamKeys,
                resource: r.key.to_string(),
                principal: Some(r.user.clone()),
                account: self.inv.account.clone(),
                region: GLOBAL.to_owned(),
                action: ActionType::Reconcile,
                reason: Reason::KeyGone,
                detail: format!(
                    "{} since {}, and the key (or user {}) no longer exists; end its lifecycle",
                    r.stage.as_str(),
                    r.since.format("%Y-%m-%d"),
                    r.user
                ),
                due_at: self.now,
                owner: None,
                blocked: None,
            });
        }
    }
}

/// When rotating `key` needs a free slot under IAM's 2-key limit and none can be made.
fn rotation_room(user: &IamUser, key: &AccessKey) -> Option<String> {
    if user.keys.len() < 2 {
        return None;
    }
    let removable = user
        .keys
        .iter()
        .filter(|k| k.id != key.id)
        .any(|k| k.status == KeyStatus::Inactive || k.last_used.is_none());
    (!removable).then(|| {
        "two-key-limit: the user already has 2 keys and the other one is active and in use; escalate to the owner".to_owned()
    })
}
