//! DynamoDB: the audit table (append-only store) and the creation of keyrotor's tables.
//!
//! Audit table: partition key `resource` (S), sort key `seq` (N), GSI `by-run` on `run_id`
//! and `recorded_at`. Appends are `PutItem` with `attribute_not_exists(resource)`, so a record
//! is never overwritten. State table: partition key `pk` (S), sort key `sk` (S).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    SseSpecification,
};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::classify;
use crate::domain::audit_record::{AuditRecord, StoredRecord, UnreadableRecord};
use crate::ports::{
    AppendError, AuditQuery, AuditStore, LeaseHolder, PortError, PortResult, StateItem, StateStore,
    TableAdmin, TableStatus,
};

/// Name of the audit table's index by run.
pub const RUN_INDEX: &str = "by-run";

type Item = HashMap<String, AttributeValue>;

/// Classifies a DynamoDB error; a missing table says how to create it.
fn table_error<E, R>(which: &str, table: &str, operation: &str, e: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    if e.code() == Some("ResourceNotFoundException") {
        PortError::NotFound {
            operation: operation.into(),
            what: format!("{which} table {table} does not exist; run `keyrotor init` to create it"),
        }
    } else {
        classify(operation, e)
    }
}

/// [`AuditStore`] over one DynamoDB table.
pub struct DynamoAuditStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAuditStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn scan(&self, filter: Option<(&str, &str, &str)>) -> PortResult<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take());
            if let Some((expr, name, value)) = filter {
                req = req
                    .filter_expression(expr)
                    .expression_attribute_names("#f", name)
                    .expression_attribute_values(":v", AttributeValue::S(value.to_owned()));
            }
            let page = req
                .send()
                .await
                .map_err(|e| table_error("audit", &self.table, "dynamodb:Scan", e))?;
            out.extend(page.items().iter().map(decode));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn query_pages(
        &self,
        index: Option<&str>,
        key_attr: &str,
        key: &str,
        newest_first: bool,
        limit: Option<i32>,
    ) -> PortResult<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":k", AttributeValue::S(key.to_owned()))
                .scan_index_forward(!newest_first)
                .set_limit(limit)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| table_error("audit", &self.table, "dynamodb:Query", e))?;
            out.extend(page.items().iter().map(decode));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() && limit.is_none() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// A record as a DynamoDB item.
pub fn encode(r: &AuditRecord) -> Item {
    let mut item = Item::new();
    item.insert("resource".into(), s(&r.resource));
    item.insert("seq".into(), AttributeValue::N(r.seq.to_string()));
    item.insert("kind".into(), s(r.kind.as_str()));
    item.insert("account".into(), s(&r.account));
    item.insert("region".into(), s(&r.region));
    item.insert("resource_id".into(), s(&r.resource_id));
    item.insert("run_id".into(), s(&r.run_id));
    item.insert("actor".into(), s(&r.actor));
    item.insert("action".into(), s(&r.action));
    item.insert("phase".into(), s(r.phase.as_str()));
    if let Some(o) = &r.outcome {
        item.insert("outcome".into(), s(o.as_str()));
    }
    item.insert("reason".into(), s(&r.reason));
    item.insert("detail".into(), s(&r.detail));
    if let Some(b) = &r.before {
        item.insert("before".into(), s(b));
    }
    if let Some(a) = &r.after {
        item.insert("after".into(), s(a));
    }
    item.insert("dry_run".into(), AttributeValue::Bool(r.dry_run));
    item.insert("recorded_at".into(), s(&r.recorded_at));
    item.insert("policy_time".into(), s(&r.policy_time));
    item.insert("prev_hash".into(), s(&r.prev_hash));
    item.insert("hash".into(), s(&r.hash));
    item
}

/// A DynamoDB item as a record, or why it is not one.
pub fn decode(item: &Item) -> StoredRecord {
    let resource = match item.get("resource") {
        Some(AttributeValue::S(r)) => r.clone(),
        _ => "<no resource>".to_owned(),
    };
    let seq = match item.get("seq") {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    let mut json = serde_json::Map::new();
    for (name, value) in item {
        let v = match value {
            AttributeValue::S(s) => serde_json::Value::String(s.clone()),
            AttributeValue::Bool(b) => serde_json::Value::Bool(*b),
            AttributeValue::N(n) => match n.parse::<u64>() {
                Ok(n) => serde_json::Value::from(n),
                Err(_) => serde_json::Value::String(n.clone()),
            },
            other => {
                return Err(UnreadableRecord {
                    resource,
                    seq,
                    message: format!("attribute {name} has unexpected type {other:?}"),
                });
            }
        };
        json.insert(name.clone(), v);
    }
    let record: AuditRecord =
        serde_json::from_value(serde_json::Value::Object(json)).map_err(|e| UnreadableRecord {
            resource: resource.clone(),
            seq,
            message: e.to_string(),
        })?;
    // A field the schema does not know would be silently dropped by serde and escape the
    // hash; report it instead.
    let known = encode(&record);
    if let Some(extra) = item.keys().find(|k| !known.contains_key(*k)) {
        return Err(UnreadableRecord {
            resource,
            seq,
            message: format!("unexpected attribute {extra}"),
        });
    }
    Ok(record)
}

#[async_trait]
impl AuditStore for DynamoAuditStore {
    async fn last(&self, resource: &str) -> PortResult<Option<AuditRecord>> {
        let items = self
            .query_pages(None, "resource", resource, true, Some(1))
            .await?;
        match items.into_iter().next() {
            None => Ok(None),
            Some(Ok(r)) => Ok(Some(r)),
            Some(Err(u)) => Err(PortError::InvalidResponse {
                operation: "dynamodb:Query".into(),
                message: format!(
                    "the last audit record of {} (seq {:?}) is unreadable: {}; run `keyrotor audit verify`",
                    u.resource, u.seq, u.message
                ),
            }),
        }
    }

    async fn append(&self, record: &AuditRecord) -> Result<(), AppendError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(encode(record)))
            .condition_expression("attribute_not_exists(#r)")
            .expression_attribute_names("#r", "resource")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Err(AppendError::SeqTaken)
            }
            Err(e) => Err(AppendError::Port(table_error(
                "audit",
                &self.table,
                "dynamodb:PutItem",
                e,
            ))),
        }
    }

    async fn query(&self, q: &AuditQuery) -> PortResult<Vec<StoredRecord>> {
        let mut items = if let Some(run) = &q.run {
            self.query_pages(Some(RUN_INDEX), "run_id", run, false, None)
                .await?
        } else if let Some(resource) = q.resource.as_deref().filter(|r| r.contains('#')) {
            self.query_pages(None, "resource", resource, false, None)
                .await?
        } else if let Some(id) = &q.resource {
            self.scan(Some(("#f = :v", "resource_id", id))).await?
        } else {
            self.scan(None).await?
        };
        items.retain(|item| match item {
            Ok(r) => {
                q.resource
                    .as_ref()
                    .is_none_or(|want| &r.resource == want || &r.resource_id == want)
                    && q.since.is_none_or(|since| {
                        chrono::DateTime::parse_from_rfc3339(&r.recorded_at)
                            .is_ok_and(|t| t >= since)
                    })
            }
            Err(_) => true,
        });
        Ok(items)
    }

    async fn all(&self) -> PortResult<Vec<StoredRecord>> {
        self.scan(None).await
    }
}

/// [`TableAdmin`] over DynamoDB.
pub struct DynamoTables {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoTables {
    pub fn new(client: aws_sdk_dynamodb::Client) -> Self {
        Self { client }
    }

    async fn exists(&self, name: &str) -> PortResult<bool> {
        match self.client.describe_table().table_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(e) => Err(classify("dynamodb:DescribeTable", e)),
        }
    }

    async fn finish(&self, name: &str) -> PortResult<()> {
        self.client
            .update_continuous_backups()
            .table_name(name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(|e| other("dynamodb:UpdateContinuousBackups", e))?,
            )
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateContinuousBackups", e))?;
        Ok(())
    }
}

fn other(operation: &str, e: impl std::fmt::Display) -> PortError {
    PortError::Other {
        operation: operation.into(),
        message: e.to_string(),
    }
}

fn attr(name: &str, t: ScalarAttributeType) -> PortResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(t)
        .build()
        .map_err(|e| other("dynamodb:CreateTable", e))
}

fn key(name: &str, t: KeyType) -> PortResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(t)
        .build()
        .map_err(|e| other("dynamodb:CreateTable", e))
}

#[async_trait]
impl TableAdmin for DynamoTables {
    async fn ensure_audit_table(&self, name: &str) -> PortResult<TableStatus> {
        if self.exists(name).await? {
            return Ok(TableStatus::AlreadyExists);
        }
        let index = GlobalSecondaryIndex::builder()
            .index_name(RUN_INDEX)
            .key_schema(key("run_id", KeyType::Hash)?)
            .key_schema(key("recorded_at", KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(|e| other("dynamodb:CreateTable", e))?;
        let created = self
            .client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("resource", ScalarAttributeType::S)?)
            .attribute_definitions(attr("seq", ScalarAttributeType::N)?)
            .attribute_definitions(attr("run_id", ScalarAttributeType::S)?)
            .attribute_definitions(attr("recorded_at", ScalarAttributeType::S)?)
            .key_schema(key("resource", KeyType::Hash)?)
            .key_schema(key("seq", KeyType::Range)?)
            .global_secondary_indexes(index)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .deletion_protection_enabled(true)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Another `init` won the race: the table exists, which is what we want.
            Err(e) if e.code() == Some("ResourceInUseException") => {
                return Ok(TableStatus::AlreadyExists);
            }
            Err(e) => return Err(classify("dynamodb:CreateTable", e)),
        }
        self.wait_active(name).await?;
        self.finish(name).await?;
        Ok(TableStatus::Created)
    }

    async fn ensure_state_table(&self, name: &str) -> PortResult<TableStatus> {
        if self.exists(name).await? {
            return Ok(TableStatus::AlreadyExists);
        }
        let created = self
            .client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk", ScalarAttributeType::S)?)
            .attribute_definitions(attr("sk", ScalarAttributeType::S)?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .sse_specification(SseSpecification::builder().enabled(true).build())
            .deletion_protection_enabled(true)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceInUseException") => {
                return Ok(TableStatus::AlreadyExists);
            }
            Err(e) => return Err(classify("dynamodb:CreateTable", e)),
        }
        self.wait_active(name).await?;
        self.finish(name).await?;
        Ok(TableStatus::Created)
    }
}

impl DynamoTables {
    async fn wait_active(&self, name: &str) -> PortResult<()> {
        use aws_sdk_dynamodb::types::TableStatus as S;
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| classify("dynamodb:DescribeTable", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&S::Active) {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        Err(other(
            "dynamodb:DescribeTable",
            format!("table {name} did not become ACTIVE within a minute"),
        ))
    }
}

/// [`StateStore`] over the state table (`pk`, `sk`; a numeric `rank`; string attributes).
pub struct DynamoStateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoStateStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

const RESERVED: [&str; 4] = ["pk", "sk", "rank", "version"];

/// Partition of the lease items.
const LEASES: &str = "lease";

impl DynamoStateStore {
    fn item(pk: &str, sk: &str, attrs: &BTreeMap<String, String>) -> Item {
        let mut item = Item::new();
        for (k, v) in attrs {
            if !RESERVED.contains(&k.as_str()) {
                item.insert(k.clone(), s(v));
            }
        }
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s(sk));
        item
    }

    fn error<E, R>(&self, operation: &str, e: SdkError<E, R>) -> PortError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + 'static,
    {
        table_error("state", &self.table, operation, e)
    }
}

#[async_trait]
impl StateStore for DynamoStateStore {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<BTreeMap<String, String>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| table_error("state", &self.table, "dynamodb:GetItem", e))?;
        Ok(out.item().map(|item| {
            item.iter()
                .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                .collect()
        }))
    }

    async fn list(&self, pk: &str) -> PortResult<Vec<StateItem>> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.error("dynamodb:Query", e))?;
            let Some(sk) = item.get("sk").and_then(|v| v.as_s().ok()).cloned() else {
                continue;
            };
            let version = item
                .get("version")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let attrs = item
                .iter()
                .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
                .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.clone(), v.clone())))
                .collect();
            items.push(StateItem { sk, version, attrs });
        }
        Ok(items)
    }

    async fn put_versioned(
        &self,
        pk: &str,
        sk: &str,
        expected: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let mut item = Self::item(pk, sk, attrs);
        item.insert(
            "version".into(),
            AttributeValue::N((expected + 1).to_string()),
        );
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = if expected == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.error("dynamodb:PutItem", e)),
        }
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> PortResult<Result<(), LeaseHolder>> {
        let expires = now + ttl;
        let mut item = Self::item(LEASES, name, &BTreeMap::new());
        item.insert("holder".into(), s(holder));
        item.insert("expires_at".into(), s(&expires.to_rfc3339()));
        item.insert(
            "expires_epoch".into(),
            AttributeValue::N(expires.timestamp().to_string()),
        );
        let taken = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_epoch < :now OR holder = :holder",
            )
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match taken {
            Ok(_) => Ok(Ok(())),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let current = self.get(LEASES, name).await?.unwrap_or_default();
                let expires_at = current
                    .get("expires_at")
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(expires, |t| t.with_timezone(&Utc));
                Ok(Err(LeaseHolder {
                    holder: current.get("holder").cloned().unwrap_or_default(),
                    expires_at,
                }))
            }
            Err(e) => Err(self.error("dynamodb:PutItem", e)),
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> PortResult<()> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(LEASES))
            .key("sk", s(name))
            .condition_expression("holder = :holder")
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Expired and taken over by another run: nothing to give back.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(self.error("dynamodb:DeleteItem", e)),
        }
    }

    async fn advance(
        &self,
        pk: &str,
        sk: &str,
        rank: u64,
        attrs: &BTreeMap<String, String>,
    ) -> PortResult<bool> {
        let mut item = Self::item(pk, sk, attrs);
        item.insert("rank".into(), AttributeValue::N(rank.to_string()));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #rank < :rank")
            .expression_attribute_names("#rank", "rank")
            .expression_attribute_values(":rank", AttributeValue::N(rank.to_string()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(table_error("state", &self.table, "dynamodb:PutItem", e)),
        }
    }
}
