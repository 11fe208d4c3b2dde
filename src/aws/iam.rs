//! IAM: the credential report, access keys, user tags and key last-use, the two key
//! changes keyrotor makes (status, deletion), and what a migration to a role reads and
//! changes (the user's permissions, the role, the guard's managed policy). Every call is
//! paced client-side: IAM's control plane allows few calls per second and publishes no
//! exact rate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};

use super::{Pacer, classify, to_utc};
use crate::domain::credential_report::{self, ReportRow};
use crate::domain::migration::Permissions;
use crate::domain::model::{AccessKey, AccessKeyId, IamUser, KeyStatus, LastUsed, Tags};
use crate::ports::{
    IamInventory, IamKeyAdmin, IamRoles, PortError, PortResult, RoleInfo, SecretValue,
};

/// How long to wait for AWS to finish generating a credential report.
const REPORT_WAIT: Duration = Duration::from_secs(120);

/// [`IamInventory`] and [`IamKeyAdmin`] over the IAM API.
pub struct IamClient {
    client: aws_sdk_iam::Client,
    pacer: Arc<Pacer>,
}

impl IamClient {
    /// An adapter over `client` whose calls wait for `pacer` (the account's IAM budget).
    pub fn new(client: aws_sdk_iam::Client, pacer: Arc<Pacer>) -> Self {
        Self { client, pacer }
    }

    /// The account's IAM adapter, paced by the account's IAM pacer.
    pub fn of(aws: &super::Aws) -> Self {
        Self::new(aws.iam(), aws.pacer(super::Service::Iam))
    }

    /// GetCredentialReport: `Ok(None)` when there is none, it expired, or it is still being
    /// generated.
    async fn get_report(&self) -> PortResult<Option<(Option<DateTime<Utc>>, Vec<u8>)>> {
        const OP: &str = "iam:GetCredentialReport";
        self.pacer.wait().await;
        match self.client.get_credential_report().send().await {
            Ok(out) => {
                let content = out
                    .content()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                Ok(Some((out.generated_time().and_then(to_utc), content)))
            }
            Err(e) => match e.as_service_error() {
                Some(
                    GetCredentialReportError::CredentialReportNotPresentException(_)
                    | GetCredentialReportError::CredentialReportExpiredException(_)
                    | GetCredentialReportError::CredentialReportNotReadyException(_),
                ) => Ok(None),
                _ => Err(classify(OP, e)),
            },
        }
    }
}

/// One ListAccessKeys entry as a domain key (last use is filled in later).
fn access_key(user: &str, meta: &aws_sdk_iam::types::AccessKeyMetadata) -> PortResult<AccessKey> {
    const OP: &str = "iam:ListAccessKeys";
    let invalid = |message: String| PortError::InvalidResponse {
        operation: OP.into(),
        message,
    };
    let id = AccessKeyId::parse(meta.access_key_id().unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    let created = meta
        .create_date()
        .and_then(to_utc)
        .ok_or_else(|| invalid(format!("key {id} of {user} has no CreateDate")))?;
    let status = match meta.status() {
        Some(StatusType::Active) => KeyStatus::Active,
        // Anything not plainly active is treated as inactive: never a reason to delete
        // (deletion also needs the quiet period), and never mistaken for a live key.
        _ => KeyStatus::Inactive,
    };
    Ok(AccessKey {
        id,
        status,
        created,
        last_used: None,
    })
}

fn parse_report(content: &[u8]) -> PortResult<Vec<ReportRow>> {
    credential_report::parse(content).map_err(|e| PortError::InvalidResponse {
        operation: "iam:GetCredentialReport".into(),
        message: e.to_string(),
    })
}

#[async_trait]
impl IamInventory for IamClient {
    async fn credential_report(
        &self,
        now: DateTime<Utc>,
        max_age_hours: u32,
    ) -> PortResult<Vec<ReportRow>> {
        if let Some((generated, content)) = self.get_report().await?
            && generated
                .is_some_and(|g| now - g <= chrono::Duration::hours(i64::from(max_age_hours)))
        {
            return parse_report(&content);
        }
        self.pacer.wait().await;
        self.client
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| classify("iam:GenerateCredentialReport", e))?;
        // AWS generates the report asynchronously; GetCredentialReport answers
        // ReportInProgress until it is ready. AWS regenerates at most every 4 hours, so the
        // report obtained after generating is used whatever its age.
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            if let Some((_, content)) = self.get_report().await? {
                return parse_report(&content);
            }
            if started.elapsed() > REPORT_WAIT {
                return Err(PortError::Other {
                    operation: "iam:GetCredentialReport".into(),
                    message: format!(
                        "the credential report was still being generated after {}s; run again in a minute",
                        REPORT_WAIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn access_keys(&self, user: &str) -> PortResult<Vec<AccessKey>> {
        const OP: &str = "iam:ListAccessKeys";
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let out = self
                .client
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for meta in out.access_key_metadata() {
                keys.push(access_key(user, meta)?);
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    async fn user_tags(&self, user: &str) -> PortResult<Tags> {
        const OP: &str = "iam:ListUserTags";
        let mut tags = Tags::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let out = self
                .client
                .list_user_tags()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for tag in out.tags() {
                tags.insert(tag.key().to_owned(), tag.value().to_owned());
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(tags),
            }
        }
    }

    async fn user(&self, name: &str) -> PortResult<Option<IamUser>> {
        const OP: &str = "iam:GetUser";
        self.pacer.wait().await;
        let out = match self.client.get_user().user_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match classify(OP, e) {
                    PortError::NotFound { .. } => Ok(None),
                    e => Err(e),
                };
            }
        };
        let Some(user) = out.user() else {
            return Err(PortError::InvalidResponse {
                operation: OP.into(),
                message: format!("no user in the answer for {name}"),
            });
        };
        let tags = match self.user_tags(name).await {
            Ok(tags) => tags,
            Err(PortError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(IamUser {
            name: user.user_name().to_owned(),
            arn: user.arn().to_owned(),
            path: user.path().to_owned(),
            created: to_utc(user.create_date()).unwrap_or(DateTime::<Utc>::MIN_UTC),
            tags,
            keys: Vec::new(),
            is_root: false,
        }))
    }

    async fn key_owner(&self, key: &AccessKeyId) -> PortResult<Option<String>> {
        const OP: &str = "iam:GetAccessKeyLastUsed";
        self.pacer.wait().await;
        match self
            .client
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(out.user_name().filter(|u| !u.is_empty()).map(str::to_owned)),
            Err(e) => match classify(OP, e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn key_last_used(&self, key: &AccessKeyId) -> PortResult<Option<LastUsed>> {
        const OP: &str = "iam:GetAccessKeyLastUsed";
        self.pacer.wait().await;
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let Some(used) = out.access_key_last_used() else {
            return Ok(None);
        };
        let known = |s: &str| (!s.is_empty() && s != "N/A").then(|| s.to_owned());
        Ok(used.last_used_date().and_then(to_utc).map(|at| LastUsed {
            at,
            service: known(used.service_name()),
            region: known(used.region()),
        }))
    }
}

#[async_trait]
impl IamKeyAdmin for IamClient {
    async fn create_key(&self, user: &str) -> PortResult<(AccessKeyId, SecretValue)> {
        const OP: &str = "iam:CreateAccessKey";
        self.pacer.wait().await;
        let out = self
            .client
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let key = out.access_key().ok_or_else(|| PortError::InvalidResponse {
            operation: OP.into(),
            message: "no access key in the response".into(),
        })?;
        let id =
            AccessKeyId::parse(key.access_key_id()).map_err(|e| PortError::InvalidResponse {
                operation: OP.into(),
                message: e.to_string(),
            })?;
        Ok((id, SecretValue::new(key.secret_access_key().to_owned())))
    }

    async fn set_key_active(&self, user: &str, key: &AccessKeyId, active: bool) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .status(if active {
                StatusType::Active
            } else {
                StatusType::Inactive
            })
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:UpdateAccessKey", e))
    }

    async fn delete_key(&self, user: &str, key: &AccessKeyId) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .delete_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:DeleteAccessKey", e))
    }
}

/// IAM returns policy documents URL-encoded; decodes `%XX` (and leaves the rest).
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|b| hex(*b)),
            bytes.get(i + 2).and_then(|b| hex(*b)),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn policy_json(operation: &str, document: &str) -> PortResult<serde_json::Value> {
    serde_json::from_str(&url_decode(document)).map_err(|e| PortError::InvalidResponse {
        operation: operation.into(),
        message: format!("the policy document is not JSON: {e}"),
    })
}

/// Whose policies to read.
#[derive(Clone, Copy)]
enum Owner<'a> {
    User(&'a str),
    Group(&'a str),
}

impl IamClient {
    async fn attached(&self, owner: Owner<'_>) -> PortResult<Vec<String>> {
        let mut arns = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let (page, truncated, next) = match owner {
                Owner::User(u) => {
                    let out = self
                        .client
                        .list_attached_user_policies()
                        .user_name(u)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify("iam:ListAttachedUserPolicies", e))?;
                    (
                        out.attached_policies().to_vec(),
                        out.is_truncated(),
                        out.marker().map(str::to_owned),
                    )
                }
                Owner::Group(g) => {
                    let out = self
                        .client
                        .list_attached_group_policies()
                        .group_name(g)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify("iam:ListAttachedGroupPolicies", e))?;
                    (
                        out.attached_policies().to_vec(),
                        out.is_truncated(),
                        out.marker().map(str::to_owned),
                    )
                }
            };
            // The guard keyrotor attaches to a migrating user is not a permission to copy.
            let guard = format!(
                ":policy{}{}",
                crate::domain::migration::GUARD_POLICY_PATH,
                crate::domain::migration::GUARD_POLICY_NAME
            );
            arns.extend(
                page.iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned))
                    .filter(|arn| !arn.ends_with(&guard)),
            );
            match (truncated, next) {
                (true, Some(m)) => marker = Some(m),
                _ => return Ok(arns),
            }
        }
    }

    async fn inline(&self, owner: Owner<'_>) -> PortResult<Vec<(String, serde_json::Value)>> {
        let mut names = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let (page, truncated, next) = match owner {
                Owner::User(u) => {
                    let out = self
                        .client
                        .list_user_policies()
                        .user_name(u)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify("iam:ListUserPolicies", e))?;
                    (
                        out.policy_names().to_vec(),
                        out.is_truncated(),
                        out.marker().map(str::to_owned),
                    )
                }
                Owner::Group(g) => {
                    let out = self
                        .client
                        .list_group_policies()
                        .group_name(g)
                        .set_marker(marker.take())
                        .send()
                        .await
                        .map_err(|e| classify("iam:ListGroupPolicies", e))?;
                    (
                        out.policy_names().to_vec(),
                        out.is_truncated(),
                        out.marker().map(str::to_owned),
                    )
                }
            };
            names.extend(page);
            match (truncated, next) {
                (true, Some(m)) => marker = Some(m),
                _ => break,
            }
        }
        let mut docs = Vec::new();
        for name in names {
            // The guard keyrotor puts on a migrating user is not a permission to copy.
            if name == crate::domain::migration::GUARD_POLICY_NAME {
                continue;
            }
            self.pacer.wait().await;
            let doc = match owner {
                Owner::User(u) => {
                    let out = self
                        .client
                        .get_user_policy()
                        .user_name(u)
                        .policy_name(&name)
                        .send()
                        .await
                        .map_err(|e| classify("iam:GetUserPolicy", e))?;
                    policy_json("iam:GetUserPolicy", out.policy_document())?
                }
                Owner::Group(g) => {
                    let out = self
                        .client
                        .get_group_policy()
                        .group_name(g)
                        .policy_name(&name)
                        .send()
                        .await
                        .map_err(|e| classify("iam:GetGroupPolicy", e))?;
                    policy_json("iam:GetGroupPolicy", out.policy_document())?
                }
            };
            docs.push((name, doc));
        }
        Ok(docs)
    }
}

#[async_trait]
impl IamRoles for IamClient {
    async fn user_permissions(&self, user: &str) -> PortResult<Permissions> {
        let mut managed = self.attached(Owner::User(user)).await?;
        let mut inline: Vec<(String, String, serde_json::Value)> = self
            .inline(Owner::User(user))
            .await?
            .into_iter()
            .map(|(n, d)| ("user".to_owned(), n, d))
            .collect();
        let mut groups = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let out = self
                .client
                .list_groups_for_user()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("iam:ListGroupsForUser", e))?;
            groups.extend(out.groups().iter().map(|g| g.group_name().to_owned()));
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => break,
            }
        }
        for group in groups {
            managed.extend(self.attached(Owner::Group(&group)).await?);
            inline.extend(
                self.inline(Owner::Group(&group))
                    .await?
                    .into_iter()
                    .map(|(n, d)| (format!("group{group}"), n, d)),
            );
        }
        managed.sort();
        managed.dedup();
        Ok(Permissions { managed, inline })
    }

    async fn role(&self, name: &str) -> PortResult<Option<RoleInfo>> {
        self.pacer.wait().await;
        match self.client.get_role().role_name(name).send().await {
            Ok(out) => {
                let Some(role) = out.role() else {
                    return Ok(None);
                };
                Ok(Some(RoleInfo {
                    arn: role.arn().to_owned(),
                    last_used: role
                        .role_last_used()
                        .and_then(|u| u.last_used_date())
                        .and_then(to_utc),
                    trust_policy: url_decode(
                        role.assume_role_policy_document().unwrap_or_default(),
                    ),
                    tags: role
                        .tags()
                        .iter()
                        .map(|t| (t.key().to_owned(), t.value().to_owned()))
                        .collect(),
                    permissions_boundary: role
                        .permissions_boundary()
                        .and_then(|b| b.permissions_boundary_arn())
                        .map(str::to_owned),
                }))
            }
            Err(e) => match classify("iam:GetRole", e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn create_role(
        &self,
        name: &str,
        path: &str,
        trust_policy: &str,
        max_session_seconds: u32,
        permissions_boundary: Option<&str>,
        tags: &Tags,
    ) -> PortResult<String> {
        const OP: &str = "iam:CreateRole";
        self.pacer.wait().await;
        let tags = tags
            .iter()
            .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PortError::Other {
                operation: OP.into(),
                message: e.to_string(),
            })?;
        match self
            .client
            .create_role()
            .role_name(name)
            .path(path)
            .assume_role_policy_document(trust_policy)
            .max_session_duration(max_session_seconds as i32)
            .set_permissions_boundary(permissions_boundary.map(str::to_owned))
            .set_tags(Some(tags))
            .send()
            .await
        {
            Ok(out) => Ok(out.role().map(|r| r.arn().to_owned()).unwrap_or_default()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_entity_already_exists_exception()) =>
            {
                self.role(name)
                    .await?
                    .map(|r| r.arn)
                    .ok_or_else(|| PortError::Conflict {
                        operation: OP.into(),
                        message: format!("role {name} exists and vanished"),
                    })
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:AttachRolePolicy", e))
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .put_role_policy()
            .role_name(role)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:PutRolePolicy", e))
    }

    async fn managed_policy_document(
        &self,
        policy_arn: &str,
    ) -> PortResult<Option<serde_json::Value>> {
        self.pacer.wait().await;
        let policy = match self.client.get_policy().policy_arn(policy_arn).send().await {
            Ok(out) => out,
            Err(e) => {
                return match classify("iam:GetPolicy", e) {
                    PortError::NotFound { .. } => Ok(None),
                    e => Err(e),
                };
            }
        };
        let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else {
            return Err(PortError::InvalidResponse {
                operation: "iam:GetPolicy".into(),
                message: format!("policy {policy_arn} has no default version"),
            });
        };
        self.pacer.wait().await;
        let out = self
            .client
            .get_policy_version()
            .policy_arn(policy_arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| classify("iam:GetPolicyVersion", e))?;
        let document = out
            .policy_version()
            .and_then(|v| v.document())
            .ok_or_else(|| PortError::InvalidResponse {
                operation: "iam:GetPolicyVersion".into(),
                message: format!("version {version} of {policy_arn} has no document"),
            })?;
        policy_json("iam:GetPolicyVersion", document).map(Some)
    }

    async fn attach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .attach_user_policy()
            .user_name(user)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:AttachUserPolicy", e))
    }

    async fn detach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()> {
        self.pacer.wait().await;
        match self
            .client
            .detach_user_policy()
            .user_name(user)
            .policy_arn(policy_arn)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("iam:DetachUserPolicy", e) {
                PortError::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn delete_user_policy(&self, user: &str, name: &str) -> PortResult<bool> {
        self.pacer.wait().await;
        match self
            .client
            .delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match classify("iam:DeleteUserPolicy", e) {
                PortError::NotFound { .. } => Ok(false),
                e => Err(e),
            },
        }
    }
}
