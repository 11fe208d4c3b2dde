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
//!
//! One file per credential kind (`iam_keys`, `migration`, `api_keys`, `certs`), each adding
//! its methods to the one `Planner`; a new kind is a new file here and one line in
//! [`plan()`]. This file holds the plan's shape and the decisions shared by every kind.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::action::Action;
use super::api_rotation::Rotation;
use super::inventory::Inventory;
use super::lifecycle::KeyRecord;
use super::model::{AccountId, Kind, Tags};
use super::policy::{Mode, Policy};
use super::scope::{self, Exclusion};

mod api_keys;
mod certs;
mod iam_keys;
mod migration;
#[cfg(test)]
mod tests;

pub use iam_keys::{KeyView, iam_key_decision, key_facts};

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

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

fn whole_days(d: Duration) -> i64 {
    d.num_days()
}

/// The plan being built: the inventory indexed once, and what was decided so far.
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
        tags: &Tags,
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
