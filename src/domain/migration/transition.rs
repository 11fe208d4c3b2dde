//! The one transition of a migration due next, from what the sweep sees of the user (role
//! and key last use) and the policy's waiting times:
//!
//! ```text
//! RoleProvisioned -> Adopted -> KeysIdle -> Guarded -> KeysDeactivated -> Migrated
//!                       (keys used again after Adopted: Regressed; rollback: RolledBack)
//! ```

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{MigrationRecord, MigrationStage};
use crate::domain::policy::Policy;

/// What the sweep sees of a migrating user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationFacts {
    /// RoleLastUsed of the provisioned role.
    pub role_last_used: Option<DateTime<Utc>>,
    /// The latest use of any of the user's access keys.
    pub keys_last_used: Option<DateTime<Utc>>,
    /// Whether the user still has active keys / any keys.
    pub active_keys: usize,
    pub keys: usize,
}

/// What a transition changes in IAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationChange {
    None,
    /// Attach the guard's managed policy to the user.
    AttachGuard,
    /// Deactivate every active key of the user.
    DeactivateKeys,
    /// Delete every (inactive) key of the user and remove the guard.
    DeleteKeys,
    /// Remove the guard (a client still needs the keys).
    RemoveGuard,
}

/// The next transition of a migration and when it is (or becomes) due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationNext {
    pub to: MigrationStage,
    pub at: DateTime<Utc>,
    pub change: MigrationChange,
    pub detail: String,
}

fn ymd(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The next transition; `None` when the migration is over, rolled back, or waiting for
/// the role's first use.
pub fn next(r: &MigrationRecord, f: &MigrationFacts, policy: &Policy) -> Option<MigrationNext> {
    let p = &policy.migration;
    let days = |n: u32| Duration::days(i64::from(n));
    let adopted = r.adopted_at.unwrap_or(r.since);
    let used_since = |t: DateTime<Utc>| f.keys_last_used.is_some_and(|u| u > t);
    // A key used after the role was adopted and the keys went idle is a regression.
    if matches!(
        r.stage,
        MigrationStage::KeysIdle | MigrationStage::Guarded | MigrationStage::KeysDeactivated
    ) && used_since(r.since)
    {
        return Some(MigrationNext {
            to: MigrationStage::Regressed,
            at: f.keys_last_used.unwrap_or(r.since),
            change: MigrationChange::RemoveGuard,
            detail: format!(
                "the user's keys were used again on {} although the role took over on {}: progression stopped, guard removed so the client works, owner alerted",
                ymd(f.keys_last_used.unwrap_or(r.since)),
                ymd(adopted)
            ),
        });
    }
    match r.stage {
        MigrationStage::RoleProvisioned => {
            let used = f.role_last_used.filter(|u| *u > r.provisioned_at)?;
            Some(MigrationNext {
                to: MigrationStage::Adopted,
                at: used,
                change: MigrationChange::None,
                detail: format!("the role was first used on {}: adopted", ymd(used)),
            })
        }
        MigrationStage::Adopted | MigrationStage::Regressed => {
            let quiet_from = f.keys_last_used.map_or(r.since, |u| u.max(r.since));
            Some(MigrationNext {
                to: MigrationStage::KeysIdle,
                at: quiet_from + days(p.idle_days),
                change: MigrationChange::None,
                detail: format!(
                    "keys unused for {} days since {}: idle",
                    p.idle_days,
                    ymd(quiet_from)
                ),
            })
        }
        MigrationStage::KeysIdle if p.guard => Some(MigrationNext {
            to: MigrationStage::Guarded,
            at: r.since,
            change: MigrationChange::AttachGuard,
            detail: format!(
                "put the canary guard on the user (denies calls made with its long-term keys) for {} days before deactivating them",
                p.guard_days
            ),
        }),
        MigrationStage::KeysIdle | MigrationStage::Guarded => Some(MigrationNext {
            to: MigrationStage::KeysDeactivated,
            at: r.since
                + if r.stage == MigrationStage::Guarded {
                    days(p.guard_days)
                } else {
                    Duration::zero()
                },
            change: MigrationChange::DeactivateKeys,
            detail: format!(
                "deactivate the user's {} active key(s) (reversible: keyrotor migrate rollback)",
                f.active_keys
            ),
        }),
        MigrationStage::KeysDeactivated => Some(MigrationNext {
            to: MigrationStage::Migrated,
            at: r.since + days(policy.iam_keys.delete_after_days),
            change: MigrationChange::DeleteKeys,
            detail: format!(
                "keys inactive and unused for {} days: delete them and remove the guard; the workload runs on the role",
                policy.iam_keys.delete_after_days
            ),
        }),
        MigrationStage::Migrated | MigrationStage::RolledBack => None,
    }
}
