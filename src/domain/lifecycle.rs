//! The lifecycle of a stale IAM access key: Active -> Warned -> Deactivated -> Deleted.
//!
//! Pure: the next step of a key follows from its facts (status, creation, last use) and the
//! lifecycle record keyrotor keeps for it in the state table. A key without a record is
//! Active. The record is what makes the steps evidence-based:
//! - a key is deactivated only `warn_days` after its owner was warned, and only if it was
//!   not used since the warning (used after the warning: back to Active, audited);
//! - a key keyrotor deactivated is deleted `delete_after_days` after the deactivation;
//! - a key reactivated with `keyrotor reactivate` gets a fresh unused window.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::action::{ActionType, Reason};
use super::model::AccessKeyId;
use super::policy::Policy;

/// Where a key is in its lifecycle, as recorded in the state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// No lifecycle in progress.
    Active,
    /// The owner was told the key will be deactivated.
    Warned,
    /// keyrotor deactivated the key.
    Deactivated,
    /// Reactivated with `keyrotor reactivate`: reconsidered after a fresh unused window.
    Reactivated,
    /// Past max age but in use: the owner was told to rotate or migrate it.
    Escalated,
    /// keyrotor deleted the key (or found it gone).
    Deleted,
    /// Replaced by a Secrets Manager rotation: deactivated after the grace period unless
    /// it is still in use.
    Superseded,
    /// Deactivated by `keyrotor respond` because it leaked: kept, inactive, as evidence.
    /// Never deleted by keyrotor (the sweep leaves it, no rotation removes it to make
    /// room); `keyrotor reactivate iam-key` undoes the deactivation.
    Contained,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Active => "active",
            Stage::Warned => "warned",
            Stage::Deactivated => "deactivated",
            Stage::Reactivated => "reactivated",
            Stage::Escalated => "escalated",
            Stage::Deleted => "deleted",
            Stage::Superseded => "superseded",
            Stage::Contained => "contained",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        [
            Stage::Active,
            Stage::Warned,
            Stage::Deactivated,
            Stage::Reactivated,
            Stage::Escalated,
            Stage::Deleted,
            Stage::Superseded,
            Stage::Contained,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// keyrotor's record of one key's lifecycle (one state-table item).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: AccessKeyId,
    /// The IAM user owning the key.
    pub user: String,
    pub stage: Stage,
    /// When the key entered `stage`.
    pub since: DateTime<Utc>,
    /// The state-table item version, for compare-and-set writes (0: no item yet).
    pub version: u64,
    /// The secret whose rotation superseded the key (stage `Superseded`): the sweep reads
    /// it again before deactivating, in case the owner moved AWSCURRENT back.
    pub secret: Option<String>,
}

impl KeyRecord {
    /// State-table partition holding the key records of one account.
    pub fn partition(account: &str) -> String {
        format!("iam-key#{account}")
    }

    /// The attributes stored for this record (the key id is the sort key).
    pub fn attrs(&self) -> BTreeMap<String, String> {
        let mut attrs = BTreeMap::from([
            ("user".to_owned(), self.user.clone()),
            ("stage".to_owned(), self.stage.as_str().to_owned()),
            ("since".to_owned(), self.since.to_rfc3339()),
        ]);
        if let Some(secret) = &self.secret {
            attrs.insert("secret".to_owned(), secret.clone());
        }
        attrs
    }

    /// Decodes a stored item; the error says which attribute is wrong.
    pub fn from_item(
        sk: &str,
        version: u64,
        attrs: &BTreeMap<String, String>,
    ) -> Result<KeyRecord, String> {
        let key = AccessKeyId::parse(sk).map_err(|e| format!("sort key {sk:?}: {e}"))?;
        let get = |name: &str| {
            attrs
                .get(name)
                .ok_or_else(|| format!("item {sk}: attribute {name} is missing"))
        };
        let stage_text = get("stage")?;
        let stage = Stage::parse(stage_text)
            .ok_or_else(|| format!("item {sk}: stage {stage_text:?} is not a known stage"))?;
        let since_text = get("since")?;
        let since = DateTime::parse_from_rfc3339(since_text)
            .map_err(|e| format!("item {sk}: since {since_text:?}: {e}"))?
            .with_timezone(&Utc);
        Ok(KeyRecord {
            key,
            user: get("user")?.clone(),
            stage,
            since,
            version,
            secret: attrs.get("secret").cloned(),
        })
    }
}

/// The facts about one key that decide its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub active: bool,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
}

/// The next step of a key and when it is (or becomes) due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub action: ActionType,
    pub reason: Reason,
    /// When the step is due, assuming the facts do not change (no new use).
    pub at: DateTime<Utc>,
    /// The stage the key will be in after the step.
    pub to: Stage,
    /// What was seen and what will happen, for people.
    pub detail: String,
}

fn days(n: u32) -> Duration {
    Duration::days(i64::from(n))
}

fn ymd(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// The next step for a key, or `None` when nothing will happen to it whatever the date
/// (only an inactive key that keyrotor already deleted or contained after a leak, or one not yet old or idle enough
/// has a future step; every other key has one). `now` is used only for wording.
pub fn next(
    facts: KeyFacts,
    record: Option<&KeyRecord>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<Next> {
    let p = &policy.iam_keys;
    let stage = record.map_or(Stage::Active, |r| r.stage);
    let since = record.map(|r| r.since);
    let used_since = |t: DateTime<Utc>| facts.last_used.is_some_and(|u| u > t);
    if stage == Stage::Deleted {
        return None;
    }
    // A leaked key keyrotor contained is evidence: nothing happens to it while inactive.
    if stage == Stage::Contained && !facts.active {
        return None;
    }
    if !facts.active {
        return Some(match (stage, since) {
            (Stage::Deactivated, Some(since)) => Next {
                action: ActionType::Delete,
                reason: Reason::InactiveUnused,
                // Never sooner than the quiet period the facts alone require, whatever the
                // record says (a record is trusted to postpone, never to hasten).
                at: (since + days(p.delete_after_days)).max(
                    facts.last_used.unwrap_or(facts.created)
                        + days(p.unused_days)
                        + days(p.delete_after_days),
                ),
                to: Stage::Deleted,
                detail: format!(
                    "deactivated by keyrotor on {}, unused since; delete {} days after the deactivation (no recovery after this)",
                    ymd(since),
                    p.delete_after_days
                ),
            },
            (Stage::Warned, Some(_)) => Next {
                // Deactivated after the warning, by a person or by a run that stopped
                // before it could record it: record it now, the quiet period starts now.
                action: ActionType::Reconcile,
                reason: Reason::FoundInactive,
                at: now,
                to: Stage::Deactivated,
                detail: format!(
                    "warned, and found inactive; record the deactivation as of {}, delete after {} more quiet days",
                    ymd(now),
                    p.delete_after_days
                ),
            },
            _ => {
                // Deactivated outside keyrotor. IAM does not say when, so the quiet period
                // counts from the last activity plus the unused window: a key deactivated
                // by hand yesterday is not deleted today.
                let quiet_since = facts.last_used.unwrap_or(facts.created);
                Next {
                    action: ActionType::Delete,
                    reason: Reason::InactiveUnused,
                    at: quiet_since + days(p.unused_days) + days(p.delete_after_days),
                    to: Stage::Deleted,
                    detail: format!(
                        "inactive, {} since {}; delete (no recovery after this)",
                        if facts.last_used.is_some() {
                            "unused"
                        } else {
                            "never used"
                        },
                        ymd(quiet_since)
                    ),
                }
            }
        });
    }
    match (stage, since) {
        (Stage::Warned, Some(warned)) if used_since(warned) => {
            let used = facts.last_used.unwrap_or(warned);
            return Some(Next {
                action: ActionType::Reset,
                reason: Reason::UsedAfterWarning,
                at: used,
                to: Stage::Active,
                detail: format!(
                    "warned on {}, then used on {}: in use, so back to active; no deactivation",
                    ymd(warned),
                    ymd(used)
                ),
            });
        }
        (Stage::Warned, Some(warned)) => {
            // Never sooner than the unused window on the facts alone.
            let unused_due = facts.last_used.unwrap_or(facts.created) + days(p.unused_days);
            let at = (warned + days(p.warn_days)).max(unused_due);
            return Some(Next {
                action: ActionType::Deactivate,
                reason: Reason::StillUnused,
                at,
                to: Stage::Deactivated,
                detail: format!(
                    "warned on {}, not used since; deactivate on {} (reversible: keyrotor reactivate iam-key), delete {} days later",
                    ymd(warned),
                    ymd(at),
                    p.delete_after_days
                ),
            });
        }
        (Stage::Superseded, Some(superseded)) => {
            let at = superseded + days(p.rotation_grace_days);
            // Still used in the last day before the deadline: a client has not picked up the
            // new secret. Do not break it: escalate, and let the usual lifecycle take over.
            if facts.last_used.is_some_and(|u| u > at - Duration::days(1)) {
                return Some(Next {
                    action: ActionType::Rotate,
                    reason: Reason::SupersededInUse,
                    at: at.max(facts.last_used.unwrap_or(at)),
                    to: Stage::Escalated,
                    detail: format!(
                        "replaced by a Secrets Manager rotation on {}, but still used on {}: a client has not picked up the new secret; not deactivated, owner escalated",
                        ymd(superseded),
                        ymd(facts.last_used.unwrap_or(at))
                    ),
                });
            }
            return Some(Next {
                action: ActionType::Deactivate,
                reason: Reason::Superseded,
                at,
                to: Stage::Deactivated,
                detail: format!(
                    "replaced by a Secrets Manager rotation on {}; grace of {} days over and not used in its last day: deactivate (reversible: keyrotor reactivate iam-key)",
                    ymd(superseded),
                    p.rotation_grace_days
                ),
            });
        }
        (Stage::Contained, Some(contained)) => {
            return Some(Next {
                action: ActionType::Reset,
                reason: Reason::ReactivatedOutside,
                at: contained,
                to: Stage::Active,
                detail: format!(
                    "deactivated by keyrotor respond on {} because it leaked, found active again (reactivated outside keyrotor); back to active",
                    ymd(contained)
                ),
            });
        }
        (Stage::Deactivated, Some(deactivated)) => {
            return Some(Next {
                action: ActionType::Reset,
                reason: Reason::ReactivatedOutside,
                at: deactivated,
                to: Stage::Active,
                detail: format!(
                    "deactivated by keyrotor on {}, found active again (reactivated outside keyrotor); back to active",
                    ymd(deactivated)
                ),
            });
        }
        _ => {}
    }
    // Active, Reactivated or Escalated: the unused and age checks. A reactivation counts as
    // activity, so the key gets a fresh unused window.
    let reactivated = (stage == Stage::Reactivated).then_some(since).flatten();
    let activity = match (facts.last_used, reactivated) {
        (Some(u), Some(r)) => Some(u.max(r)),
        (u, r) => u.or(r),
    };
    let age = (now - facts.created).num_days();
    let unused_due = activity.unwrap_or(facts.created) + days(p.unused_days);
    let warn = Next {
        action: ActionType::Warn,
        reason: if activity.is_none() {
            Reason::NeverUsed
        } else {
            Reason::Unused
        },
        at: unused_due,
        to: Stage::Warned,
        detail: match activity {
            None => format!(
                "active, never used in {age} days since creation (limit {}); warn the owner, deactivate {} days later if still unused",
                p.unused_days, p.warn_days
            ),
            Some(a) => format!(
                "active, last {} {} days ago on {} (limit {}); warn the owner, deactivate {} days later if still unused",
                if reactivated == Some(a) {
                    "reactivated"
                } else {
                    "used"
                },
                (now - a).num_days(),
                ymd(a),
                p.unused_days,
                p.warn_days
            ),
        },
    };
    let Some(used) = facts.last_used else {
        return Some(warn);
    };
    let age_due = facts.created + days(p.max_age_days);
    // Escalate again every warn_days while the key stays old and in use.
    let rotate_due = match (stage, since) {
        (Stage::Escalated, Some(escalated)) => age_due.max(escalated + days(p.warn_days)),
        _ => age_due,
    };
    if now >= unused_due || unused_due <= rotate_due {
        return Some(warn);
    }
    Some(Next {
        action: ActionType::Rotate,
        reason: Reason::MaxAgeExceeded,
        at: rotate_due,
        to: Stage::Escalated,
        detail: format!(
            "active, {age} days old (limit {}) and used {} days ago: in use, so rotate rather than deactivate (managed: keyrotor rotate secret; otherwise migrate to a role); owner escalated",
            p.max_age_days,
            (now - used).num_days()
        ),
    })
}

/// [`next`], if due at `now`.
pub fn due(
    facts: KeyFacts,
    record: Option<&KeyRecord>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Option<Next> {
    next(facts, record, now, policy).filter(|n| n.at <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn d(n: i64) -> DateTime<Utc> {
        t0() + Duration::days(n)
    }

    fn record(stage: Stage, since: DateTime<Utc>) -> KeyRecord {
        KeyRecord {
            key: AccessKeyId::parse("AKIAAAAAAAAAAAAA0001").unwrap(),
            user: "bob".into(),
            stage,
            since,
            version: 1,
            secret: None,
        }
    }

    fn facts(active: bool, last_used: Option<i64>) -> KeyFacts {
        KeyFacts {
            active,
            created: t0(),
            last_used: last_used.map(d),
        }
    }

    #[test]
    fn walk_from_active_to_deleted() {
        let p = Policy::default(); // unused 45, warn 7, delete_after 30
        let f = facts(true, Some(10));
        assert_eq!(due(f, None, d(54), &p), None);
        let warn = due(f, None, d(55), &p).unwrap();
        assert_eq!(
            (warn.action, warn.to, warn.at),
            (ActionType::Warn, Stage::Warned, d(55))
        );
        let warned = record(Stage::Warned, d(56));
        assert_eq!(due(f, Some(&warned), d(62), &p), None);
        let off = due(f, Some(&warned), d(63), &p).unwrap();
        assert_eq!(
            (off.action, off.to),
            (ActionType::Deactivate, Stage::Deactivated)
        );
        let deactivated = record(Stage::Deactivated, d(63));
        let inactive = facts(false, Some(10));
        assert_eq!(due(inactive, Some(&deactivated), d(92), &p), None);
        let del = due(inactive, Some(&deactivated), d(93), &p).unwrap();
        assert_eq!((del.action, del.to), (ActionType::Delete, Stage::Deleted));
        assert_eq!(
            next(inactive, Some(&record(Stage::Deleted, d(93))), d(200), &p),
            None
        );
    }

    #[test]
    fn use_after_the_warning_resets_instead_of_deactivating() {
        let p = Policy::default();
        let warned = record(Stage::Warned, d(56));
        let n = due(facts(true, Some(58)), Some(&warned), d(70), &p).unwrap();
        assert_eq!(
            (n.action, n.reason),
            (ActionType::Reset, Reason::UsedAfterWarning)
        );
        assert_eq!(n.to, Stage::Active);
    }

    #[test]
    fn a_reactivated_key_gets_a_fresh_unused_window() {
        let mut p = Policy::default();
        p.iam_keys.max_age_days = 365; // not old: only the unused window matters here
        let r = record(Stage::Reactivated, d(100));
        let f = facts(true, Some(10));
        assert_eq!(next(f, Some(&r), d(100), &p).unwrap().at, d(145));
        assert_eq!(due(f, Some(&r), d(144), &p), None);
    }

    #[test]
    fn a_key_reactivated_by_hand_goes_back_to_active() {
        let p = Policy::default();
        let r = record(Stage::Deactivated, d(63));
        let n = due(facts(true, Some(10)), Some(&r), d(64), &p).unwrap();
        assert_eq!(
            (n.action, n.reason),
            (ActionType::Reset, Reason::ReactivatedOutside)
        );
    }

    #[test]
    fn a_warned_key_found_inactive_is_reconciled_not_deleted() {
        let p = Policy::default();
        let r = record(Stage::Warned, d(56));
        let n = due(facts(false, Some(10)), Some(&r), d(70), &p).unwrap();
        assert_eq!(
            (n.action, n.to),
            (ActionType::Reconcile, Stage::Deactivated)
        );
    }

    #[test]
    fn an_old_key_in_use_is_escalated_again_only_after_warn_days() {
        let p = Policy::default(); // max age 90
        let f = facts(true, Some(99));
        assert_eq!(due(f, None, d(100), &p).unwrap().action, ActionType::Rotate);
        let escalated = record(Stage::Escalated, d(100));
        assert_eq!(due(f, Some(&escalated), d(106), &p), None);
        assert_eq!(
            due(f, Some(&escalated), d(107), &p).unwrap().action,
            ActionType::Rotate
        );
    }

    #[test]
    fn records_round_trip_and_bad_items_are_named() {
        let r = record(Stage::Warned, d(56));
        let back = KeyRecord::from_item(r.key.as_str(), 1, &r.attrs()).unwrap();
        assert_eq!(back, r);
        let mut bad = r.attrs();
        bad.insert("stage".into(), "sleeping".into());
        let err = KeyRecord::from_item(r.key.as_str(), 1, &bad).unwrap_err();
        assert!(err.contains("sleeping") && err.contains("stage"), "{err}");
        let err = KeyRecord::from_item("not-a-key", 1, &r.attrs()).unwrap_err();
        assert!(err.contains("not-a-key"), "{err}");
    }
}
