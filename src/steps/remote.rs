//! `--via step-functions`: start a deployed state machine, follow the execution until it
//! ends (or the wait runs out), and collect the audit records written meanwhile.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::StepError;
use crate::domain::audit_record::StoredRecord;
use crate::ports::{AuditQuery, AuditStore, Clock, ExecutionStatus, Orchestrator};

/// What came of a remote run.
#[derive(Debug, Serialize)]
pub struct RemoteRun {
    pub execution: String,
    pub started_at: DateTime<Utc>,
    /// The last status seen; `RUNNING` when the wait ran out first.
    pub status: String,
    pub output: Option<serde_json::Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    /// Audit records written since the execution started.
    #[serde(skip)]
    pub records: Vec<StoredRecord>,
}

impl RemoteRun {
    pub fn finished(&self) -> bool {
        self.status != "RUNNING"
    }

    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }
}

/// Starts `machine` as execution `name` with `input` and follows it for at most `wait`,
/// reporting each status change through `progress`.
#[allow(clippy::too_many_arguments)] // every argument is a distinct, required input
pub async fn run(
    orchestrator: &dyn Orchestrator,
    audit: &dyn AuditStore,
    machine: &str,
    name: &str,
    input: &serde_json::Value,
    wait: Duration,
    wall: &dyn Clock,
    progress: &mut (dyn FnMut(&ExecutionStatus) + Send),
) -> Result<RemoteRun, StepError> {
    let started_at = wall.now();
    let execution = orchestrator
        .start(machine, name, &input.to_string())
        .await?;
    let mut delay = StdDuration::from_secs(1);
    let mut last_status = String::new();
    let status = loop {
        let status = orchestrator.describe(&execution).await?;
        if status.status != last_status {
            last_status = status.status.clone();
            progress(&status);
        }
        if status.status != "RUNNING" || wall.now() - started_at >= wait {
            break status;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(StdDuration::from_secs(15));
    };
    let records = audit
        .query(&AuditQuery {
            since: Some(started_at - Duration::seconds(5)),
            ..Default::default()
        })
        .await?;
    Ok(RemoteRun {
        execution,
        started_at,
        status: status.status,
        output: status
            .output
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        error: status.error,
        cause: status.cause,
        records,
    })
}
