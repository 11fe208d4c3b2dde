//! In-memory ports for step tests: a state table, an audit table and a caller.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::audit_record::{AuditRecord, StoredRecord};
use crate::domain::model::AccountId;
use crate::ports::{
    AppendError, AuditQuery, AuditStore, Caller, Identity, LeaseHolder, PortError, PortResult,
    StateItem, StateStore,
};

pub struct Me;

/// Keeps every notification sent.
#[derive(Default)]
pub struct Sent(pub Mutex<Vec<crate::ports::Notification>>);

impl Sent {
    /// The events sent, in order.
    pub fn events(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|n| n.event.clone())
            .collect()
    }
}

#[async_trait]
impl crate::ports::Notifier for Sent {
    async fn notify(&self, n: &crate::ports::Notification) -> PortResult<Option<String>> {
        self.0.lock().unwrap().push(n.clone());
        Ok(None)
    }
}

#[async_trait]
impl Identity for Me {
    async fn caller(&self) -> PortResult<Caller> {
        Ok(Caller {
            account: AccountId::parse("123456789012").unwrap(),
            arn: "arn:aws:iam::123456789012:user/tester".into(),
        })
    }
}

/// (pk, sk) -> (rank or version, attributes).
pub type StateItems = BTreeMap<(String, String), (u64, BTreeMap<String, String>)>;

#[derive(Default)]
pub struct MemState(pub Mutex<StateItems>);

#[async_trait]
impl StateStore for MemState {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<BTreeMap<String, String>>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(&(pk.into(), sk.into()))
            .map(|(_, a)| a.clone()))
    }

    async fn advance(
        &self,
        pk: &str,
        sk: &str,
        rank: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let mut map = self.0.lock().unwrap();
        let key = (pk.to_owned(), sk.to_owned());
        if map.get(&key).is_some_and(|(r, _)| *r >= rank) {
            return Ok(false);
        }
        map.insert(key, (rank, attrs.clone()));
        Ok(true)
    }

    async fn list(&self, pk: &str) -> PortResult<Vec<StateItem>> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, _), _)| p == pk)
            .map(|((_, sk), (version, attrs))| StateItem {
                sk: sk.clone(),
                version: *version,
                attrs: attrs.clone(),
            })
            .collect())
    }

    async fn put_versioned(
        &self,
        pk: &str,
        sk: &str,
        expected: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let mut map = self.0.lock().unwrap();
        let key = (pk.to_owned(), sk.to_owned());
        if map.get(&key).map_or(0, |(v, _)| *v) != expected {
            return Ok(false);
        }
        map.insert(key, (expected + 1, attrs.clone()));
        Ok(true)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> PortResult<Result<(), LeaseHolder>> {
        let mut map = self.0.lock().unwrap();
        let key = ("lease".to_owned(), name.to_owned());
        if let Some((_, attrs)) = map.get(&key) {
            let expires: DateTime<Utc> = attrs["expires_at"].parse().unwrap();
            if attrs["holder"] != holder && expires >= now {
                return Ok(Err(LeaseHolder {
                    holder: attrs["holder"].clone(),
                    expires_at: expires,
                }));
            }
        }
        let attrs = BTreeMap::from([
            ("holder".to_owned(), holder.to_owned()),
            ("expires_at".to_owned(), (now + ttl).to_rfc3339()),
        ]);
        map.insert(key, (0, attrs));
        Ok(Ok(()))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let mut map = self.0.lock().unwrap();
        let key = ("lease".to_owned(), name.to_owned());
        if map.get(&key).is_some_and(|(_, a)| a["holder"] == holder) {
            map.remove(&key);
        }
        Ok(())
    }
}

#[derive(Default)]
pub struct MemAudit {
    pub records: Mutex<Vec<AuditRecord>>,
    /// Every append fails (the audit table is unreachable).
    pub failing: bool,
}

impl MemAudit {
    /// The records of resources, without the runs' anchors, in the order written.
    pub fn resource_records(&self) -> Vec<AuditRecord> {
        self.records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.resource_id != crate::audit::ANCHOR_ID)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl AuditStore for MemAudit {
    async fn last(&self, resource: &str) -> PortResult<Option<AuditRecord>> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.resource == resource)
            .max_by_key(|r| r.seq)
            .cloned())
    }

    async fn append(&self, record: &AuditRecord) -> Result<(), AppendError> {
        if self.failing {
            return Err(AppendError::Port(PortError::Unreachable {
                operation: "dynamodb:PutItem".into(),
                detail: "connection reset".into(),
            }));
        }
        self.records.lock().unwrap().push(record.clone());
        Ok(())
    }

    async fn query(&self, _q: &AuditQuery) -> PortResult<Vec<StoredRecord>> {
        Ok(Vec::new())
    }

    async fn all(&self) -> PortResult<Vec<StoredRecord>> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .map(Ok)
            .collect())
    }
}

/// Secrets Manager with no secrets: every secret is missing.
pub struct NoSecrets;

#[async_trait]
impl crate::ports::SecretVersions for NoSecrets {
    async fn describe(&self, _s: &str) -> PortResult<Option<crate::ports::SecretDescription>> {
        Ok(None)
    }
    async fn rotate_now(&self, secret: &str) -> PortResult<String> {
        Err(PortError::NotFound {
            operation: "secretsmanager:RotateSecret".into(),
            what: secret.to_owned(),
        })
    }
    async fn stages(&self, _s: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>> {
        Ok(None)
    }
    async fn value(
        &self,
        _s: &str,
        _v: Option<&str>,
        _stage: Option<&str>,
    ) -> PortResult<Option<crate::ports::SecretValue>> {
        Ok(None)
    }
    async fn put_pending(
        &self,
        secret: &str,
        _t: &str,
        _v: &crate::ports::SecretValue,
    ) -> PortResult<()> {
        Err(PortError::NotFound {
            operation: "secretsmanager:PutSecretValue".into(),
            what: secret.to_owned(),
        })
    }
    async fn move_stage(
        &self,
        secret: &str,
        _stage: &str,
        _to: Option<&str>,
        _from: Option<&str>,
    ) -> PortResult<()> {
        Err(PortError::NotFound {
            operation: "secretsmanager:UpdateSecretVersionStage".into(),
            what: secret.to_owned(),
        })
    }
}

/// One IAM user of [`MemIam`].
#[derive(Debug, Clone, Default)]
pub struct MemUser {
    pub tags: crate::domain::model::Tags,
    pub keys: Vec<crate::domain::model::AccessKey>,
    /// Managed policies attached to the user, by ARN.
    pub attached: Vec<String>,
    /// Inline policies: name -> document.
    pub inline: BTreeMap<String, serde_json::Value>,
}

/// What [`MemIam`] holds.
#[derive(Debug, Clone, Default)]
pub struct IamWorld {
    pub users: BTreeMap<String, MemUser>,
    /// Roles by name.
    pub roles: BTreeMap<String, crate::ports::RoleInfo>,
    /// Managed policies: ARN -> document of the default version.
    pub policies: BTreeMap<String, serde_json::Value>,
    /// Every change made through the ports, in order (`"AttachUserPolicy app <arn>"`).
    pub changes: Vec<String>,
}

/// IAM in memory for the migration's step tests: users (tags, keys, policies), roles and
/// managed policies, in the account of [`Me`].
#[derive(Default)]
pub struct MemIam(pub Mutex<IamWorld>);

impl MemIam {
    fn change(&self, what: String) {
        self.0.lock().unwrap().changes.push(what);
    }

    /// The changes made so far.
    pub fn changes(&self) -> Vec<String> {
        self.0.lock().unwrap().changes.clone()
    }

    fn no_user(operation: &str, user: &str) -> PortError {
        PortError::NotFound {
            operation: operation.into(),
            what: format!("no user {user}"),
        }
    }
}

#[async_trait]
impl crate::ports::IamInventory for MemIam {
    async fn credential_report(
        &self,
        _now: DateTime<Utc>,
        _max_age_hours: u32,
    ) -> PortResult<Vec<crate::domain::credential_report::ReportRow>> {
        Ok(Vec::new())
    }

    async fn access_keys(&self, user: &str) -> PortResult<Vec<crate::domain::model::AccessKey>> {
        let world = self.0.lock().unwrap();
        let u = world
            .users
            .get(user)
            .ok_or_else(|| Self::no_user("iam:ListAccessKeys", user))?;
        Ok(u.keys
            .iter()
            .map(|k| crate::domain::model::AccessKey {
                last_used: None,
                ..k.clone()
            })
            .collect())
    }

    async fn user_tags(&self, user: &str) -> PortResult<crate::domain::model::Tags> {
        let world = self.0.lock().unwrap();
        world
            .users
            .get(user)
            .map(|u| u.tags.clone())
            .ok_or_else(|| Self::no_user("iam:ListUserTags", user))
    }

    async fn key_last_used(
        &self,
        key: &crate::domain::model::AccessKeyId,
    ) -> PortResult<Option<crate::domain::model::LastUsed>> {
        let world = self.0.lock().unwrap();
        Ok(world
            .users
            .values()
            .flat_map(|u| &u.keys)
            .find(|k| &k.id == key)
            .and_then(|k| k.last_used.clone()))
    }

    async fn key_owner(
        &self,
        key: &crate::domain::model::AccessKeyId,
    ) -> PortResult<Option<String>> {
        let world = self.0.lock().unwrap();
        Ok(world
            .users
            .iter()
            .find(|(_, u)| u.keys.iter().any(|k| &k.id == key))
            .map(|(name, _)| name.clone()))
    }

    async fn user(&self, name: &str) -> PortResult<Option<crate::domain::model::IamUser>> {
        let world = self.0.lock().unwrap();
        Ok(world
            .users
            .get(name)
            .map(|u| crate::domain::model::IamUser {
                name: name.to_owned(),
                arn: format!("arn:aws:iam::123456789012:user/{name}"),
                path: "/".into(),
                created: DateTime::<Utc>::MIN_UTC,
                tags: u.tags.clone(),
                keys: Vec::new(),
                is_root: false,
            }))
    }
}

#[async_trait]
impl crate::ports::IamKeyAdmin for MemIam {
    async fn create_key(
        &self,
        user: &str,
    ) -> PortResult<(crate::domain::model::AccessKeyId, crate::ports::SecretValue)> {
        Err(PortError::Other {
            operation: "iam:CreateAccessKey".into(),
            message: format!("not faked (user {user})"),
        })
    }

    async fn set_key_active(
        &self,
        user: &str,
        key: &crate::domain::model::AccessKeyId,
        active: bool,
    ) -> PortResult<()> {
        {
            let mut world = self.0.lock().unwrap();
            let u = world
                .users
                .get_mut(user)
                .ok_or_else(|| Self::no_user("iam:UpdateAccessKey", user))?;
            for k in u.keys.iter_mut().filter(|k| &k.id == key) {
                k.status = if active {
                    crate::domain::model::KeyStatus::Active
                } else {
                    crate::domain::model::KeyStatus::Inactive
                };
            }
        }
        self.change(format!("UpdateAccessKey {user} {key} active={active}"));
        Ok(())
    }

    async fn delete_key(
        &self,
        user: &str,
        key: &crate::domain::model::AccessKeyId,
    ) -> PortResult<()> {
        {
            let mut world = self.0.lock().unwrap();
            let u = world
                .users
                .get_mut(user)
                .ok_or_else(|| Self::no_user("iam:DeleteAccessKey", user))?;
            u.keys.retain(|k| &k.id != key);
        }
        self.change(format!("DeleteAccessKey {user} {key}"));
        Ok(())
    }
}

#[async_trait]
impl crate::ports::IamRoles for MemIam {
    async fn user_permissions(
        &self,
        user: &str,
    ) -> PortResult<crate::domain::migration::Permissions> {
        let world = self.0.lock().unwrap();
        let u = world
            .users
            .get(user)
            .ok_or_else(|| Self::no_user("iam:ListAttachedUserPolicies", user))?;
        Ok(crate::domain::migration::Permissions {
            managed: u
                .attached
                .iter()
                .filter(|a| !a.ends_with(crate::domain::migration::GUARD_POLICY_NAME))
                .cloned()
                .collect(),
            inline: u
                .inline
                .iter()
                .filter(|(n, _)| *n != crate::domain::migration::GUARD_POLICY_NAME)
                .map(|(n, d)| ("user".to_owned(), n.clone(), d.clone()))
                .collect(),
        })
    }

    async fn role(&self, name: &str) -> PortResult<Option<crate::ports::RoleInfo>> {
        Ok(self.0.lock().unwrap().roles.get(name).cloned())
    }

    async fn create_role(
        &self,
        name: &str,
        path: &str,
        trust_policy: &str,
        _max_session_seconds: u32,
        permissions_boundary: Option<&str>,
        tags: &crate::domain::model::Tags,
    ) -> PortResult<String> {
        let arn = {
            let mut world = self.0.lock().unwrap();
            world
                .roles
                .entry(name.to_owned())
                .or_insert_with(|| crate::ports::RoleInfo {
                    arn: format!("arn:aws:iam::123456789012:role{path}{name}"),
                    last_used: None,
                    trust_policy: trust_policy.to_owned(),
                    tags: tags.clone(),
                    permissions_boundary: permissions_boundary.map(str::to_owned),
                })
                .arn
                .clone()
        };
        self.change(format!("CreateRole {name}"));
        Ok(arn)
    }

    async fn attach_role_policy(&self, role: &str, policy_arn: &str) -> PortResult<()> {
        self.change(format!("AttachRolePolicy {role} {policy_arn}"));
        Ok(())
    }

    async fn put_role_policy(&self, role: &str, name: &str, _document: &str) -> PortResult<()> {
        self.change(format!("PutRolePolicy {role} {name}"));
        Ok(())
    }

    async fn managed_policy_document(
        &self,
        policy_arn: &str,
    ) -> PortResult<Option<serde_json::Value>> {
        Ok(self.0.lock().unwrap().policies.get(policy_arn).cloned())
    }

    async fn attach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()> {
        {
            let mut world = self.0.lock().unwrap();
            let u = world
                .users
                .get_mut(user)
                .ok_or_else(|| Self::no_user("iam:AttachUserPolicy", user))?;
            if !u.attached.iter().any(|a| a == policy_arn) {
                u.attached.push(policy_arn.to_owned());
            }
        }
        self.change(format!("AttachUserPolicy {user} {policy_arn}"));
        Ok(())
    }

    async fn detach_user_policy(&self, user: &str, policy_arn: &str) -> PortResult<()> {
        {
            let mut world = self.0.lock().unwrap();
            if let Some(u) = world.users.get_mut(user) {
                u.attached.retain(|a| a != policy_arn);
            }
        }
        self.change(format!("DetachUserPolicy {user} {policy_arn}"));
        Ok(())
    }

    async fn put_user_policy(&self, user: &str, name: &str, document: &str) -> PortResult<()> {
        let value = serde_json::from_str(document).map_err(|e| PortError::Other {
            operation: "iam:PutUserPolicy".into(),
            message: format!("malformed policy document: {e}"),
        })?;
        {
            let mut world = self.0.lock().unwrap();
            let Some(u) = world.users.get_mut(user) else {
                return Err(PortError::NotFound {
                    operation: "iam:PutUserPolicy".into(),
                    what: format!("user {user}"),
                });
            };
            u.inline.insert(name.to_owned(), value);
        }
        self.change(format!("PutUserPolicy {user} {name}"));
        Ok(())
    }

    async fn delete_user_policy(&self, user: &str, name: &str) -> PortResult<bool> {
        let deleted = {
            let mut world = self.0.lock().unwrap();
            world
                .users
                .get_mut(user)
                .is_some_and(|u| u.inline.remove(name).is_some())
        };
        if deleted {
            self.change(format!("DeleteUserPolicy {user} {name}"));
        }
        Ok(deleted)
    }
}
