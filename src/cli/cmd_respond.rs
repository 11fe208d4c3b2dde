//! `keyrotor respond`: contain, investigate and notify for a leaked credential named on the
//! command line (`iam-key`, `api-key`) or by an event file (`--event`).

use std::path::PathBuf;

use super::args::{RemoteArgs, RespondCommand, RespondReason, RotateReason, Runner};
use super::{CliError, Context, Exit, cmd_rotate, output};
use crate::domain::model::AccessKeyId;
use crate::domain::respond::{Exposure, Reason, Target, Trigger, event};
use crate::ports::SystemClock;
use crate::steps::respond::{self, Request, Response};
use crate::steps::status::Status;

/// The largest event file read (EventBridge's own limit is 256 KiB).
const EVENT_FILE_LIMIT: u64 = 1024 * 1024;

/// What `keyrotor respond` was asked to do.
#[derive(Debug)]
pub(super) enum What {
    IamKey {
        key: String,
        reason: Reason,
        override_exemption: bool,
        investigate: bool,
    },
    ApiKey {
        key: String,
    },
    Event {
        path: PathBuf,
        override_exemption: bool,
        investigate: bool,
    },
}

impl What {
    pub(super) fn from_args(
        command: Option<RespondCommand>,
        event: Option<PathBuf>,
        override_exemption: bool,
        no_investigation: bool,
    ) -> Result<What, CliError> {
        match (command, event) {
            (Some(RespondCommand::IamKey {
                access_key_id,
                reason,
                override_exemption: o,
                no_investigation: n,
            }), None) => Ok(What::IamKey {
                key: access_key_id,
                reason: match reason {
                    RespondReason::Exposed => Reason::Exposed,
                    RespondReason::Compromised => Reason::Compromised,
                },
                override_exemption: o || override_exemption,
                investigate: !(n || no_investigation),
            }),
            (Some(RespondCommand::ApiKey { key }), None) => Ok(What::ApiKey { key }),
            (None, Some(path)) => Ok(What::Event {
                path,
                override_exemption,
                investigate: !no_investigation,
            }),
            _ => Err(CliError::Usage(
                "respond needs what leaked: `keyrotor respond iam-key AKIA...`, `keyrotor respond api-key ID`, or `keyrotor respond --event FILE`".into(),
            )),
        }
    }
}

pub(super) async fn respond(ctx: &Context, what: &What) -> Result<Exit, CliError> {
    let now = ctx.now();
    let (exposures, override_exemption, investigate) = match what {
        What::ApiKey { key } => {
            let remote = RemoteArgs {
                via: Runner::Local,
                state_machine_arn: None,
                wait: "1h".into(),
            };
            return cmd_rotate::api_key(ctx, key, RotateReason::Compromised, &remote).await;
        }
        What::IamKey {
            key,
            reason,
            override_exemption,
            investigate,
        } => {
            let key = AccessKeyId::parse(key.trim()).map_err(|e| {
                CliError::Usage(format!(
                    "{e}; pass the id of the leaked key as IAM shows it (aws iam list-access-keys)"
                ))
            })?;
            let exposure = Exposure {
                target: Target::Key(key),
                reason: *reason,
                trigger: Trigger::Cli,
                // Each request of a person is its own event: asking again after a
                // reactivation contains the key again.
                event_id: format!("cli-{}", now.format("%Y%m%dT%H%M%SZ")),
                event_type: "cli".into(),
                account: None,
                user: None,
            };
            (vec![exposure], *override_exemption, *investigate)
        }
        What::Event {
            path,
            override_exemption,
            investigate,
        } => {
            let text = read_event(path)?;
            let ports = ctx.wiring.respond();
            match event::decode(&text) {
                Ok(exposures) => (exposures, *override_exemption, *investigate),
                Err(e) => {
                    // The event arrived and was not acted on: that is on the record.
                    respond::could_not_act(&ports, &e, now, &SystemClock::Real).await?;
                    return Err(CliError::Usage(format!(
                        "{}: {e}; nothing was changed",
                        path.display()
                    )));
                }
            }
        }
    };
    let ports = ctx.wiring.respond();
    // Every key is contained first, each on its own (one that cannot be does not stop the
    // others); only then is anything investigated, so no containment waits for CloudTrail.
    let single = exposures.len() == 1;
    let mut done: Vec<Response> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for exposure in exposures {
        let request = Request {
            exposure,
            override_exemption,
            region: ctx.region.clone(),
        };
        match respond::respond(&ports, &ctx.policy, &request, now, &SystemClock::Real).await {
            Ok(response) => done.push(response),
            // One key alone: its error is the command's (exit code by kind).
            Err(e) if single => return Err(e.into()),
            Err(e) => errors.push(format!("{}: {e}", describe(&request.exposure))),
        }
    }
    for response in &mut done {
        if investigate && matches!(response.status, Status::Done | Status::Blocked) {
            let read =
                respond::investigate(&ports, response, &ctx.region, now, &SystemClock::Real).await;
            if let Err(e) = read {
                response
                    .investigation_problems
                    .push(format!("the investigation stopped: {e}"));
            }
        }
        respond::notify(ports.hook.notifier, response).await;
    }
    ctx.render(&done, |d| output::responses_text(d))?;
    for e in &errors {
        eprintln!("keyrotor: error: {}", output::clean_lines(e));
    }
    let failed = !errors.is_empty()
        || done
            .iter()
            .any(|r| crate::steps::outcome::JobOutcome::failed(r) > 0);
    Ok(if failed { Exit::Failed } else { Exit::Success })
}

/// What an exposure names, for a message.
fn describe(e: &Exposure) -> String {
    match &e.target {
        Target::Key(k) => format!("key {k}"),
        Target::User(u) => format!("user {u}"),
    }
}

/// Reads an event file ('-': stdin), bounded.
fn read_event(path: &PathBuf) -> Result<String, CliError> {
    use std::io::Read;
    let shown = path.display();
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(EVENT_FILE_LIMIT + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(EVENT_FILE_LIMIT + 1).read_to_string(&mut text))
    };
    read.map_err(|e| {
        CliError::Usage(format!(
            "cannot read event file {shown}: {e}; pass the event as EventBridge delivers it (JSON), e.g. examples/events/health-credentials-exposed.json"
        ))
    })?;
    if text.len() as u64 > EVENT_FILE_LIMIT {
        return Err(CliError::Usage(format!(
            "event file {shown} is larger than {} KiB; an EventBridge event is at most 256 KiB",
            EVENT_FILE_LIMIT / 1024
        )));
    }
    Ok(text)
}
