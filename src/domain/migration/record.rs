//! keyrotor's record of a migration in the state table: the stage it is at, and its
//! encoding as item attributes (records of earlier versions, without `migrate_to`, still
//! decode).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationStage {
    RoleProvisioned,
    Adopted,
    KeysIdle,
    Guarded,
    KeysDeactivated,
    Migrated,
    /// Keys used again after adoption: progression stopped, owner alerted.
    Regressed,
    /// `keyrotor migrate rollback`: keys reactivated, guard removed, role kept.
    RolledBack,
}

impl MigrationStage {
    /// Whether the migration owns the user's access keys at this stage: from the role's
    /// provisioning until the keys are deleted or the migration is rolled back, only the
    /// migration changes them (the IAM key sweep leaves them alone), so `migrate rollback`
    /// can restore everything that was done to them.
    pub fn owns_keys(self) -> bool {
        !matches!(self, MigrationStage::Migrated | MigrationStage::RolledBack)
    }

    pub const ALL: [MigrationStage; 8] = [
        MigrationStage::RoleProvisioned,
        MigrationStage::Adopted,
        MigrationStage::KeysIdle,
        MigrationStage::Guarded,
        MigrationStage::KeysDeactivated,
        MigrationStage::Migrated,
        MigrationStage::Regressed,
        MigrationStage::RolledBack,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStage::RoleProvisioned => "role-provisioned",
            MigrationStage::Adopted => "adopted",
            MigrationStage::KeysIdle => "keys-idle",
            MigrationStage::Guarded => "guarded",
            MigrationStage::KeysDeactivated => "keys-deactivated",
            MigrationStage::Migrated => "migrated",
            MigrationStage::Regressed => "regressed",
            MigrationStage::RolledBack => "rolled-back",
        }
    }

    pub fn parse(text: &str) -> Option<MigrationStage> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// keyrotor's record of one user's migration (state table, `migration#<account>` / user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationRecord {
    pub user: String,
    pub role_arn: String,
    pub stage: MigrationStage,
    pub since: DateTime<Utc>,
    pub provisioned_at: DateTime<Utc>,
    pub adopted_at: Option<DateTime<Utc>>,
    /// The keys this migration deactivated (the only ones a rollback reactivates).
    pub deactivated: Vec<String>,
    /// The value of `keyrotor:migrate-to` the role was provisioned for (absent in records of
    /// earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate_to: Option<String>,
    pub version: u64,
}

impl MigrationRecord {
    pub fn partition(account: &str) -> String {
        format!("migration#{account}")
    }

    pub fn attrs(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::from([
            ("role_arn".to_owned(), self.role_arn.clone()),
            ("stage".to_owned(), self.stage.as_str().to_owned()),
            ("since".to_owned(), self.since.to_rfc3339()),
            (
                "provisioned_at".to_owned(),
                self.provisioned_at.to_rfc3339(),
            ),
        ]);
        if let Some(t) = self.adopted_at {
            a.insert("adopted_at".into(), t.to_rfc3339());
        }
        if !self.deactivated.is_empty() {
            a.insert("deactivated".into(), self.deactivated.join(","));
        }
        if let Some(tag) = &self.migrate_to {
            a.insert("migrate_to".into(), tag.clone());
        }
        a
    }

    pub fn from_item(
        sk: &str,
        version: u64,
        attrs: &BTreeMap<String, String>,
    ) -> Result<MigrationRecord, String> {
        let get = |n: &str| {
            attrs
                .get(n)
                .ok_or_else(|| format!("item {sk}: attribute {n} is missing"))
        };
        let time = |n: &str, t: &str| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("item {sk}: {n} {t:?}: {e}"))
        };
        let stage = get("stage")?;
        Ok(MigrationRecord {
            user: sk.to_owned(),
            role_arn: get("role_arn")?.clone(),
            stage: MigrationStage::parse(stage)
                .ok_or_else(|| format!("item {sk}: stage {stage:?} is not known"))?,
            since: time("since", get("since")?)?,
            provisioned_at: time("provisioned_at", get("provisioned_at")?)?,
            adopted_at: match attrs.get("adopted_at") {
                Some(t) => Some(time("adopted_at", t)?),
                None => None,
            },
            deactivated: attrs
                .get("deactivated")
                .map(|d| {
                    d.split(',')
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            migrate_to: attrs.get("migrate_to").cloned(),
            version,
        })
    }
}
