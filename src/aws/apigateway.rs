//! API Gateway (REST APIs): API keys with their tags and usage plans (read-only).
//!
//! Usage-plan membership is read plan by plan (GetUsagePlans, then GetUsagePlanKeys per
//! plan), so the number of calls grows with pages and plans, not with keys. Key values are
//! never requested (`includeValues = false`); GetUsagePlanKeys returns values anyway, and
//! they are dropped here without being stored.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{classify, to_utc};
use crate::domain::model::{ApiKey, Tags};
use crate::ports::{ApiKeyInventory, PortError, PortResult};

/// [`ApiKeyInventory`] over API Gateway.
pub struct ApiGatewayInventory {
    client: aws_sdk_apigateway::Client,
}

impl ApiGatewayInventory {
    pub fn new(client: aws_sdk_apigateway::Client) -> Self {
        Self { client }
    }

    /// API key id -> ids of the usage plans it is attached to.
    async fn plan_membership(&self) -> PortResult<BTreeMap<String, Vec<String>>> {
        let mut membership: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut plans = self
            .client
            .get_usage_plans()
            .limit(500)
            .into_paginator()
            .items()
            .send();
        let mut plan_ids = Vec::new();
        while let Some(plan) = plans.next().await {
            let plan = plan.map_err(|e| classify("apigateway:GetUsagePlans", e))?;
            if let Some(id) = plan.id() {
                plan_ids.push(id.to_owned());
            }
        }
        for plan_id in plan_ids {
            let mut keys = self
                .client
                .get_usage_plan_keys()
                .usage_plan_id(&plan_id)
                .limit(500)
                .into_paginator()
                .items()
                .send();
            while let Some(key) = keys.next().await {
                let key = key.map_err(|e| classify("apigateway:GetUsagePlanKeys", e))?;
                if let Some(id) = key.id() {
                    membership
                        .entry(id.to_owned())
                        .or_default()
                        .push(plan_id.clone());
                }
            }
        }
        Ok(membership)
    }
}

#[async_trait]
impl ApiKeyInventory for ApiGatewayInventory {
    async fn api_keys(&self) -> PortResult<Vec<ApiKey>> {
        const OP: &str = "apigateway:GetApiKeys";
        let mut membership = self.plan_membership().await?;
        let mut stream = self
            .client
            .get_api_keys()
            .include_values(false)
            .limit(500)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(key) = stream.next().await {
            let key = key.map_err(|e| classify(OP, e))?;
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
