//! `keyrotor migrate status`: the migration funnel, read-only — every candidate (a user
//! tagged for migration, with an active key) and every migration in progress, with the
//! count per stage.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{MigrationPorts, MigrationStore};
use crate::domain::model::TAG_MIGRATE_TO;
use crate::domain::policy::Policy;
use crate::steps::{StepError, discover};

/// One user in `keyrotor migrate status`.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub user: String,
    pub migrate_to: Option<String>,
    /// `candidate` when no migration has started.
    pub stage: String,
    pub since: Option<DateTime<Utc>>,
}

/// `keyrotor migrate status`: every candidate (tagged user with active keys) and every
/// migration in progress, with the count per stage.
#[derive(Debug, Clone, Serialize)]
pub struct Funnel {
    pub users: Vec<Candidate>,
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// Every migration candidate and migration in progress of the account (or only `only`).
pub async fn status(
    ports: &MigrationPorts<'_>,
    policy: &Policy,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Funnel, StepError> {
    let caller = ports.identity.caller().await?;
    let recs = MigrationStore::new(ports.state, &caller.account)
        .list()
        .await?;
    let mut users: Vec<Candidate> = recs
        .iter()
        .map(|r| Candidate {
            user: r.user.clone(),
            migrate_to: None,
            stage: r.stage.as_str().to_owned(),
            since: Some(r.since),
        })
        .collect();
    let mut discovery = policy.clone();
    discovery.migration.enabled = true;
    let (found, _) = discover::iam_users(ports.iam, now, &discovery, &[]).await?;
    for u in found {
        let Some(tag) = u.tags.get(TAG_MIGRATE_TO) else {
            continue;
        };
        match users.iter_mut().find(|c| c.user == u.name) {
            Some(c) => c.migrate_to = Some(tag.clone()),
            None => users.push(Candidate {
                user: u.name.clone(),
                migrate_to: Some(tag.clone()),
                stage: "candidate".into(),
                since: None,
            }),
        }
    }
    if let Some(only) = only {
        users.retain(|c| c.user == only);
        if users.is_empty() {
            return Err(StepError::InvalidInput(format!(
                "{only} is neither a migration candidate (tagged {TAG_MIGRATE_TO}, with an active key) nor being migrated"
            )));
        }
    }
    users.sort_by(|a, b| a.user.cmp(&b.user));
    let mut counts = std::collections::BTreeMap::new();
    for c in &users {
        *counts.entry(c.stage.clone()).or_insert(0) += 1;
    }
    Ok(Funnel { users, counts })
}
