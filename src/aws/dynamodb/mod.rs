//! DynamoDB: the audit table (append-only store) and the creation of keyrotor's tables.
//!
//! Audit table: partition key `resource` (S), sort key `seq` (N), GSI `by-run` on `run_id`
//! and `recorded_at`. Appends are `PutItem` with `attribute_not_exists(resource)`, so a record
//! is never overwritten. State table: partition key `pk` (S), sort key `sk` (S).
//!
//! One file per port: `audit_store` (the audit table and its item codec), `state_store`
//! (the state table and its leases), `tables` (creating both).

mod audit_store;
mod state_store;
mod tables;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

pub use audit_store::{DynamoAuditStore, decode, encode};
pub use state_store::DynamoStateStore;
pub use tables::DynamoTables;

use super::classify;
use crate::ports::PortError;

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

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}
