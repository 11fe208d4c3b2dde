//! Discovery: builds the [`Inventory`] the planner needs, with as few AWS calls as possible.
//!
//! IAM is read from the credential report first. Per-user calls (ListAccessKeys,
//! ListUserTags, and GetAccessKeyLastUsed only for a key the report cannot be matched to)
//! are made only for in-scope users with a key that the planner could act on at `now`, or
//! for migration candidates when migration planning is on. Certificates are described only
//! when near or past expiry.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::domain::credential_report::ReportRow;
use crate::domain::inventory::{DiscoveryProblem, Inventory};
use crate::domain::lifecycle::{self, KeyFacts, KeyRecord, Stage};
use crate::domain::model::{Certificate, IamUser, Kind};
use crate::domain::policy::Policy;
use crate::ports::{
    ApiKeyInventory, CertInventory, IamInventory, PortError, PortResult, SecretInventory,
};

/// Per-user IAM lookups in flight at once (IAM's control plane is rate-limited).
const IAM_CONCURRENCY: usize = 4;

/// The read-only ports discovery uses.
pub struct DiscoveryPorts<'a> {
    pub iam: &'a dyn IamInventory,
    pub api_keys: &'a dyn ApiKeyInventory,
    pub certs: &'a dyn CertInventory,
    pub secrets: &'a dyn SecretInventory,
}

/// Whether a report row needs per-user calls before it can be planned.
pub fn row_needs_detail(row: &ReportRow, now: DateTime<Utc>, policy: &Policy) -> bool {
    if row.is_root() {
        return false;
    }
    let path = row.path();
    if !policy
        .iam_keys
        .path_prefixes
        .iter()
        .any(|p| path.starts_with(p.as_str()))
    {
        return false;
    }
    // Without keyrotor's lifecycle record: a record only ever postpones a step, and users
    // with a record are looked up anyway.
    let key_due = row.keys.iter().any(|k| {
        let facts = KeyFacts {
            active: k.active,
            created: k.last_rotated,
            last_used: k.last_used.as_ref().map(|u| u.at),
        };
        lifecycle::due(facts, None, now, policy).is_some()
    });
    let migration_candidate = policy.migration.enabled && row.keys.iter().any(|k| k.active);
    key_due || migration_candidate
}

/// The user's keys and tags; `None` when the user was deleted since the report.
async fn user_detail(iam: &dyn IamInventory, row: &ReportRow) -> PortResult<Option<IamUser>> {
    let (mut keys, tags) =
        match futures::try_join!(iam.access_keys(&row.user), iam.user_tags(&row.user)) {
            Ok(found) => found,
            Err(PortError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
    for key in &mut keys {
        // The report has no key ids: match its slots to keys by creation time.
        let slot = row
            .keys
            .iter()
            .find(|s| (s.last_rotated - key.created).num_seconds().abs() <= 1);
        key.last_used = match slot {
            Some(slot) => slot.last_used.clone(),
            None => iam.key_last_used(&key.id).await?,
        };
    }
    Ok(Some(IamUser {
        name: row.user.clone(),
        arn: row.arn.clone(),
        path: row.path(),
        created: row.created.unwrap_or(DateTime::<Utc>::MIN_UTC),
        tags,
        keys,
        is_root: false,
    }))
}

/// IAM part of the inventory: users with a key that may be due, and users with a lifecycle
/// in progress (`records`), whatever their scope (the planner reports exclusions).
pub async fn iam_users(
    iam: &dyn IamInventory,
    now: DateTime<Utc>,
    policy: &Policy,
    records: &[KeyRecord],
) -> PortResult<(Vec<IamUser>, u32)> {
    let rows = iam
        .credential_report(now, policy.iam_keys.credential_report_max_age_hours)
        .await?;
    let root_active = rows
        .iter()
        .filter(|r| r.is_root())
        .flat_map(|r| r.keys.iter())
        .filter(|k| k.active)
        .count() as u32;
    let in_progress: HashSet<&str> = records
        .iter()
        .filter(|r| r.stage != Stage::Deleted)
        .map(|r| r.user.as_str())
        .collect();
    let wanted: Vec<&ReportRow> = rows
        .iter()
        .filter(|r| {
            !r.is_root()
                && (in_progress.contains(r.user.as_str()) || row_needs_detail(r, now, policy))
        })
        .collect();
    let progress = crate::progress::Phase::start("reading IAM users", wanted.len());
    let users: Vec<Option<IamUser>> = futures::stream::iter(wanted)
        .map(|row| user_detail(iam, row))
        .buffered(IAM_CONCURRENCY)
        .inspect(|_| progress.step())
        .try_collect()
        .await?;
    Ok((users.into_iter().flatten().collect(), root_active))
}

/// The regions to read certificates from: `[certs] regions`, else the default region.
pub fn cert_regions(policy: &Policy, default_region: &str) -> Vec<String> {
    if policy.certs.regions.is_empty() {
        vec![default_region.to_owned()]
    } else {
        policy.certs.regions.clone()
    }
}

/// Certificates of every region. DescribeCertificate and tags are fetched only for those
/// without NotAfter in their summary or expiring within `horizon_days`. A region that cannot
/// be read becomes a problem; the other regions are still read.
pub async fn certificates(
    certs: &dyn CertInventory,
    regions: &[String],
    now: DateTime<Utc>,
    horizon_days: i64,
) -> PortResult<(Vec<Certificate>, Vec<DiscoveryProblem>)> {
    let detail_if = move |not_after: Option<DateTime<Utc>>| {
        not_after.is_none_or(|t| t - now <= Duration::days(horizon_days))
    };
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for region in regions {
        match certs.certificates(region, &detail_if).await {
            Ok(list) => found.extend(list),
            Err(e) => problems.push(regional(Kind::Certs, region, e)?),
        }
    }
    Ok((found, problems))
}

/// Failures confined to one region are reported there; the rest still runs. Credentials
/// problems are not regional and stop discovery.
fn regional(kind: Kind, region: &str, e: PortError) -> PortResult<DiscoveryProblem> {
    match e {
        PortError::NoCredentials { .. } => Err(e),
        e => Ok(DiscoveryProblem {
            kind,
            region: region.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Builds the inventory of `kinds` for `inventory.account`. The kinds are read at the same
/// time: each service has its own pacing budget, so the slowest kind sets the pace.
pub async fn discover(
    ports: &DiscoveryPorts<'_>,
    mut inventory: Inventory,
    now: DateTime<Utc>,
    policy: &Policy,
    kinds: &[Kind],
) -> PortResult<Inventory> {
    let key_records = &inventory.key_records;
    let region = inventory.region.clone();
    let iam = async {
        if kinds.contains(&Kind::IamKeys) || kinds.contains(&Kind::Migration) {
            iam_users(ports.iam, now, policy, key_records)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let api_keys = async {
        if kinds.contains(&Kind::ApiKeys) {
            let (secrets, keys) =
                futures::try_join!(ports.secrets.secrets(), ports.api_keys.api_keys())?;
            Ok(Some((secrets, keys)))
        } else {
            Ok(None)
        }
    };
    let certs = async {
        if kinds.contains(&Kind::Certs) {
            let regions = cert_regions(policy, &region);
            let farthest = policy.certs.ladder_days.first().copied().unwrap_or(0);
            certificates(ports.certs, &regions, now, i64::from(farthest))
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    };
    let (iam, api_keys, certs) = futures::try_join!(iam, api_keys, certs)?;
    if let Some((users, root_active)) = iam {
        inventory.iam_users = users;
        inventory.root_active_keys = root_active;
    }
    if let Some((secrets, keys)) = api_keys {
        inventory.secrets = secrets;
        inventory.api_keys = keys;
    }
    if let Some((certs, problems)) = certs {
        inventory.certificates = certs;
        inventory.problems.extend(problems);
    }
    Ok(inventory)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use chrono::TimeZone;

    /// Certificates in `us-east-1`; access denied in `eu-west-1`; no credentials in `cn-north-1`.
    struct Regional;

    #[async_trait]
    impl CertInventory for Regional {
        async fn certificates(
            &self,
            region: &str,
            _detail_if: &(dyn Fn(Option<DateTime<Utc>>) -> bool + Send + Sync),
        ) -> PortResult<Vec<Certificate>> {
            match region {
                "eu-west-1" => Err(PortError::AccessDenied {
                    operation: "acm:ListCertificates".into(),
                    message: "not authorized".into(),
                }),
                "cn-north-1" => Err(PortError::NoCredentials {
                    detail: "none".into(),
                }),
                _ => Ok(vec![Certificate {
                    arn: "arn:aws:acm:us-east-1:123456789012:certificate/a".into(),
                    domain: "a.example.com".into(),
                    region: region.into(),
                    status: "ISSUED".into(),
                    cert_type: crate::domain::model::CertType::Imported,
                    not_after: None,
                    in_use: true,
                    renewal_eligibility: None,
                    renewal_status: None,
                    renewal_failure_reason: None,
                    validation_method: None,
                    key_algorithm: None,
                    tags: Default::default(),
                }]),
            }
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
    }

    #[tokio::test]
    async fn a_region_that_fails_is_reported_and_the_others_still_read() {
        let regions = ["eu-west-1".to_owned(), "us-east-1".to_owned()];
        let (certs, problems) = certificates(&Regional, &regions, now(), 45).await.unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].region, "eu-west-1");
        assert!(
            problems[0].message.contains("access denied"),
            "{}",
            problems[0].message
        );
    }

    #[tokio::test]
    async fn missing_credentials_stop_discovery_instead_of_being_blamed_on_a_region() {
        let regions = ["us-east-1".to_owned(), "cn-north-1".to_owned()];
        let err = certificates(&Regional, &regions, now(), 45)
            .await
            .unwrap_err();
        assert!(matches!(err, PortError::NoCredentials { .. }));
    }
}
