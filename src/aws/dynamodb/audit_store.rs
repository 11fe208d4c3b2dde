//! [`AuditStore`] over one DynamoDB table, and the record <-> item codec (the fuzzer's
//! target: an item from the table is outside input).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{Item, RUN_INDEX, s, table_error};
use crate::domain::audit_record::{AuditRecord, StoredRecord, UnreadableRecord};
use crate::ports::{AppendError, AuditQuery, AuditStore, PortError, PortResult};

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
