//! `--via step-functions`: a sweep or a rotation run by the deployed state machine, followed
//! from here.

use super::args::RemoteArgs;
use super::{CliError, Context, Exit, OutputFormat, emit, note, output, parse_duration, to_json};
use crate::ports::SystemClock;
use crate::steps;

/// `--via step-functions`: starts the deployed machine, follows it, prints the result and
/// the audit records it produced. Exit 0 when it succeeded, 4 when it failed, 7 when it is
/// still running after --wait.
pub(super) async fn run(
    ctx: &Context,
    remote: &RemoteArgs,
    name: &str,
    input: &serde_json::Value,
) -> Result<Exit, CliError> {
    let Some(machine) = &remote.state_machine_arn else {
        return Err(CliError::Usage(
            "--via step-functions needs --state-machine-arn (or KEYROTOR_STATE_MACHINE_ARN): the SweepStateMachineArn or ApiKeyRotationStateMachineArn output of the stack".into(),
        ));
    };
    let wait = parse_duration(&remote.wait).ok_or_else(|| {
        CliError::Usage(format!(
            "--wait {:?} is not a duration; use e.g. 30m, 1h",
            remote.wait
        ))
    })?;
    let orchestrator = crate::aws::sfn::StepFunctions::new(ctx.aws().sfn());
    let mut progress = |s: &crate::ports::ExecutionStatus| {
        note(
            ctx.quiet,
            &format!("keyrotor: execution {} is {}", s.arn, s.status),
        );
    };
    let done = steps::remote::run(
        &orchestrator,
        ctx.audit(),
        machine,
        name,
        input,
        wait,
        &SystemClock::Real,
        &mut progress,
    )
    .await?;
    emit(&match ctx.output {
        OutputFormat::Json => to_json(&serde_json::json!({
            "execution": done,
            "audit_records": output::records_json(&done.records),
        }))?,
        OutputFormat::Table => {
            let mut text = format!("Execution {}: {}\n", done.execution, done.status);
            if let Some(e) = &done.error {
                text.push_str(&format!(
                    "Error: {e}: {}\n",
                    done.cause.as_deref().unwrap_or("")
                ));
            }
            if let Some(o) = &done.output {
                text.push_str(&format!("Output: {o}\n"));
            }
            text.push_str("\nAudit records written since it started:\n");
            text.push_str(&output::records_table(&done.records));
            text
        }
    })?;
    Ok(if done.succeeded() {
        Exit::Success
    } else if done.finished() {
        Exit::Failed
    } else {
        eprintln!(
            "keyrotor: the execution is still running after {}; follow it with `aws stepfunctions describe-execution --execution-arn {}`",
            remote.wait, done.execution
        );
        Exit::StillRunning
    })
}
