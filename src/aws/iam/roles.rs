//! [`IamRoles`] over IAM: a user's effective permissions (attached, inline, through
//! groups), the migration role, and the guard's managed policy.

use async_trait::async_trait;

use super::IamClient;
use crate::aws::{classify, to_utc};
use crate::domain::migration::Permissions;
use crate::domain::model::Tags;
use crate::ports::{IamRoles, PortError, PortResult, RoleInfo};

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

    async fn put_user_policy(&self, user: &str, name: &str, document: &str) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .put_user_policy()
            .user_name(user)
            .policy_name(name)
            .policy_document(document)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:PutUserPolicy", e))
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
