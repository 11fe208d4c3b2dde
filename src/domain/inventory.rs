//! The inventory: everything discovery found in one account, with keyrotor's own records
//! of the lifecycles in progress. Input to the planner.

use serde::{Deserialize, Serialize};

use super::api_rotation::Rotation;
use super::lifecycle::KeyRecord;
use super::model::{AccountId, ApiKey, Certificate, IamUser, Kind, Secret};

/// A region-scoped discovery problem (access denied in one region, region not enabled):
/// reported, and the rest of the inventory is still planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryProblem {
    pub kind: Kind,
    pub region: String,
    pub message: String,
}

/// Everything discovery found in one account. Input to the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub account: AccountId,
    /// The region API keys and secrets were read from.
    pub region: String,
    pub iam_users: Vec<IamUser>,
    pub api_keys: Vec<ApiKey>,
    pub certificates: Vec<Certificate>,
    pub secrets: Vec<Secret>,
    /// Active access keys of the root user (from the credential report; never touched).
    pub root_active_keys: u32,
    /// keyrotor's lifecycle records of IAM access keys (from the state table).
    pub key_records: Vec<KeyRecord>,
    /// keyrotor's API key rotations in progress or done (from the state table), by old key.
    pub api_rotations: Vec<Rotation>,
    /// Users whose migration to a role has started (from the state table).
    pub migrating: Vec<String>,
    /// Users whose access keys a migration in progress owns (the IAM key lifecycle leaves
    /// them alone; see `MigrationStage::owns_keys`).
    pub migration_owned: Vec<String>,
    pub problems: Vec<DiscoveryProblem>,
}

impl Inventory {
    pub fn empty(account: AccountId, region: impl Into<String>) -> Self {
        Self {
            account,
            region: region.into(),
            iam_users: Vec::new(),
            api_keys: Vec::new(),
            certificates: Vec::new(),
            secrets: Vec::new(),
            root_active_keys: 0,
            key_records: Vec::new(),
            api_rotations: Vec::new(),
            migrating: Vec::new(),
            migration_owned: Vec::new(),
            problems: Vec::new(),
        }
    }
}
