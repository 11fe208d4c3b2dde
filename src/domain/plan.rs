//! The planner: `(inventory, now, policy) -> Plan`.
//!
//! Pure and deterministic: the same inventory, time and policy always give the same plan.
//! Every action carries a machine-readable reason, a human-readable detail and the time it
//! became due; every deliberate decision not to act is listed under `skipped`.
//!
//! Safety decisions made here, and checked by property tests:
//! - an active key is never planned for deletion (only an inactive key, after a quiet period);
//! - nothing excluded by [`scope`] gets an action;
//! - at most one action, hence at most one replacement, per credential.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::action::{Action, ActionType, Reason};
use super::api_rotation::{Rotation, RotationStage, RotationStep};
use super::cert::{self, LadderStep};
use super::inventory::Inventory;
use super::lifecycle::{self, KeyFacts, KeyRecord, Stage};
use super::model::{
    AccessKey, AccountId, ApiKey, Certificate, IamUser, KeyStatus, Kind, TAG_MIGRATE_TO, TAG_OWNER,
};
use super::policy::{Mode, Policy};
use super::scope::{self, Exclusion};

/// Region label for IAM, which is global.
pub const GLOBAL: &str = "global";

/// A deliberate decision not to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub kind: Kind,
    pub resource: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub account: AccountId,
    pub region: String,
    /// Machine-readable code: `root-user`, `break-glass`, `exempt`, `out-of-scope`,
    /// `unmanaged`, `disabled`, `secret-missing`, `no-expiry-date`, `discovery-failed`
    /// (and, in `notices`, `exemption-unreadable` and `exemption-too-long`).
    pub reason: String,
    pub detail: String,
}

/// The plan for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub generated_at: DateTime<Utc>,
    pub mode: Mode,
    pub account: AccountId,
    pub actions: Vec<Action>,
    pub skipped: Vec<Skipped>,
    /// Problems a person should fix that do not stop keyrotor from acting: an exemption tag
    /// it does not honour (`exemption-unreadable`, `exemption-too-long`), so the resource
    /// is in scope. Same shape as `skipped`; the resource is the user, API key or
    /// certificate carrying the tag.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Skipped>,
    /// Every IAM access key examined in detail, with its lifecycle stage and next step
    /// (planned with `iam-keys`; keys with nothing due soon are not examined).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyView>,
}

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

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

fn whole_days(d: Duration) -> i64 {
    d.num_days()
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

struct Planner<'a> {
    inv: &'a Inventory,
    /// Names and ARNs of the inventory's secrets, looked up once per API key.
    secrets: HashSet<&'a str>,
    /// keyrotor's lifecycle records, by access key id.
    records: HashMap<&'a str, &'a KeyRecord>,
    /// Access key ids found in the inventory.
    seen: HashSet<&'a str>,
    /// API key rotations, by old key id.
    rotations: HashMap<&'a str, &'a Rotation>,
    now: DateTime<Utc>,
    policy: &'a Policy,
    actions: Vec<Action>,
    skipped: Vec<Skipped>,
    notices: Vec<Skipped>,
    keys: Vec<KeyView>,
}

impl<'a> Planner<'a> {
    fn skip(
        &mut self,
        kind: Kind,
        resource: &str,
        principal: Option<&str>,
        region: &str,
        reason: &str,
        detail: String,
    ) {
        self.skipped.push(Skipped {
            kind,
            resource: resource.to_owned(),
            principal: principal.map(str::to_owned),
            account: self.inv.account.clone(),
            region: region.to_owned(),
            reason: reason.to_owned(),
            detail,
        });
    }

    fn exclude(
        &mut self,
        kind: Kind,
        resource: &str,
        principal: Option<&str>,
        region: &str,
        e: &Exclusion,
    ) {
        self.skip(kind, resource, principal, region, e.code(), e.detail());
    }

    /// Reports an exemption tag that is not honoured on a resource otherwise in scope.
    fn exemption_notice(
        &mut self,
        kind: Kind,
        resource: &str,
        principal: Option<&str>,
        region: &str,
        tags: &crate::domain::model::Tags,
    ) {
        if let Some(p) = scope::exemption_problem(tags, self.now, self.policy) {
            self.notices.push(Skipped {
                kind,
                resource: resource.to_owned(),
                principal: principal.map(str::to_owned),
                account: self.inv.account.clone(),
                region: region.to_owned(),
                reason: p.code().to_owned(),
                detail: p.detail(),
            });
        }
    }

    fn iam_user(&mut self, user: &'a IamUser, kinds: &[Kind]) {
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
        if want_migration
            && let Some(identity) = user.tags.get(TAG_MIGRATE_TO)
            && user.keys.iter().any(|k| k.status == KeyStatus::Active)
            && !self.inv.migrating.contains(&user.name)
        {
            self.actions.push(Action {
                kind: Kind::Migration,
                resource: user.name.clone(),
                principal: Some(user.name.clone()),
                account: self.inv.account.clone(),
                region: GLOBAL.to_owned(),
                action: ActionType::ProvisionRole,
                reason: Reason::MigrateTo,
                detail: format!(
                    "has active long-lived keys and is tagged {TAG_MIGRATE_TO} = {identity}; provision a role for that identity (max session {}h)",
                    self.policy.migration.max_session_hours
                ),
                due_at: self.now,
                owner,
                blocked: None,
            });
        }
    }

    /// Lifecycle records whose key no longer exists: record it, so the lifecycle ends.
    fn gone_keys(&mut self) {
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

    fn api_key(&mut self, key: &ApiKey) {
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

    fn certificate(&mut self, cert: &Certificate) {
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

/// Plans the work due at `now` for the given kinds.
pub fn plan(inventory: &Inventory, now: DateTime<Utc>, policy: &Policy, kinds: &[Kind]) -> Plan {
    let mut planner = Planner {
        inv: inventory,
        secrets: inventory
            .secrets
            .iter()
            .flat_map(|s| [s.name.as_str(), s.arn.as_str()])
            .collect(),
        records: inventory
            .key_records
            .iter()
            .map(|r| (r.key.as_str(), r))
            .collect(),
        seen: HashSet::new(),
        rotations: inventory
            .api_rotations
            .iter()
            .map(|r| (r.old_key.as_str(), r))
            .collect(),
        now,
        policy,
        actions: Vec::new(),
        skipped: Vec::new(),
        notices: Vec::new(),
        keys: Vec::new(),
    };
    if kinds.contains(&Kind::IamKeys) || kinds.contains(&Kind::Migration) {
        for user in &inventory.iam_users {
            planner.iam_user(user, kinds);
        }
    }
    if kinds.contains(&Kind::IamKeys) {
        planner.gone_keys();
    }
    if kinds.contains(&Kind::IamKeys) && inventory.root_active_keys > 0 {
        planner.skip(
            Kind::IamKeys,
            "root",
            Some("<root_account>"),
            GLOBAL,
            Exclusion::RootUser.code(),
            format!(
                "the root user has {} active access key(s); keyrotor never touches root: delete them by hand (CIS 1.4)",
                inventory.root_active_keys
            ),
        );
    }
    if kinds.contains(&Kind::ApiKeys) {
        for key in &inventory.api_keys {
            planner.api_key(key);
        }
    }
    if kinds.contains(&Kind::Certs) {
        for cert in &inventory.certificates {
            planner.certificate(cert);
        }
    }
    for problem in &inventory.problems {
        if kinds.contains(&problem.kind) {
            planner.skip(
                problem.kind,
                "*",
                None,
                &problem.region.clone(),
                "discovery-failed",
                problem.message.clone(),
            );
        }
    }
    let mut actions = planner.actions;
    // Most overdue first; ties broken by identity so the order is stable.
    actions.sort_by(|a, b| (a.due_at, a.kind, &a.resource).cmp(&(b.due_at, b.kind, &b.resource)));
    Plan {
        generated_at: now,
        mode: policy.mode,
        account: inventory.account.clone(),
        actions,
        skipped: planner.skipped,
        notices: planner.notices,
        keys: planner.keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{AccessKeyId, LastUsed, Tags};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    fn key(n: u32, status: KeyStatus, age_days: i64, used_days_ago: Option<i64>) -> AccessKey {
        AccessKey {
            id: AccessKeyId::parse(&format!("AKIAAAAAAAAAAAAA{n:04}")).unwrap(),
            status,
            created: now() - Duration::days(age_days),
            last_used: used_days_ago.map(|d| LastUsed {
                at: now() - Duration::days(d),
                service: None,
                region: None,
            }),
        }
    }

    fn user(keys: Vec<AccessKey>) -> IamUser {
        IamUser {
            name: "bob".into(),
            arn: "arn:aws:iam::123456789012:user/bob".into(),
            path: "/".into(),
            created: now() - Duration::days(500),
            tags: Tags::new(),
            keys,
            is_root: false,
        }
    }

    fn plan_users(users: Vec<IamUser>, root_keys: u32) -> Plan {
        let mut inv = Inventory::empty(AccountId::parse("123456789012").unwrap(), "us-east-1");
        inv.iam_users = users;
        inv.root_active_keys = root_keys;
        plan(&inv, now(), &Policy::default(), &Kind::ALL)
    }

    #[test]
    fn rotation_is_blocked_when_the_other_key_is_active_and_in_use() {
        let p = plan_users(
            vec![user(vec![
                key(1, KeyStatus::Active, 120, Some(1)),
                key(2, KeyStatus::Active, 10, Some(1)),
            ])],
            0,
        );
        assert_eq!(p.actions.len(), 1);
        assert_eq!(p.actions[0].action, ActionType::Rotate);
        assert!(
            p.actions[0]
                .blocked
                .as_deref()
                .unwrap()
                .starts_with("two-key-limit")
        );
    }

    #[test]
    fn rotation_is_not_blocked_when_the_other_key_can_make_room() {
        let p = plan_users(
            vec![user(vec![
                key(1, KeyStatus::Active, 120, Some(1)),
                key(2, KeyStatus::Active, 10, None),
            ])],
            0,
        );
        let rotate = p
            .actions
            .iter()
            .find(|a| a.action == ActionType::Rotate)
            .unwrap();
        assert_eq!(
            rotate.blocked, None,
            "a never-used key may be removed to make room"
        );
    }

    #[test]
    fn an_unused_key_is_warned_not_rotated_even_past_max_age() {
        let p = plan_users(
            vec![user(vec![key(1, KeyStatus::Active, 200, Some(60))])],
            0,
        );
        assert_eq!(
            (p.actions[0].action, p.actions[0].reason),
            (ActionType::Warn, Reason::Unused)
        );
    }

    #[test]
    fn a_recently_deactivated_key_is_not_deleted_yet() {
        // Inactive, last used 50 days ago: quiet for less than unused (45) + delete_after (30).
        let p = plan_users(
            vec![user(vec![key(1, KeyStatus::Inactive, 300, Some(50))])],
            0,
        );
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        let p = plan_users(
            vec![user(vec![key(1, KeyStatus::Inactive, 300, Some(80))])],
            0,
        );
        assert_eq!(p.actions[0].action, ActionType::Delete);
    }

    #[test]
    fn root_access_keys_are_reported_and_never_acted_on() {
        let p = plan_users(vec![], 1);
        assert!(p.actions.is_empty());
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].reason, "root-user");
        assert!(
            p.skipped[0].detail.contains("1 active access key"),
            "{}",
            p.skipped[0].detail
        );
    }
}
