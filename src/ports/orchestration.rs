//! Step Functions executions, and the S3 objects that carry a Distributed Map's items.

use async_trait::async_trait;

use super::PortResult;

/// A state machine execution as Step Functions reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionStatus {
    pub arn: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE.
    pub status: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

/// Starts and follows executions of the deployed state machines.
#[async_trait]
pub trait Orchestrator: Send + Sync {
    /// StartExecution; an execution of that name that already exists is returned, not
    /// started again.
    async fn start(&self, machine: &str, name: &str, input: &str) -> PortResult<String>;
    async fn describe(&self, execution: &str) -> PortResult<ExecutionStatus>;
}

/// Where large item lists go for a Distributed Map (S3).
#[async_trait]
pub trait ItemStore: Send + Sync {
    /// Writes `body` (a JSON array) to `key` in `bucket`.
    async fn put(&self, bucket: &str, key: &str, body: &str) -> PortResult<()>;
}
