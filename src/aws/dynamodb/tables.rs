//! [`TableAdmin`] over DynamoDB: creates the audit and state tables (`keyrotor init`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
    PointInTimeRecoverySpecification, Projection, ProjectionType, ScalarAttributeType,
    SseSpecification,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::RUN_INDEX;
use crate::aws::classify;
use crate::ports::{PortError, PortResult, TableAdmin, TableStatus};

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
