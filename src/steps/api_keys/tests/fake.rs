//! An in-memory account for the API key rotation tests (API Gateway, Secrets Manager, the
//! state and audit tables), in which every call can be the one after which the run is
//! killed, and which checks the consumer promise after every call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use tokio::sync::Notify;

use crate::domain::api_rotation::ApiKeySecret;
use crate::domain::audit_record::{AuditRecord, StoredRecord};
use crate::domain::model::{ApiKey, Secret, Tags};
use crate::ports::{
    ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory, AppendError, AuditQuery, AuditStore, LeaseHolder,
    PortResult, SecretInventory, SecretValue, SecretVersions, StateItem, StateStore,
};
use crate::steps::memory::{MemAudit, MemState, Sent};

pub(super) const OLD: &str = "key0";
pub(super) const SECRET: &str = "orders/api-key";
pub(super) const PLANS: [&str; 2] = ["plan-a", "plan-b"];

pub(super) fn t(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
}

/// Counts calls; at call `kill_at` the call takes effect and then never returns, and the
/// test leaks the run: a process killed right after an AWS call (which runs no destructors).
#[derive(Default)]
pub(super) struct Killer {
    pub(super) calls: AtomicUsize,
    pub(super) kill_at: AtomicUsize,
    pub(super) killed: Notify,
}

impl Killer {
    async fn tick(&self) {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.kill_at.load(Ordering::SeqCst) {
            self.killed.notify_one();
            std::future::pending::<()>().await;
        }
    }
}

#[derive(Clone)]
pub(super) struct Key {
    name: String,
    description: Option<String>,
    enabled: bool,
    tags: Tags,
    value: String,
}

#[derive(Default)]
pub(super) struct Aws {
    pub(super) keys: BTreeMap<String, Key>,
    pub(super) plans: BTreeMap<String, BTreeSet<String>>,
    /// Version id -> (value, stages).
    pub(super) versions: BTreeMap<String, (String, Vec<String>)>,
    pub(super) created: usize,
}

impl Aws {
    fn new() -> Aws {
        let mut aws = Aws::default();
        aws.keys.insert(
            OLD.into(),
            Key {
                name: "orders-client".into(),
                description: Some("orders".into()),
                enabled: true,
                tags: Tags::from([("keyrotor:secret".to_owned(), SECRET.to_owned())]),
                value: "value-0".into(),
            },
        );
        for p in PLANS {
            aws.plans.insert(p.into(), BTreeSet::from([OLD.to_owned()]));
        }
        aws.versions.insert(
            "v0".into(),
            (
                ApiKeySecret {
                    api_key_id: OLD.into(),
                    value: "value-0".into(),
                }
                .to_json(),
                vec!["AWSCURRENT".into()],
            ),
        );
        aws
    }

    /// The consumer promise: AWSCURRENT names an enabled key with that value in every plan.
    pub(super) fn violation(&self) -> Option<String> {
        let (body, _) = self
            .versions
            .values()
            .find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT"))?;
        let current = ApiKeySecret::parse(body).ok()?;
        let key = self.keys.get(&current.api_key_id);
        let serves = key.is_some_and(|k| k.enabled && k.value == current.value)
            && PLANS
                .iter()
                .all(|p| self.plans[*p].contains(&current.api_key_id));
        (!serves).then(|| {
            format!(
                "AWSCURRENT names {} which does not serve",
                current.api_key_id
            )
        })
    }
}

pub(super) struct Fake {
    pub(super) aws: Mutex<Aws>,
    pub(super) killer: Killer,
    pub(super) violations: Mutex<Vec<String>>,
    pub(super) state: MemState,
    pub(super) audit: MemAudit,
    pub(super) sent: Sent,
}

impl Fake {
    pub(super) fn new() -> Fake {
        Fake {
            aws: Mutex::new(Aws::new()),
            killer: Killer::default(),
            violations: Mutex::new(Vec::new()),
            state: MemState::default(),
            audit: MemAudit::default(),
            sent: Sent::default(),
        }
    }

    /// Applies `f` to the account, checks the consumer promise, then counts the call.
    async fn call<T>(&self, f: impl FnOnce(&mut Aws) -> T) -> T {
        let out = {
            let mut aws = self.aws.lock().unwrap();
            let out = f(&mut aws);
            if let Some(v) = aws.violation() {
                self.violations.lock().unwrap().push(v);
            }
            out
        };
        self.killer.tick().await;
        out
    }
}

fn info(id: &str, k: &Key) -> ApiKeyInfo {
    ApiKeyInfo {
        id: id.into(),
        name: k.name.clone(),
        description: k.description.clone(),
        enabled: k.enabled,
        tags: k.tags.clone(),
    }
}

#[async_trait]
impl ApiKeyInventory for Fake {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        Ok(self
            .call(|aws| {
                aws.keys
                    .iter()
                    .map(|(id, k)| ApiKey {
                        id: id.clone(),
                        name: k.name.clone(),
                        enabled: k.enabled,
                        // The replacement is created on day 100 (and is young after it).
                        created: if id == OLD { t(0) } else { t(100) },
                        last_updated: None,
                        tags: k.tags.clone(),
                        usage_plans: aws
                            .plans
                            .iter()
                            .filter(|(_, keys)| keys.contains(id))
                            .map(|(p, _)| p.clone())
                            .collect(),
                    })
                    .collect()
            })
            .await)
    }
}

#[async_trait]
impl SecretInventory for Fake {
    async fn secrets(&self) -> PortResult<Vec<Secret>> {
        self.call(|_| ()).await;
        Ok(vec![Secret {
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET}"),
            name: SECRET.into(),
            tags: Tags::new(),
            rotation_enabled: false,
            last_rotated: None,
        }])
    }
}

#[async_trait]
impl ApiKeyAdmin for Fake {
    async fn key(&self, id: &str) -> PortResult<Option<ApiKeyInfo>> {
        Ok(self.call(|aws| aws.keys.get(id).map(|k| info(id, k))).await)
    }
    async fn keys_named(&self, prefix: &str) -> PortResult<Vec<ApiKeyInfo>> {
        Ok(self
            .call(|aws| {
                aws.keys
                    .iter()
                    .filter(|(_, k)| k.name.starts_with(prefix))
                    .map(|(id, k)| info(id, k))
                    .collect()
            })
            .await)
    }
    async fn create_key(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &Tags,
        value: &SecretValue,
    ) -> PortResult<String> {
        Ok(self
            .call(|aws| {
                aws.created += 1;
                let id = format!("key{}", aws.created);
                aws.keys.insert(
                    id.clone(),
                    Key {
                        name: name.into(),
                        description: description.map(str::to_owned),
                        enabled: true,
                        tags: tags.clone(),
                        value: value.expose().to_owned(),
                    },
                );
                id
            })
            .await)
    }
    async fn key_value(&self, id: &str) -> PortResult<SecretValue> {
        Ok(SecretValue::new(
            self.call(|aws| aws.keys[id].value.clone()).await,
        ))
    }
    async fn plan_keys(&self, plan: &str) -> PortResult<Vec<String>> {
        Ok(self
            .call(|aws| aws.plans[plan].iter().cloned().collect())
            .await)
    }
    async fn key_plans(&self, id: &str) -> PortResult<Vec<String>> {
        Ok(self
            .call(|aws| {
                aws.plans
                    .iter()
                    .filter(|(_, keys)| keys.contains(id))
                    .map(|(plan, _)| plan.clone())
                    .collect()
            })
            .await)
    }
    async fn attach(&self, plan: &str, key: &str) -> PortResult<()> {
        self.call(|aws| {
            aws.plans.get_mut(plan).unwrap().insert(key.into());
        })
        .await;
        Ok(())
    }
    async fn detach(&self, plan: &str, key: &str) -> PortResult<()> {
        self.call(|aws| {
            aws.plans.get_mut(plan).unwrap().remove(key);
        })
        .await;
        Ok(())
    }
    async fn set_enabled(&self, id: &str, enabled: bool) -> PortResult<()> {
        self.call(|aws| {
            if let Some(k) = aws.keys.get_mut(id) {
                k.enabled = enabled;
            }
        })
        .await;
        Ok(())
    }
    async fn delete_key(&self, id: &str) -> PortResult<()> {
        self.call(|aws| {
            aws.keys.remove(id);
        })
        .await;
        Ok(())
    }
}

#[async_trait]
impl SecretVersions for Fake {
    async fn describe(&self, _secret: &str) -> PortResult<Option<crate::ports::SecretDescription>> {
        // The binding check: the secret agrees to hold the key (keyrotor:api-key).
        let versions = self
            .call(|aws| {
                aws.versions
                    .iter()
                    .map(|(v, (_, s))| (v.clone(), s.clone()))
                    .collect()
            })
            .await;
        Ok(Some(crate::ports::SecretDescription {
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET}-AbCdEf"),
            name: SECRET.into(),
            rotation_enabled: false,
            tags: Tags::from([
                (
                    crate::domain::binding::TAG_API_KEY.to_owned(),
                    "orders-client".to_owned(),
                ),
                (
                    crate::domain::model::TAG_TYPE.to_owned(),
                    crate::domain::binding::TYPE_API_KEY.to_owned(),
                ),
            ]),
            versions,
        }))
    }
    async fn rotate_now(&self, _secret: &str) -> PortResult<String> {
        unreachable!("API key rotation does not call RotateSecret")
    }
    async fn stages(&self, _secret: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>> {
        Ok(Some(
            self.call(|aws| {
                aws.versions
                    .iter()
                    .map(|(v, (_, s))| (v.clone(), s.clone()))
                    .collect()
            })
            .await,
        ))
    }
    async fn value(
        &self,
        _secret: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> PortResult<Option<SecretValue>> {
        Ok(self
            .call(|aws| {
                aws.versions
                    .iter()
                    .find(|(v, (_, s))| {
                        version_id.is_none_or(|id| id == v.as_str())
                            && stage.is_none_or(|st| s.iter().any(|x| x == st))
                    })
                    .map(|(_, (body, _))| SecretValue::new(body.clone()))
            })
            .await)
    }
    async fn put_pending(&self, _secret: &str, token: &str, value: &SecretValue) -> PortResult<()> {
        let body = value.expose().to_owned();
        self.call(|aws| {
            for (_, stages) in aws.versions.values_mut() {
                stages.retain(|s| s != "AWSPENDING");
            }
            aws.versions
                .entry(token.into())
                .or_insert_with(|| (body, Vec::new()))
                .1
                .push("AWSPENDING".into());
        })
        .await;
        Ok(())
    }
    async fn move_stage(
        &self,
        _secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> PortResult<()> {
        self.call(|aws| {
            if let Some(from) = from
                && let Some((_, stages)) = aws.versions.get_mut(from)
            {
                stages.retain(|s| s != stage);
                if stage == "AWSCURRENT" && to.is_some() {
                    for (_, other) in aws.versions.values_mut() {
                        other.retain(|s| s != "AWSPREVIOUS");
                    }
                    aws.versions
                        .get_mut(from)
                        .unwrap()
                        .1
                        .push("AWSPREVIOUS".into());
                }
            }
            if let Some(to) = to
                && let Some((_, stages)) = aws.versions.get_mut(to)
            {
                stages.push(stage.into());
            }
        })
        .await;
        Ok(())
    }
}

/// The state table, killable.
pub(super) struct KState<'a>(pub(super) &'a Fake);

#[async_trait]
impl StateStore for KState<'_> {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<BTreeMap<String, String>>> {
        let out = self.0.state.get(pk, sk).await;
        self.0.killer.tick().await;
        out
    }
    async fn advance(
        &self,
        pk: &str,
        sk: &str,
        rank: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let out = self.0.state.advance(pk, sk, rank, attrs).await;
        self.0.killer.tick().await;
        out
    }
    async fn list(&self, pk: &str) -> PortResult<Vec<StateItem>> {
        let out = self.0.state.list(pk).await;
        self.0.killer.tick().await;
        out
    }
    async fn put_versioned(
        &self,
        pk: &str,
        sk: &str,
        expected: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let out = self.0.state.put_versioned(pk, sk, expected, attrs).await;
        self.0.killer.tick().await;
        out
    }
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> PortResult<Result<(), LeaseHolder>> {
        let out = self.0.state.acquire_lease(name, holder, now, ttl).await;
        self.0.killer.tick().await;
        out
    }
    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        let out = self.0.state.release_lease(name, holder).await;
        self.0.killer.tick().await;
        out
    }
}

/// The audit table, killable.
pub(super) struct KAudit<'a>(pub(super) &'a Fake);

#[async_trait]
impl AuditStore for KAudit<'_> {
    async fn last(&self, resource: &str) -> PortResult<Option<AuditRecord>> {
        let out = self.0.audit.last(resource).await;
        self.0.killer.tick().await;
        out
    }
    async fn append(&self, record: &AuditRecord) -> Result<(), AppendError> {
        let out = self.0.audit.append(record).await;
        self.0.killer.tick().await;
        out
    }
    async fn query(&self, q: &AuditQuery) -> PortResult<Vec<StoredRecord>> {
        self.0.audit.query(q).await
    }
    async fn all(&self) -> PortResult<Vec<StoredRecord>> {
        self.0.audit.all().await
    }
}
