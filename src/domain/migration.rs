//! Migrating a workload from an IAM user's long-lived keys to a role with temporary
//! credentials. Pure: the workload identity named by the tag `keyrotor:migrate-to`, the role
//! keyrotor provisions for it (trust policy, permissions, limits), the client-side
//! configuration, and the stages that follow adoption:
//!
//! ```text
//! RoleProvisioned -> Adopted -> KeysIdle -> Guarded -> KeysDeactivated -> Migrated
//!                       (keys used again after Adopted: Regressed; rollback: RolledBack)
//! ```
//!
//! Whom a role may trust ([`TrustScope`]): keyrotor's own account, the organization's
//! accounts and the accounts and OIDC subjects `[migration]` lists. Anything else is a
//! problem of the plan, accepted only for one user at a time with `--allow-external`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::policy::Policy;

/// IAM's default limit on the size of a role trust policy (characters, whitespace excluded).
pub const TRUST_POLICY_LIMIT: usize = 2048;
/// IAM's default quota of managed policies attached to one role.
pub const MANAGED_POLICIES_LIMIT: usize = 10;
/// IAM's limit on the aggregate size of a role's inline policies.
pub const INLINE_POLICY_LIMIT: usize = 10_240;
/// Name of the inline policy holding the user's merged inline permissions.
pub const INLINE_POLICY_NAME: &str = "keyrotor-migrated-inline";
/// Name of the canary guard: the managed policy attached to the user (and of the inline
/// policy earlier versions put on it, which is removed wherever it is found).
pub const GUARD_POLICY_NAME: &str = "keyrotor-migration-guard";
/// Path of the guard's managed policy (infra/template.yaml and infra/member-role.yaml
/// create it in every account).
pub const GUARD_POLICY_PATH: &str = "/keyrotor/";
/// Path of the roles keyrotor provisions: outside keyrotor's own `/keyrotor/` path and name,
/// so a migrated role can never pass for one of keyrotor's roles.
pub const ROLE_PATH: &str = "/migrated/";
/// Path of the roles earlier versions provisioned (`/keyrotor/keyrotor-<user>`).
pub const LEGACY_ROLE_PATH: &str = "/keyrotor/";

/// The ARN of the guard's managed policy in `account`.
pub fn guard_policy_arn(partition: &str, account: &str) -> String {
    format!("arn:{partition}:iam::{account}:policy{GUARD_POLICY_PATH}{GUARD_POLICY_NAME}")
}

/// Who will assume the new role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkloadIdentity {
    /// An IAM role (e.g. the workload's instance or task role).
    AwsRole { arn: String },
    /// An AWS service principal, e.g. `ec2.amazonaws.com`.
    Service { principal: String },
    /// An OIDC provider and the token subject, e.g. GitHub Actions.
    Oidc { provider: String, subject: String },
    /// IAM Roles Anywhere: the trust anchor and the profile the client uses.
    RolesAnywhere {
        trust_anchor: String,
        profile: String,
    },
}

/// The accepted forms of `keyrotor:migrate-to`, for error messages.
pub const IDENTITY_FORMS: &str = "arn:aws:iam::<account>:role/<name> | <service>.amazonaws.com | oidc:<provider host>:<subject> | rolesanywhere:<trust anchor ARN>,<profile ARN>";

impl WorkloadIdentity {
    /// Parses the tag value; the error says what is wrong and which forms are accepted.
    pub fn parse(value: &str) -> Result<WorkloadIdentity, String> {
        let v = value.trim();
        let bad = |why: &str| {
            Err(format!(
                "keyrotor:migrate-to = {v:?}: {why}; accepted forms: {IDENTITY_FORMS}"
            ))
        };
        if let Some(rest) = v.strip_prefix("arn:aws:iam::") {
            let Some((account, resource)) = rest.split_once(':') else {
                return bad("not an IAM ARN");
            };
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return bad("the account in the ARN is not 12 digits");
            }
            let Some(name) = resource.strip_prefix("role/") else {
                return bad("only role ARNs can assume a role here");
            };
            if name.is_empty() || name.len() > 512 || !name.chars().all(name_char) {
                return bad("the role name is empty or has characters IAM does not allow");
            }
            return Ok(WorkloadIdentity::AwsRole { arn: v.to_owned() });
        }
        if let Some(rest) = v.strip_prefix("oidc:") {
            let Some((provider, subject)) = rest.split_once(':') else {
                return bad("expected oidc:<provider host>:<subject>");
            };
            if !provider.contains('.') || provider.contains('/') {
                return bad(
                    "the provider must be a host name such as token.actions.githubusercontent.com",
                );
            }
            if subject.is_empty() || subject == "*" {
                return bad(
                    "the subject must name the workload (a bare * would trust every token of the provider)",
                );
            }
            return Ok(WorkloadIdentity::Oidc {
                provider: provider.to_owned(),
                subject: subject.to_owned(),
            });
        }
        if let Some(rest) = v.strip_prefix("rolesanywhere:") {
            let Some((anchor, profile)) = rest.split_once(',') else {
                return bad("expected rolesanywhere:<trust anchor ARN>,<profile ARN>");
            };
            let (anchor, profile) = (anchor.trim(), profile.trim());
            if !anchor.starts_with("arn:aws:rolesanywhere:") || !anchor.contains(":trust-anchor/") {
                return bad("the first ARN is not a Roles Anywhere trust anchor");
            }
            if !profile.starts_with("arn:aws:rolesanywhere:") || !profile.contains(":profile/") {
                return bad("the second ARN is not a Roles Anywhere profile");
            }
            // The trust matches the anchor with ArnEquals, where * and ? are wildcards: one
            // would trust every trust anchor (present and future) it matches.
            if anchor.contains(['*', '?']) || profile.contains(['*', '?']) {
                return bad(
                    "an ARN holds a wildcard (* or ?); name one trust anchor and one profile",
                );
            }
            if anchor.split(':').nth(3).is_none_or(str::is_empty)
                || anchor
                    .split(':')
                    .nth(4)
                    .is_none_or(|a| a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
            {
                return bad("the trust anchor ARN needs its region and 12-digit account");
            }
            return Ok(WorkloadIdentity::RolesAnywhere {
                trust_anchor: anchor.to_owned(),
                profile: profile.to_owned(),
            });
        }
        let service = v.strip_prefix("service:").unwrap_or(v);
        if let Some(name) = service.strip_suffix(".amazonaws.com")
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Ok(WorkloadIdentity::Service {
                principal: service.to_owned(),
            });
        }
        bad("not a role ARN, a service principal, an OIDC subject or a Roles Anywhere trust anchor")
    }

    /// The account the identity lives in, when it is not keyrotor's own by construction:
    /// the role's account, or the Roles Anywhere trust anchor's. A service principal and an
    /// OIDC provider are trusted through keyrotor's own account.
    pub fn account(&self) -> Option<&str> {
        match self {
            WorkloadIdentity::AwsRole { arn } => arn.split(':').nth(4),
            WorkloadIdentity::RolesAnywhere { trust_anchor, .. } => trust_anchor.split(':').nth(4),
            WorkloadIdentity::Service { .. } | WorkloadIdentity::Oidc { .. } => None,
        }
    }

    /// The role's trust policy for this identity, bounded to the accounts it may come from.
    ///
    /// - An IAM role: `aws:PrincipalAccount` is pinned to the role's account, and when that
    ///   is another account of the organization whose id is known, `aws:PrincipalOrgID` too.
    ///   The ARN principal already names the account, so the account pin only keeps the
    ///   statement bounded should the principal ever be widened by hand; the organization id
    ///   adds what the ARN cannot say: the account must still belong to the organization
    ///   when the role is assumed (an account that leaves it loses the role). The
    ///   organization condition is never put on an account outside the organization
    ///   (`--allow-external`): it could never be met there. The caller's own account needs
    ///   none: the pin to it is tighter than the organization.
    /// - A service principal: `aws:SourceAccount` = keyrotor's account, so the service can
    ///   assume the role only on behalf of this account's resources (confused deputy). A
    ///   service that does not send the key cannot assume the role: the migration then
    ///   never reaches `adopted` and nothing is retired.
    /// - OIDC: the provider of this account, the subject and the audience.
    /// - Roles Anywhere: the trust anchor (`aws:SourceArn`).
    pub fn trust_policy(&self, scope: &TrustScope) -> Value {
        let statement = match self {
            WorkloadIdentity::AwsRole { arn } => {
                let account = self.account().unwrap_or_default();
                let mut bound = serde_json::Map::new();
                bound.insert("aws:PrincipalAccount".into(), json!(account));
                if account != scope.home
                    && let Some(org) = scope.organization_id_of(account)
                {
                    bound.insert("aws:PrincipalOrgID".into(), json!(org));
                }
                json!({
                    "Effect": "Allow",
                    "Principal": {"AWS": arn},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": bound}
                })
            }
            WorkloadIdentity::Service { principal } => json!({
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": scope.home}}
            }),
            WorkloadIdentity::Oidc { provider, subject } => json!({
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:{}:iam::{}:oidc-provider/{provider}", scope.partition, scope.home)},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{provider}:sub"): subject,
                    format!("{provider}:aud"): "sts.amazonaws.com"
                }}
            }),
            WorkloadIdentity::RolesAnywhere { trust_anchor, .. } => json!({
                "Effect": "Allow",
                "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"ArnEquals": {"aws:SourceArn": trust_anchor}}
            }),
        };
        json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    /// Why this identity is outside what keyrotor trusts without being told
    /// (`--allow-external`): an account that is neither keyrotor's, nor the organization's,
    /// nor in `[migration] allowed_accounts`; an OIDC subject no entry of
    /// `[migration] allowed_oidc_subjects` matches. `None` when it is trusted.
    pub fn outside(&self, scope: &TrustScope, policy: &Policy) -> Option<String> {
        let m = &policy.migration;
        match self {
            WorkloadIdentity::Oidc { provider, subject } => {
                (!m.allowed_oidc_subjects.iter().any(|p| oidc_subject_matches(p, subject))).then(|| {
                    format!(
                        "the OIDC subject {subject:?} of {provider} matches no entry of [migration] allowed_oidc_subjects ({}); add it (exact, or a prefix ending in *) if that workload is yours",
                        if m.allowed_oidc_subjects.is_empty() {
                            "empty: no OIDC subject is trusted".to_owned()
                        } else {
                            m.allowed_oidc_subjects.join(", ")
                        }
                    )
                })
            }
            WorkloadIdentity::AwsRole { .. } | WorkloadIdentity::RolesAnywhere { .. } => {
                let account = self.account().unwrap_or_default();
                let allowed = account == scope.home
                    || scope.in_organization(account)
                    || m.allowed_accounts.iter().any(|a| a.as_str() == account);
                (!allowed).then(|| {
                    let what = match self {
                        WorkloadIdentity::AwsRole { arn } => format!("the role {arn}"),
                        _ => "the Roles Anywhere trust anchor".to_owned(),
                    };
                    let trusted = if scope.organization_accounts.is_some() {
                        "the organization".to_owned()
                    } else {
                        format!("keyrotor's account {}", scope.home)
                    };
                    format!(
                        "{what} is in account {account}, outside {trusted} and [migration] allowed_accounts: whoever controls that account would get the user's permissions; add the account to [migration] allowed_accounts if it is trusted"
                    )
                })
            }
            WorkloadIdentity::Service { .. } => None,
        }
    }

    /// The client-side change: an AWS config profile that fits the identity.
    pub fn client_profile(&self, profile: &str, role_arn: &str, session_seconds: u32) -> String {
        let head = format!(
            "[profile {profile}]\nrole_arn = {role_arn}\nduration_seconds = {session_seconds}\n"
        );
        match self {
            WorkloadIdentity::AwsRole { .. } | WorkloadIdentity::Service { .. } => format!(
                "{head}# where the workload runs: Ec2InstanceMetadata, EcsContainer or Environment\ncredential_source = Ec2InstanceMetadata\n"
            ),
            WorkloadIdentity::Oidc { .. } => format!(
                "{head}# the path where the workload's OIDC token is written\nweb_identity_token_file = /var/run/secrets/oidc/token\n"
            ),
            WorkloadIdentity::RolesAnywhere {
                trust_anchor,
                profile: ra_profile,
            } => format!(
                "[profile {profile}]\ncredential_process = aws_signing_helper credential-process --certificate /path/to/cert.pem --private-key /path/to/key.pem --trust-anchor-arn {trust_anchor} --profile-arn {ra_profile} --role-arn {role_arn}\n"
            ),
        }
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c)
}

/// Whether an entry of `[migration] allowed_oidc_subjects` admits `subject`: an entry ending
/// in `*` admits every subject that starts with the text before it (`repo:acme/*`), any
/// other entry only the subject spelled exactly so.
pub fn oidc_subject_matches(entry: &str, subject: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == entry,
    }
}

/// The organization as far as a run knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustScope {
    /// The caller's partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// keyrotor's account: the user's and the role's.
    pub home: String,
    /// The organization's accounts, listed once per run when `[accounts] organization =
    /// true`; `None` otherwise.
    pub organization_accounts: Option<BTreeSet<String>>,
    /// The organization's id (`o-…`), when it could be read.
    pub organization_id: Option<String>,
}

impl TrustScope {
    /// A run outside any organization (or one that does not use it).
    pub fn account(partition: &str, home: &str) -> TrustScope {
        TrustScope {
            partition: partition.to_owned(),
            home: home.to_owned(),
            organization_accounts: None,
            organization_id: None,
        }
    }

    /// Whether `account` is one of the organization's (keyrotor's own included).
    pub fn in_organization(&self, account: &str) -> bool {
        self.organization_accounts
            .as_ref()
            .is_some_and(|a| a.contains(account) || account == self.home)
    }

    /// The organization's id, when `account` belongs to it and the id is known.
    fn organization_id_of(&self, account: &str) -> Option<&str> {
        self.organization_id
            .as_deref()
            .filter(|_| self.in_organization(account))
    }
}

/// A policy document in a form where order does not matter: object keys sorted, every
/// list sorted and without duplicates, a one-item list the same as its item (IAM accepts
/// `"Action": "x"` and `"Action": ["x"]` alike).
fn canonical(doc: &Value) -> String {
    match doc {
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().map(canonical).collect();
            parts.sort();
            parts.dedup();
            if parts.len() == 1 {
                parts.remove(0)
            } else {
                format!("[{}]", parts.join(","))
            }
        }
        Value::Object(map) => {
            let mut parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Whether two policy documents grant the same: compared as parsed JSON, with the order
/// of statements and of every list ignored.
pub fn same_document(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

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

/// Size of a policy as IAM counts it (without whitespace).
fn policy_size(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
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

/// The principals and conditions of a trust policy, short, for messages.
fn principals(doc: &Value) -> String {
    let list = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    let parts: Vec<String> = list
        .iter()
        .map(|st| {
            let mut text = st["Principal"].to_string();
            if !st["Condition"].is_null() {
                text.push_str(&format!(" if {}", st["Condition"]));
            }
            text
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("; ")
    }
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

/// The canary guard: denies every call made with long-term credentials (those carry no
/// `aws:TokenIssueTime`), so a forgotten client fails visibly while the keys still exist.
pub fn guard_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "KeyrotorMigrationGuard",
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {"Null": {"aws:TokenIssueTime": "true"}}
        }]
    })
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
    }

    #[test]
    fn identities_parse_and_bad_values_name_the_accepted_forms() {
        assert!(matches!(
            WorkloadIdentity::parse("arn:aws:iam::123456789012:role/app-runner"),
            Ok(WorkloadIdentity::AwsRole { .. })
        ));
        assert!(matches!(
            WorkloadIdentity::parse("ec2.amazonaws.com"),
            Ok(WorkloadIdentity::Service { .. })
        ));
        assert!(matches!(
            WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app:ref:refs/heads/main"),
            Ok(WorkloadIdentity::Oidc { ref subject, .. }) if subject == "repo:acme/app:ref:refs/heads/main"
        ));
        assert!(matches!(
            WorkloadIdentity::parse(
                "rolesanywhere:arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a1,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1"
            ),
            Ok(WorkloadIdentity::RolesAnywhere { .. })
        ));
        for bad in [
            "",
            "bob",
            "arn:aws:iam::123:role/x",
            "arn:aws:iam::123456789012:user/bob",
            "oidc:token.actions.githubusercontent.com:*",
            "rolesanywhere:arn:aws:iam::123456789012:role/x",
            "rolesanywhere:arn:aws:rolesanywhere:*:123456789012:trust-anchor/*,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
            "rolesanywhere:arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a?,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
            "rolesanywhere:arn:aws:rolesanywhere::123456789012:trust-anchor/a1,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
            "EC2.amazonaws.com",
        ] {
            let e = WorkloadIdentity::parse(bad).unwrap_err();
            assert!(e.contains("accepted forms"), "{bad}: {e}");
        }
    }

    #[test]
    fn trust_policies_fit_each_identity() {
        let oidc =
            WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app:*")
                .unwrap();
        let doc = oidc.trust_policy(&TrustScope::account("aws", "123456789012"));
        let st = &doc["Statement"][0];
        assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            st["Principal"]["Federated"],
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        );
        assert_eq!(
            st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
            "repo:acme/app:*"
        );
        let profile = oidc.client_profile(
            "app",
            "arn:aws:iam::123456789012:role/migrated/migrated-app",
            3600,
        );
        assert!(profile.contains("web_identity_token_file"), "{profile}");
    }

    #[test]
    fn long_user_names_get_distinct_role_names() {
        let a = format!("{}-a", "x".repeat(60));
        let b = format!("{}-b", "x".repeat(60));
        assert_ne!(role_name(&a), role_name(&b));
        assert!(role_name(&a).len() <= 64);
        assert_eq!(role_name("app"), "migrated-app");
        assert_eq!(role_name(&a).len(), 64);
        assert!(role_name(&a).starts_with("migrated-xxx"));
    }

    #[test]
    fn limits_are_checked_before_anything_is_created() {
        let identity = WorkloadIdentity::parse("ec2.amazonaws.com").unwrap();
        let permissions = Permissions {
            managed: (0..11)
                .map(|i| format!("arn:aws:iam::aws:policy/P{i}"))
                .collect(),
            inline: vec![(
                "user".into(),
                "big".into(),
                json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x".repeat(11_000)}]}),
            )],
        };
        let plan = role_plan(
            "app",
            &TrustScope::account("aws", "123456789012"),
            &identity,
            &permissions,
            &Policy::default(),
            false,
        );
        assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
        assert!(plan.problems[0].contains("quota of 10"));
        assert!(plan.problems[1].contains("10240"));
    }

    #[test]
    fn a_migration_walks_to_migrated_and_a_key_used_again_regresses_it() {
        let p = Policy::default(); // idle 30, guard 7, delete_after 30
        let mut r = MigrationRecord {
            user: "app".into(),
            role_arn: "arn".into(),
            stage: MigrationStage::RoleProvisioned,
            since: t(0),
            provisioned_at: t(0),
            adopted_at: None,
            deactivated: Vec::new(),
            migrate_to: None,
            version: 1,
        };
        let mut f = MigrationFacts {
            role_last_used: None,
            keys_last_used: Some(t(-1)),
            active_keys: 1,
            keys: 1,
        };
        assert_eq!(next(&r, &f, &p), None, "waits for the role's first use");
        f.role_last_used = Some(t(2));
        let n = next(&r, &f, &p).unwrap();
        assert_eq!((n.to, n.at), (MigrationStage::Adopted, t(2)));
        r.stage = MigrationStage::Adopted;
        r.since = t(3);
        r.adopted_at = Some(t(3));
        assert_eq!(next(&r, &f, &p).unwrap().at, t(33));
        r.stage = MigrationStage::KeysIdle;
        r.since = t(33);
        assert_eq!(
            next(&r, &f, &p).unwrap().change,
            MigrationChange::AttachGuard
        );
        r.stage = MigrationStage::Guarded;
        let n = next(&r, &f, &p).unwrap();
        assert_eq!((n.change, n.at), (MigrationChange::DeactivateKeys, t(40)));
        f.keys_last_used = Some(t(35));
        let n = next(&r, &f, &p).unwrap();
        assert_eq!(n.to, MigrationStage::Regressed);
    }

    const HOME: &str = "111111111111";
    const MEMBER: &str = "222222222222";
    const OUTSIDE: &str = "999999999999";

    fn policy(toml: &str) -> Policy {
        Policy::from_toml(toml, "keyrotor.toml").unwrap()
    }

    fn org_scope(id: Option<&str>) -> TrustScope {
        TrustScope {
            organization_accounts: Some(BTreeSet::from([HOME.to_owned(), MEMBER.to_owned()])),
            organization_id: id.map(str::to_owned),
            ..TrustScope::account("aws", HOME)
        }
    }

    fn role(account: &str) -> WorkloadIdentity {
        WorkloadIdentity::parse(&format!("arn:aws:iam::{account}:role/runner")).unwrap()
    }

    fn some_permissions() -> Permissions {
        Permissions {
            managed: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
            inline: Vec::new(),
        }
    }

    #[test]
    fn a_role_trust_pins_the_principal_account_and_the_organization_of_a_member() {
        let conditions = |scope: &TrustScope, account: &str| {
            role(account).trust_policy(scope)["Statement"][0]["Condition"]["StringEquals"].clone()
        };
        assert_eq!(
            conditions(&org_scope(Some("o-abc123")), MEMBER),
            json!({"aws:PrincipalAccount": MEMBER, "aws:PrincipalOrgID": "o-abc123"})
        );
        // keyrotor's own account: the account pin is tighter than the organization.
        assert_eq!(
            conditions(&org_scope(Some("o-abc123")), HOME),
            json!({"aws:PrincipalAccount": HOME})
        );
        // An id that could not be read, or an account outside the organization: the pin.
        assert_eq!(
            conditions(&org_scope(None), MEMBER),
            json!({"aws:PrincipalAccount": MEMBER})
        );
        assert_eq!(
            conditions(&org_scope(Some("o-abc123")), OUTSIDE),
            json!({"aws:PrincipalAccount": OUTSIDE})
        );
    }

    #[test]
    fn a_service_principal_may_assume_the_role_only_for_the_users_account() {
        let service = WorkloadIdentity::parse("ec2.amazonaws.com").unwrap();
        let doc = service.trust_policy(&TrustScope::account("aws", HOME));
        assert_eq!(
            doc["Statement"][0]["Condition"],
            json!({"StringEquals": {"aws:SourceAccount": HOME}})
        );
    }

    #[test]
    fn a_role_outside_the_organization_and_the_allow_list_is_a_problem_unless_allowed() {
        let p = policy("");
        let plan = |scope: &TrustScope, account: &str, allow: bool, p: &Policy| {
            role_plan("app", scope, &role(account), &some_permissions(), p, allow)
        };
        let refused = plan(&org_scope(None), OUTSIDE, false, &p);
        assert_eq!(refused.problems.len(), 1, "{:?}", refused.problems);
        assert!(
            refused.problems[0].contains(OUTSIDE)
                && refused.problems[0].contains("allowed_accounts")
                && refused.problems[0].contains("--allow-external"),
            "{}",
            refused.problems[0]
        );
        assert_eq!(refused.external, None);
        // Without an organization, only keyrotor's own account is trusted.
        let single = TrustScope::account("aws", HOME);
        assert!(plan(&single, HOME, false, &p).problems.is_empty());
        assert_eq!(plan(&single, MEMBER, false, &p).problems.len(), 1);
        // The organization's accounts and the listed ones are.
        assert!(
            plan(&org_scope(None), MEMBER, false, &p)
                .problems
                .is_empty()
        );
        let listed = policy(&format!(
            "[migration]\nallowed_accounts = [\"{OUTSIDE}\"]\n"
        ));
        assert!(plan(&single, OUTSIDE, false, &listed).problems.is_empty());
        // --allow-external: no problem, but the reason is kept to be shown and audited.
        let allowed = plan(&org_scope(None), OUTSIDE, true, &p);
        assert!(allowed.problems.is_empty(), "{:?}", allowed.problems);
        assert!(allowed.external.as_deref().unwrap().contains(OUTSIDE));
    }

    #[test]
    fn an_oidc_subject_must_match_an_allow_list_entry() {
        assert!(oidc_subject_matches(
            "repo:acme/*",
            "repo:acme/app:ref:refs/heads/main"
        ));
        assert!(!oidc_subject_matches("repo:acme/*", "repo:acmeevil/app"));
        assert!(oidc_subject_matches("repo:acme/app", "repo:acme/app"));
        assert!(!oidc_subject_matches("repo:acme/app", "repo:acme/app2"));
        let identity =
            WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:evil/x")
                .unwrap();
        let scope = TrustScope::account("aws", HOME);
        let none = role_plan(
            "app",
            &scope,
            &identity,
            &some_permissions(),
            &policy(""),
            false,
        );
        assert!(
            none.problems[0].contains("allowed_oidc_subjects")
                && none.problems[0].contains("no OIDC subject is trusted"),
            "{:?}",
            none.problems
        );
        let listed = policy("[migration]\nallowed_oidc_subjects = [\"repo:acme/*\"]\n");
        let other = role_plan(
            "app",
            &scope,
            &identity,
            &some_permissions(),
            &listed,
            false,
        );
        assert!(
            other.problems[0].contains("repo:acme/*"),
            "{:?}",
            other.problems
        );
        let ours =
            WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app")
                .unwrap();
        assert!(
            role_plan("app", &scope, &ours, &some_permissions(), &listed, false)
                .problems
                .is_empty()
        );
    }

    #[test]
    fn migration_policy_keys_parse_and_bad_values_name_the_key_and_the_fix() {
        let p = policy(
            "[migration]\nallowed_accounts = [\"222222222222\"]\nallowed_oidc_subjects = [\"repo:acme/*\", \"repo:acme/app:ref:refs/heads/main\"]\npermissions_boundary = \"arn:aws:iam::111111111111:policy/boundaries/workloads\"\n",
        );
        assert_eq!(p.migration.allowed_accounts[0].as_str(), "222222222222");
        assert_eq!(p.migration.allowed_oidc_subjects.len(), 2);
        assert_eq!(
            p.migration.permissions_boundary.as_deref(),
            Some("arn:aws:iam::111111111111:policy/boundaries/workloads")
        );
        for (text, key, fix) in [
            (
                "allowed_accounts = [\"12345\"]",
                "migration.allowed_accounts",
                "12-digit",
            ),
            (
                "allowed_oidc_subjects = [\"*\"]",
                "migration.allowed_oidc_subjects",
                "prefix ending in *",
            ),
            (
                "allowed_oidc_subjects = [\"repo:*/app\"]",
                "migration.allowed_oidc_subjects",
                "only at the end",
            ),
            (
                "permissions_boundary = \"arn:aws:iam::111111111111:role/x\"",
                "migration.permissions_boundary",
                "policy/<name>",
            ),
        ] {
            let e =
                Policy::from_toml(&format!("[migration]\n{text}\n"), "keyrotor.toml").unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            assert!(e.message.contains(fix), "{text}: {e}");
            assert_eq!(e.line, 2, "{text}: {e}");
        }
    }

    #[test]
    fn policy_documents_compare_as_sets_whatever_the_order() {
        let a = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Principal": {"AWS": "x"}},
            {"Effect": "Deny", "Action": "*", "Resource": "*"}
        ]});
        let b = json!({"Statement": [
            {"Resource": ["*"], "Action": "*", "Effect": "Deny"},
            {"Principal": {"AWS": ["x"]}, "Action": ["sts:TagSession", "sts:AssumeRole"], "Effect": "Allow"}
        ], "Version": "2012-10-17"});
        assert!(same_document(&a, &b));
        let c = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Principal": {"AWS": "y"}},
            {"Effect": "Deny", "Action": "*", "Resource": "*"}
        ]});
        assert!(!same_document(&a, &c));
        assert!(!same_document(
            &guard_policy(),
            &json!({"Version": "2012-10-17", "Statement": []})
        ));
    }

    fn planned() -> RolePlan {
        role_plan(
            "app",
            &TrustScope::account("aws", HOME),
            &role(HOME),
            &some_permissions(),
            &policy(
                "[migration]\npermissions_boundary = \"arn:aws:iam::aws:policy/PowerUserAccess\"\n",
            ),
            false,
        )
    }

    #[test]
    fn only_the_planned_role_is_adopted() {
        let plan = planned();
        assert_eq!(
            plan.arn,
            format!("arn:aws:iam::{HOME}:role/migrated/migrated-app")
        );
        let trust = plan.trust_policy.to_string();
        let ok = RoleSeen {
            arn: &plan.arn,
            migrated_from: Some("app"),
            trust_policy: &trust,
            permissions_boundary: Some("arn:aws:iam::aws:policy/PowerUserAccess"),
        };
        assert_eq!(matches_plan("app", ok, &plan), Ok(()));
        let other_trust = role(MEMBER)
            .trust_policy(&TrustScope::account("aws", HOME))
            .to_string();
        let e = matches_plan(
            "app",
            RoleSeen {
                trust_policy: &other_trust,
                ..ok
            },
            &plan,
        )
        .unwrap_err();
        assert!(e.contains("differs") && e.contains(MEMBER), "{e}");
        let e = matches_plan(
            "app",
            RoleSeen {
                migrated_from: Some("bob"),
                ..ok
            },
            &plan,
        )
        .unwrap_err();
        assert!(e.contains("\"bob\""), "{e}");
        let e = matches_plan(
            "app",
            RoleSeen {
                migrated_from: None,
                ..ok
            },
            &plan,
        )
        .unwrap_err();
        assert!(e.contains("absent"), "{e}");
        let legacy = format!("arn:aws:iam::{HOME}:role/keyrotor/migrated-app");
        assert!(matches_plan("app", RoleSeen { arn: &legacy, ..ok }, &plan).is_err());
        let e = matches_plan(
            "app",
            RoleSeen {
                permissions_boundary: None,
                ..ok
            },
            &plan,
        )
        .unwrap_err();
        assert!(e.contains("permissions boundary"), "{e}");
    }

    #[test]
    fn a_migration_record_is_confirmed_only_by_the_users_tag_and_the_planned_role() {
        let plan = planned();
        let trust = plan.trust_policy.to_string();
        let tag = format!("arn:aws:iam::{HOME}:role/runner");
        let role_seen = RoleSeen {
            arn: &plan.arn,
            migrated_from: Some("app"),
            trust_policy: &trust,
            permissions_boundary: Some("arn:aws:iam::aws:policy/PowerUserAccess"),
        };
        let record = MigrationRecord {
            user: "app".into(),
            role_arn: plan.arn.clone(),
            stage: MigrationStage::KeysIdle,
            since: t(0),
            provisioned_at: t(0),
            adopted_at: Some(t(0)),
            deactivated: Vec::new(),
            migrate_to: Some(tag.clone()),
            version: 3,
        };
        assert_eq!(
            confirm(&record, Some(&tag), Ok(&plan), Some(role_seen)),
            Ok(())
        );
        let e = confirm(&record, None, Ok(&plan), Some(role_seen)).unwrap_err();
        assert!(e.contains("no longer tagged"), "{e}");
        let e = confirm(
            &record,
            Some("ec2.amazonaws.com"),
            Ok(&plan),
            Some(role_seen),
        )
        .unwrap_err();
        assert!(e.contains("names the workload identity"), "{e}");
        let e = confirm(&record, Some(&tag), Ok(&plan), None).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = confirm(&record, Some(&tag), Err("not a role"), Some(role_seen)).unwrap_err();
        assert!(e.contains("not a role"), "{e}");
        let forged = MigrationRecord {
            role_arn: format!("arn:aws:iam::{HOME}:role/keyrotor/keyrotor-app"),
            ..record.clone()
        };
        let e = confirm(&forged, Some(&tag), Ok(&plan), Some(role_seen)).unwrap_err();
        assert!(
            e.contains("earlier version") && e.contains("migrate rollback"),
            "{e}"
        );
        let wrong_trust = role(MEMBER)
            .trust_policy(&TrustScope::account("aws", HOME))
            .to_string();
        let e = confirm(
            &record,
            Some(&tag),
            Ok(&plan),
            Some(RoleSeen {
                trust_policy: &wrong_trust,
                ..role_seen
            }),
        )
        .unwrap_err();
        assert!(e.contains("differs"), "{e}");
    }

    #[test]
    fn records_keep_the_identity_they_were_provisioned_for() {
        let record = MigrationRecord {
            user: "app".into(),
            role_arn: "arn:aws:iam::111111111111:role/migrated/migrated-app".into(),
            stage: MigrationStage::RoleProvisioned,
            since: t(0),
            provisioned_at: t(0),
            adopted_at: None,
            deactivated: Vec::new(),
            migrate_to: Some("ec2.amazonaws.com".into()),
            version: 1,
        };
        let back = MigrationRecord::from_item("app", 1, &record.attrs()).unwrap();
        assert_eq!(back, record);
        let mut old = record.attrs();
        old.remove("migrate_to");
        assert_eq!(
            MigrationRecord::from_item("app", 1, &old)
                .unwrap()
                .migrate_to,
            None
        );
        assert_eq!(
            guard_policy_arn("aws-us-gov", HOME),
            "arn:aws-us-gov:iam::111111111111:policy/keyrotor/keyrotor-migration-guard"
        );
    }
}
