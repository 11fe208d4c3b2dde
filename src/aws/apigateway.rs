//! API Gateway (REST APIs): API keys with their tags and usage plans, and the changes a
//! rotation makes (create, attach, detach, disable, delete). Every call is paced: API
//! Gateway's management calls share about 10 requests per second per account, and
//! CreateApiKey is limited to about 5.
//!
//! Usage-plan membership is read plan by plan (GetUsagePlans, then GetUsagePlanKeys per
//! plan), so the number of calls grows with pages and plans, not with keys. Key values are
//! never requested (`includeValues = false`); GetUsagePlanKeys returns values anyway, and
//! they are dropped here without being stored.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Pacer, classify, to_utc};
use crate::domain::model::{ApiKey, Tags};
use crate::ports::{ApiKeyAdmin, ApiKeyInfo, ApiKeyInventory, PortError, PortResult, SecretValue};

/// Attempts of a throttled CreateApiKey, as many as the SDK's retry policy makes.
const CREATE_ATTEMPTS: u32 = 6;

/// [`ApiKeyInventory`] and [`ApiKeyAdmin`] over API Gateway.
pub struct ApiGatewayClient {
    client: aws_sdk_apigateway::Client,
    pacer: Arc<Pacer>,
}

impl ApiGatewayClient {
    /// An adapter over `client` whose calls wait for `pacer` (the account's budget).
    pub fn new(client: aws_sdk_apigateway::Client, pacer: Arc<Pacer>) -> Self {
        Self { client, pacer }
    }

    /// The account's API Gateway adapter, paced by the account's pacer.
    pub fn of(aws: &super::Aws) -> Self {
        Self::new(aws.apigateway(), aws.pacer(super::Service::ApiGateway))
    }

    /// Ids of every usage plan, or with `key` of those the key is attached to (every page).
    async fn usage_plans(&self, key: Option<&str>) -> PortResult<Vec<String>> {
        let mut plan_ids = Vec::new();
        let mut position: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_usage_plans()
                .set_key_id(key.map(str::to_owned))
                .limit(500)
                .set_position(position.take())
                .send()
                .await
                .map_err(|e| classify("apigateway:GetUsagePlans", e))?;
            plan_ids.extend(
                page.items()
                    .iter()
                    .filter_map(|p| p.id().map(str::to_owned)),
            );
            match page.position() {
                Some(p) if !p.is_empty() && !page.items().is_empty() => {
                    position = Some(p.to_owned())
                }
                _ => return Ok(plan_ids),
            }
        }
    }

    /// API key id -> ids of the usage plans it is attached to.
    async fn plan_membership(&self) -> PortResult<BTreeMap<String, Vec<String>>> {
        let mut membership: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let plan_ids = self.usage_plans(None).await?;
        for plan_id in plan_ids {
            for key in self.plan_keys(&plan_id).await? {
                membership.entry(key).or_default().push(plan_id.clone());
            }
        }
        Ok(membership)
    }
}

#[async_trait]
impl ApiKeyInventory for ApiGatewayClient {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        const OP: &str = "apigateway:GetApiKeys";
        let mut membership = self.plan_membership().await?;
        let mut out = Vec::new();
        for key in self.list_keys(None).await? {
            let id = key.id().unwrap_or_default().to_owned();
            let created =
                key.created_date()
                    .and_then(to_utc)
                    .ok_or_else(|| PortError::InvalidResponse {
                        operation: OP.into(),
                        message: format!("API key {id} has no createdDate"),
                    })?;
            let tags: Tags = key
                .tags()
                .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            let mut usage_plans = membership.remove(&id).unwrap_or_default();
            usage_plans.sort();
            out.push(ApiKey {
                name: key.name().unwrap_or_default().to_owned(),
                enabled: key.enabled(),
                created,
                last_updated: key.last_updated_date().and_then(to_utc),
                tags,
                usage_plans,
                id,
            });
        }
        Ok(out)
    }
}

impl ApiGatewayClient {
    /// GetApiKeys (every page, without values), optionally by name prefix.
    async fn list_keys(
        &self,
        name_query: Option<&str>,
    ) -> PortResult<Vec<aws_sdk_apigateway::types::ApiKey>> {
        let mut keys = Vec::new();
        let mut position: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_api_keys()
                .include_values(false)
                .limit(500)
                .set_name_query(name_query.map(str::to_owned))
                .set_position(position.take())
                .send()
                .await
                .map_err(|e| classify("apigateway:GetApiKeys", e))?;
            keys.extend(page.items().iter().cloned());
            match page.position() {
                Some(p) if !p.is_empty() && !page.items().is_empty() => {
                    position = Some(p.to_owned())
                }
                _ => return Ok(keys),
            }
        }
    }
}

fn info(
    id: Option<&str>,
    name: Option<&str>,
    description: Option<&str>,
    enabled: bool,
    tags: Option<&std::collections::HashMap<String, String>>,
) -> ApiKeyInfo {
    ApiKeyInfo {
        id: id.unwrap_or_default().to_owned(),
        name: name.unwrap_or_default().to_owned(),
        description: description.map(str::to_owned),
        enabled,
        tags: tags
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }
}

#[async_trait]
impl ApiKeyAdmin for ApiGatewayClient {
    async fn key(&self, id: &str) -> PortResult<Option<ApiKeyInfo>> {
        self.pacer.wait().await;
        match self
            .client
            .get_api_key()
            .api_key(id)
            .include_value(false)
            .send()
            .await
        {
            Ok(k) => Ok(Some(info(
                k.id(),
                k.name(),
                k.description(),
                k.enabled(),
                k.tags(),
            ))),
            Err(e) => match classify("apigateway:GetApiKey", e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn keys_named(&self, prefix: &str) -> PortResult<Vec<ApiKeyInfo>> {
        Ok(self
            .list_keys(Some(prefix))
            .await?
            .iter()
            .filter(|k| k.name().is_some_and(|n| n.starts_with(prefix)))
            .map(|k| info(k.id(), k.name(), k.description(), k.enabled(), k.tags()))
            .collect())
    }

    async fn create_key(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &Tags,
        value: &SecretValue,
    ) -> PortResult<String> {
        const OP: &str = "apigateway:CreateApiKey";
        // The SDK does not retry this call: after a lost response a retry would create a
        // second key (the step's next run finds the one created, by name and rotation tag).
        // A throttled request was refused before anything was created, so that one error
        // is retried here, with backoff, like the SDK would.
        let mut attempt: u32 = 0;
        let out = loop {
            self.pacer.wait().await;
            let sent = self
                .client
                .create_api_key()
                .name(name)
                .value(value.expose())
                .set_description(description.map(str::to_owned))
                .enabled(true)
                .set_tags(Some(
                    tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                ))
                .customize()
                .config_override(
                    aws_sdk_apigateway::config::Builder::default()
                        .retry_config(aws_config::retry::RetryConfig::disabled()),
                )
                .send()
                .await
                .map_err(|e| classify(OP, e));
            match sent {
                Err(PortError::Throttled { .. }) if attempt + 1 < CREATE_ATTEMPTS => {
                    tokio::time::sleep(super::throttle_backoff(attempt)).await;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        out.id()
            .map(str::to_owned)
            .ok_or_else(|| PortError::InvalidResponse {
                operation: OP.into(),
                message: "the new API key has no id".into(),
            })
    }

    async fn key_value(&self, id: &str) -> PortResult<SecretValue> {
        const OP: &str = "apigateway:GetApiKey";
        self.pacer.wait().await;
        let out = self
            .client
            .get_api_key()
            .api_key(id)
            .include_value(true)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        out.value
            .filter(|v| !v.is_empty())
            .map(SecretValue::new)
            .ok_or_else(|| PortError::InvalidResponse {
                operation: OP.into(),
                message: format!("API key {id} came back without its value"),
            })
    }

    async fn plan_keys(&self, plan: &str) -> PortResult<Vec<String>> {
        let mut ids = Vec::new();
        let mut position: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .get_usage_plan_keys()
                .usage_plan_id(plan)
                .limit(500)
                .set_position(position.take())
                .send()
                .await
                .map_err(|e| classify("apigateway:GetUsagePlanKeys", e))?;
            // The response may carry key values; only ids are kept.
            ids.extend(
                page.items()
                    .iter()
                    .filter_map(|k| k.id().map(str::to_owned)),
            );
            match page.position() {
                Some(p) if !p.is_empty() && !page.items().is_empty() => {
                    position = Some(p.to_owned())
                }
                _ => return Ok(ids),
            }
        }
    }

    async fn key_plans(&self, id: &str) -> PortResult<Vec<String>> {
        let mut plans = self.usage_plans(Some(id)).await?;
        plans.sort();
        Ok(plans)
    }

    async fn attach(&self, plan: &str, key: &str) -> PortResult<()> {
        self.pacer.wait().await;
        match self
            .client
            .create_usage_plan_key()
            .usage_plan_id(plan)
            .key_id(key)
            .key_type("API_KEY")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("apigateway:CreateUsagePlanKey", e) {
                // Already in the plan.
                PortError::Conflict { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn detach(&self, plan: &str, key: &str) -> PortResult<()> {
        self.pacer.wait().await;
        match self
            .client
            .delete_usage_plan_key()
            .usage_plan_id(plan)
            .key_id(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify("apigateway:DeleteUsagePlanKey", e) {
                PortError::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .update_api_key()
            .api_key(id)
            .patch_operations(
                aws_sdk_apigateway::types::PatchOperation::builder()
                    .op(aws_sdk_apigateway::types::Op::Replace)
                    .path("/enabled")
                    .value(if enabled { "true" } else { "false" })
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("apigateway:UpdateApiKey", e))
    }

    async fn delete_key(&self, id: &str) -> PortResult<()> {
        self.pacer.wait().await;
        match self.client.delete_api_key().api_key(id).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("apigateway:DeleteApiKey", e) {
                PortError::NotFound { .. } => Ok(()),
                e => Err(e),
            },
        }
    }
}
