//! The role keyrotor provisions for a migrating user: its name and path, the permissions
//! copied from the user, IAM's limits checked before anything is created, and the checks
//! that an existing role (and a migration record) is exactly the planned one.

use serde::Serialize;
use serde_json::{Value, json};

use super::document::{policy_size, principals, same_document};
use super::{MigrationRecord, TrustScope, WorkloadIdentity};
use crate::domain::policy::Policy;

/// IAM's default limit on the size of a role trust policy (characters, whitespace excluded).
pub const TRUST_POLICY_LIMIT: usize = 2048;
/// IAM's default quota of managed policies attached to one role.
pub const MANAGED_POLICIES_LIMIT: usize = 10;
/// IAM's limit on the aggregate size of a role's inline policies.
pub const INLINE_POLICY_LIMIT: usize = 10_240;
/// Name of the inline policy holding the user's merged inline permissions.
pub const INLINE_POLICY_NAME: &str = "keyrotor-migrated-inline";
/// Path of the roles keyrotor provisions: outside keyrotor's own `/keyrotor/` path and name,
/// so a migrated role can never pass for one of keyrotor's roles.
pub const ROLE_PATH: &str = "/migrated/";
/// Path of the roles earlier versions provisioned (`/keyrotor/keyrotor-<user>`).
pub const LEGACY_ROLE_PATH: &str = "/keyrotor/";

/// The name of the role provisioned for `user` (IAM allows 64 characters). A name too
/// long is shortened with a hash of the whole, so two users never share a role.
pub fn role_name(user: &str) -> String {
    let name = format!("migrated-{user}");
    if name.len() <= 64 {
        return name;
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(user.as_bytes()));
    let head: String = name.chars().take(64 - 9).collect();
    format!("{head}-{}", &digest[..8])
}

/// A user's permissions, as IAM holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Permissions {
    /// Managed policies attached to the user or one of its groups (deduplicated).
    pub managed: Vec<String>,
    /// Inline policies of the user and its groups: (where, name, document).
    pub inline: Vec<(String, String, Value)>,
}

impl Permissions {
    /// The inline policies merged into one document (statement ids made unique).
    pub fn merged_inline(&self) -> Option<Value> {
        let mut statements = Vec::new();
        for (source, name, doc) in &self.inline {
            let list = match &doc["Statement"] {
                Value::Array(items) => items.clone(),
                Value::Null => Vec::new(),
                single => vec![single.clone()],
            };
            for (i, mut st) in list.into_iter().enumerate() {
                let sid: String = format!("{source}{name}{i}")
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect();
                st["Sid"] = Value::String(sid);
                statements.push(st);
            }
        }
        (!statements.is_empty()).then(|| json!({"Version": "2012-10-17", "Statement": statements}))
    }
}

/// The role keyrotor would create, and why it cannot, if it cannot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolePlan {
    pub name: String,
    pub path: String,
    pub arn: String,
    pub trust_policy: Value,
    pub managed_policies: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_policy: Option<Value>,
    /// `[migration] permissions_boundary`: the role's PermissionsBoundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions_boundary: Option<String>,
    pub max_session_seconds: u32,
    /// Limits the role would exceed, or an identity outside what keyrotor trusts: nothing
    /// is created while this is not empty.
    pub problems: Vec<String>,
    /// An identity outside what keyrotor trusts, accepted with `--allow-external`: why it
    /// is outside (to be shown loudly and audited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external: Option<String>,
}

/// The role for `user`'s workload, checked against IAM's limits and against whom keyrotor
/// trusts (`scope`, `[migration]`). An identity outside them is a problem unless
/// `allow_external`, in which case it is `external`.
pub fn role_plan(
    user: &str,
    scope: &TrustScope,
    identity: &WorkloadIdentity,
    permissions: &Permissions,
    policy: &Policy,
    allow_external: bool,
) -> RolePlan {
    let name = role_name(user);
    let trust_policy = identity.trust_policy(scope);
    let inline_policy = permissions.merged_inline();
    let mut problems = Vec::new();
    let mut external = None;
    if let Some(why) = identity.outside(scope, policy) {
        if allow_external {
            external = Some(why);
        } else {
            problems.push(format!(
                "{why}; to trust it for {user} anyway, run `keyrotor migrate apply {user} --allow-external`"
            ));
        }
    }
    let trust_size = policy_size(&trust_policy);
    if trust_size > TRUST_POLICY_LIMIT {
        problems.push(format!(
            "the trust policy is {trust_size} characters, over IAM's default limit of {TRUST_POLICY_LIMIT}"
        ));
    }
    if permissions.managed.len() > MANAGED_POLICIES_LIMIT {
        problems.push(format!(
            "{} managed policies are attached to {user} and its groups, over IAM's default quota of {MANAGED_POLICIES_LIMIT} per role; consolidate them first",
            permissions.managed.len()
        ));
    }
    if let Some(doc) = &inline_policy {
        let size = policy_size(doc);
        if size > INLINE_POLICY_LIMIT {
            problems.push(format!(
                "the merged inline policies are {size} characters, over IAM's limit of {INLINE_POLICY_LIMIT} per role; turn some into managed policies first"
            ));
        }
    }
    if permissions.managed.is_empty() && inline_policy.is_none() {
        problems.push(format!(
            "{user} has no permissions to copy: a role without them would not serve the workload"
        ));
    }
    RolePlan {
        arn: format!(
            "arn:{}:iam::{}:role{ROLE_PATH}{name}",
            scope.partition, scope.home
        ),
        name,
        path: ROLE_PATH.to_owned(),
        trust_policy,
        managed_policies: permissions.managed.clone(),
        inline_policy,
        permissions_boundary: policy.migration.permissions_boundary.clone(),
        max_session_seconds: policy.migration.max_session_hours * 3600,
        problems,
        external,
    }
}

/// A role as IAM has it now, as far as a migration cares.
#[derive(Debug, Clone, Copy)]
pub struct RoleSeen<'a> {
    pub arn: &'a str,
    /// The tag `keyrotor:migrated-from`.
    pub migrated_from: Option<&'a str>,
    /// The trust policy document (JSON text).
    pub trust_policy: &'a str,
    pub permissions_boundary: Option<&'a str>,
}

/// Whether an existing role is the one `plan` describes for `user`: at the planned path and
/// name, tagged `keyrotor:migrated-from` = `user`, trusting exactly the planned identity
/// (compared as parsed JSON, order ignored) and, when the plan has one, with the planned
/// permissions boundary. `Err(why)` names the first difference.
pub fn matches_plan(user: &str, role: RoleSeen<'_>, plan: &RolePlan) -> Result<(), String> {
    if role.arn != plan.arn {
        return Err(format!(
            "the role is {}, not {} (keyrotor's roles live under {ROLE_PATH})",
            role.arn, plan.arn
        ));
    }
    if role.migrated_from != Some(user) {
        return Err(format!(
            "role {} is tagged keyrotor:migrated-from = {:?}, not {user:?}",
            role.arn,
            role.migrated_from.unwrap_or("(absent)")
        ));
    }
    let trust: Value = serde_json::from_str(role.trust_policy).map_err(|e| {
        format!(
            "the trust policy of role {} is not JSON ({e}); it cannot be compared",
            role.arn
        )
    })?;
    if !same_document(&trust, &plan.trust_policy) {
        return Err(format!(
            "the trust policy of role {} differs from the one keyrotor plans for {user} (it trusts {}, the plan {})",
            role.arn,
            principals(&trust),
            principals(&plan.trust_policy)
        ));
    }
    if let Some(boundary) = &plan.permissions_boundary
        && role.permissions_boundary != Some(boundary.as_str())
    {
        return Err(format!(
            "role {} has permissions boundary {:?}, not [migration] permissions_boundary {boundary}",
            role.arn,
            role.permissions_boundary.unwrap_or("(none)")
        ));
    }
    Ok(())
}

/// Whether a migration record is backed by IAM now, before a step that guards,
/// deactivates or deletes the user's keys (a state-table item alone never is): the user
/// still carries `keyrotor:migrate-to` (`user_tag`), equal to the identity the record
/// names, and the record's role is the one [`role_plan`] makes for that identity now
/// (`plan`, `role`: see [`matches_plan`]). `Err(why)` blocks the step.
pub fn confirm(
    record: &MigrationRecord,
    user_tag: Option<&str>,
    plan: Result<&RolePlan, &str>,
    role: Option<RoleSeen<'_>>,
) -> Result<(), String> {
    let user = &record.user;
    let Some(tag) = user_tag else {
        return Err(format!(
            "{user} is no longer tagged keyrotor:migrate-to: the migration record alone does not prove a migration"
        ));
    };
    if let Some(recorded) = &record.migrate_to
        && recorded != tag
    {
        return Err(format!(
            "the record names the workload identity {recorded:?}, but {user} is tagged keyrotor:migrate-to = {tag:?}"
        ));
    }
    let plan = plan.map_err(|why| format!("keyrotor:migrate-to of {user}: {why}"))?;
    if record.role_arn != plan.arn {
        return Err(format!(
            "the record names role {}, not {} (the role keyrotor provisions for {user}{})",
            record.role_arn,
            plan.arn,
            if record
                .role_arn
                .contains(&format!(":role{LEGACY_ROLE_PATH}"))
            {
                format!(
                    "; the role was made under {LEGACY_ROLE_PATH} by an earlier version: `keyrotor migrate rollback {user}` then `keyrotor migrate apply {user}` provisions it at {ROLE_PATH}"
                )
            } else {
                String::new()
            }
        ));
    }
    let Some(role) = role else {
        return Err(format!("role {} does not exist", record.role_arn));
    };
    matches_plan(user, role, plan)
}
