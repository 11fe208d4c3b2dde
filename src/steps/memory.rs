//! In-memory ports for step tests: a state table, an audit table and a caller.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::record::{AuditRecord, StoredRecord};
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
