//! Migrating a workload from an IAM user's long-lived keys to a role with temporary
//! credentials. Pure: the workload identity named by the tag `keyrotor:migrate-to`, the role
//! keyrotor provisions for it (trust policy, permissions, limits), the client-side
//! configuration, and the stages that follow adoption:
//!
//! ```text
//! RoleProvisioned -> Adopted -> KeysIdle -> Guarded -> KeysDeactivated -> Migrated
//!                       (keys used again after Adopted: Regressed; rollback: RolledBack)
//! ```

use std::collections::BTreeMap;

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
/// Name of the canary guard policy put on the user.
pub const GUARD_POLICY_NAME: &str = "keyrotor-migration-guard";
/// Path of the roles keyrotor provisions.
pub const ROLE_PATH: &str = "/keyrotor/";

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

    /// The role's trust policy for this identity.
    pub fn trust_policy(&self, account: &str) -> Value {
        let statement = match self {
            WorkloadIdentity::AwsRole { arn } => json!({
                "Effect": "Allow",
                "Principal": {"AWS": arn},
                "Action": "sts:AssumeRole"
            }),
            WorkloadIdentity::Service { principal } => json!({
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole"
            }),
            WorkloadIdentity::Oidc { provider, subject } => json!({
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{account}:oidc-provider/{provider}")},
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

/// The name of the role provisioned for `user` (IAM allows 64 characters). A name too
/// long is shortened with a hash of the whole, so two users never share a role.
pub fn role_name(user: &str) -> String {
    let name = format!("keyrotor-{user}");
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
    pub max_session_seconds: u32,
    /// Limits the role would exceed: nothing is created while this is not empty.
    pub problems: Vec<String>,
}

/// Size of a policy as IAM counts it (without whitespace).
fn policy_size(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// The role for `user`'s workload, checked against IAM's limits.
pub fn role_plan(
    user: &str,
    account: &str,
    identity: &WorkloadIdentity,
    permissions: &Permissions,
    policy: &Policy,
) -> RolePlan {
    let name = role_name(user);
    let trust_policy = identity.trust_policy(account);
    let inline_policy = permissions.merged_inline();
    let mut problems = Vec::new();
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
        arn: format!("arn:aws:iam::{account}:role{ROLE_PATH}{name}"),
        name,
        path: ROLE_PATH.to_owned(),
        trust_policy,
        managed_policies: permissions.managed.clone(),
        inline_policy,
        max_session_seconds: policy.migration.max_session_hours * 3600,
        problems,
    }
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
    /// Put the guard policy on the user.
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
        let doc = oidc.trust_policy("123456789012");
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
            "arn:aws:iam::123456789012:role/keyrotor/keyrotor-app",
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
        assert_eq!(role_name("app"), "keyrotor-app");
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
            "123456789012",
            &identity,
            &permissions,
            &Policy::default(),
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
}
