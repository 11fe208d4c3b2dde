//! Step Functions: starting and following the deployed state machines (`--via step-functions`).

use async_trait::async_trait;

use super::classify;
use crate::ports::{ExecutionStatus, Orchestrator, PortResult};

/// [`Orchestrator`] over Step Functions.
pub struct StepFunctions {
    client: aws_sdk_sfn::Client,
}

impl StepFunctions {
    pub fn new(client: aws_sdk_sfn::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Orchestrator for StepFunctions {
    async fn start(&self, machine: &str, name: &str, input: &str) -> PortResult<String> {
        const OP: &str = "states:StartExecution";
        match self
            .client
            .start_execution()
            .state_machine_arn(machine)
            .name(name)
            .input(input)
            .send()
            .await
        {
            Ok(out) => Ok(out.execution_arn().to_owned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                // Same name: the execution already ran (or runs) for this run; follow it.
                let machine_name = machine.rsplit(':').next().unwrap_or_default();
                let prefix = machine
                    .replacen(":stateMachine:", ":execution:", 1)
                    .trim_end_matches(machine_name)
                    .to_owned();
                Ok(format!("{prefix}{machine_name}:{name}"))
            }
            Err(e) => Err(classify(OP, e)),
        }
    }

    async fn describe(&self, execution: &str) -> PortResult<ExecutionStatus> {
        const OP: &str = "states:DescribeExecution";
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(ExecutionStatus {
            arn: out.execution_arn().to_owned(),
            status: out.status().as_str().to_owned(),
            output: out.output().map(str::to_owned),
            error: out.error().map(str::to_owned),
            cause: out.cause().map(str::to_owned),
        })
    }
}
