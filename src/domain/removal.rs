//! Whether an IAM access key may be removed: the one check every deletion of an access key
//! goes through (the IAM key sweep's delete, the rotation hook making room under the 2-key
//! limit, a migration's last step). Pure: the caller reads the facts from IAM right before
//! it deletes, and a caller that cannot read them does not delete.
//!
//! Safety invariant 2: nothing active or recently used is deleted. IAM's last-used data
//! lags by hours, so "never used" is believed only of a key older than that lag, and an
//! inactive key used within the lag is kept; a key keyrotor deactivated keeps the recovery
//! window its owner was promised.

use chrono::{DateTime, Duration, Utc};

use super::lifecycle::{KeyRecord, Stage};
use super::model::{AccessKey, KeyStatus};
use super::policy::Policy;

/// What is known about a key right before it would be removed.
#[derive(Debug, Clone, Copy)]
pub struct RemovalFacts<'a> {
    /// The key as ListAccessKeys shows it now.
    pub key: &'a AccessKey,
    /// GetAccessKeyLastUsed now (`None`: IAM has no record of use).
    pub last_used: Option<DateTime<Utc>>,
    /// keyrotor's lifecycle record of the key, if any.
    pub record: Option<&'a KeyRecord>,
}

/// `Ok(())` when the key may be removed at `now`; otherwise why not, for people.
pub fn may_remove(
    facts: RemovalFacts<'_>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), String> {
    let p = &policy.iam_keys;
    let lag = Duration::hours(i64::from(p.last_used_lag_hours));
    let key = facts.key;
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    if let Some(used) = facts.last_used
        && used > now - lag
    {
        return Err(format!(
            "key {} was used on {}, within the last {} hours ([iam_keys] last_used_lag_hours): it may be in use",
            key.id,
            when(used),
            p.last_used_lag_hours
        ));
    }
    if key.status == KeyStatus::Active {
        if let Some(used) = facts.last_used {
            return Err(format!(
                "key {} is active and was used on {}",
                key.id,
                when(used)
            ));
        }
        if key.created > now - lag {
            return Err(format!(
                "key {} is active and was created on {}, less than {} hours ago: IAM's last-used data lags, so it may already be in use",
                key.id,
                when(key.created),
                p.last_used_lag_hours
            ));
        }
    }
    if let Some(r) = facts.record
        && r.stage == Stage::Contained
    {
        return Err(format!(
            "key {} leaked and keyrotor respond contained it on {}: it is kept, inactive, as evidence; delete it by hand when the investigation is over (aws iam delete-access-key --access-key-id {})",
            key.id,
            when(r.since),
            key.id
        ));
    }
    if let Some(r) = facts.record
        && r.stage == Stage::Deactivated
    {
        let until = r.since + Duration::days(i64::from(p.delete_after_days));
        if now < until {
            return Err(format!(
                "keyrotor deactivated key {} on {} and promised its owner a recovery window until {}",
                key.id,
                when(r.since),
                when(until)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::AccessKeyId;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn key(status: KeyStatus, created: DateTime<Utc>) -> AccessKey {
        AccessKey {
            id: AccessKeyId::parse("AKIAAAAAAAAAAAAA0001").unwrap(),
            status,
            created,
            last_used: None,
        }
    }

    fn check(
        k: &AccessKey,
        used: Option<DateTime<Utc>>,
        r: Option<&KeyRecord>,
    ) -> Result<(), String> {
        let facts = RemovalFacts {
            key: k,
            last_used: used,
            record: r,
        };
        may_remove(facts, now(), &Policy::default())
    }

    #[test]
    fn a_never_used_active_key_created_minutes_ago_may_not_be_removed() {
        let k = key(KeyStatus::Active, now() - Duration::minutes(10));
        let why = check(&k, None, None).unwrap_err();
        assert!(why.contains("last-used data lags"), "{why}");
    }

    #[test]
    fn a_never_used_active_key_older_than_the_lag_may_be_removed() {
        let k = key(KeyStatus::Active, now() - Duration::hours(5));
        assert_eq!(check(&k, None, None), Ok(()));
    }

    #[test]
    fn an_active_key_that_was_ever_used_may_not_be_removed() {
        let k = key(KeyStatus::Active, now() - Duration::days(300));
        assert!(check(&k, Some(now() - Duration::days(200)), None).is_err());
    }

    #[test]
    fn an_inactive_key_used_within_the_lag_may_not_be_removed() {
        let k = key(KeyStatus::Inactive, now() - Duration::days(300));
        let why = check(&k, Some(now() - Duration::hours(1)), None).unwrap_err();
        assert!(why.contains("last_used_lag_hours"), "{why}");
        assert_eq!(check(&k, Some(now() - Duration::days(3)), None), Ok(()));
    }

    #[test]
    fn an_inactive_key_inside_keyrotors_recovery_window_may_not_be_removed() {
        let k = key(KeyStatus::Inactive, now() - Duration::days(300));
        let record = KeyRecord {
            key: k.id.clone(),
            user: "bob".into(),
            stage: Stage::Deactivated,
            since: now() - Duration::days(1),
            version: 1,
            secret: None,
        };
        let why = check(&k, None, Some(&record)).unwrap_err();
        assert!(why.contains("recovery window"), "{why}");
        let over = KeyRecord {
            since: now() - Duration::days(31),
            ..record
        };
        assert_eq!(check(&k, None, Some(&over)), Ok(()));
    }
}
