//! [`StateStore`] over the state table: versioned items (conditional writes) and leases.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::{Item, s, table_error};
use crate::ports::{LeaseHolder, PortError, PortResult, StateItem, StateStore};

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
