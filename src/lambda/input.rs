//! The inputs of the Step Functions jobs, decoded before any AWS call: the sweep's state
//! (an EventBridge Scheduler input or a scheduled event envelope for `Plan`), an API key id
//! for `ApiKey`, a caught error for `RecordFailure`; for the respond workflow the EventBridge
//! event as delivered (`RespondDecode`), one exposure and its region (`RespondContain`), and
//! a response (`RespondInvestigate`, `RespondNotify`). Everything here comes from outside the
//! process, so nothing panics on it; a malformed input is `KeyRotor.InvalidInput`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Job;
use crate::domain::model::{AccountId, Kind};
use crate::domain::respond::Exposure;
use crate::steps::StepError;
use crate::steps::accounts::Target;
use crate::steps::respond::Response;

/// The largest event `RespondDecode` reads, in bytes of JSON (EventBridge's own limit is
/// 256 KiB).
pub const EVENT_LIMIT: usize = 256 * 1024;

/// What a job takes from its input.
#[derive(Debug, Clone)]
pub struct JobInput {
    /// The event's `"at"` (local runs only, see [`decode`]).
    pub at: Option<DateTime<Utc>>,
    /// `ApiKey`: the API key id.
    pub key: Option<String>,
    /// `ApiKey`: the account the key is in; `RecordFailure`: the account of the failed
    /// resource (absent: the function's own account).
    pub account: Option<AccountId>,
    /// `RecordFailure`: the failed state.
    pub failure: Option<Failure>,
    /// `RespondDecode`: the event as EventBridge delivered it, as JSON text.
    pub event: Option<String>,
    /// `RespondContain`: the exposure to contain.
    pub exposure: Option<Exposure>,
    /// `RespondContain`: the region of the secrets (absent: the function's own).
    pub region: Option<String>,
    /// `RespondInvestigate`, `RespondNotify`: the response of `RespondContain`.
    pub response: Option<Box<Response>>,
}

/// One job's input, typed: what [`decode`] found, as the job takes it. The time (`at`)
/// stays in [`JobInput`]: every job may have it.
#[derive(Debug, Clone)]
pub enum Input {
    /// `Plan`: nothing but the time.
    Plan,
    /// `IamKeys`: nothing but the time.
    IamKeys,
    /// `Migration`: nothing but the time.
    Migration,
    /// `Certs`: nothing but the time.
    Certs,
    /// `ApiKey`: the key, and the account it is in (absent: the function's own).
    ApiKey {
        key: String,
        account: Option<AccountId>,
    },
    /// `RecordFailure`: the failed state, and the account of its resource (absent: the
    /// function's own).
    RecordFailure {
        failure: Failure,
        account: Option<AccountId>,
    },
    /// `RespondDecode`: the EventBridge event, as JSON text.
    RespondDecode { event: String },
    /// `RespondContain`: one exposure, and the region of the secrets (absent: the
    /// function's own).
    RespondContain {
        exposure: Exposure,
        region: Option<String>,
    },
    /// `RespondInvestigate`: the response to investigate.
    RespondInvestigate { response: Box<Response> },
    /// `RespondNotify`: the response to tell.
    RespondNotify { response: Box<Response> },
}

impl JobInput {
    /// This input as `job` takes it: [`decode`] has already refused an `ApiKey` input
    /// without a key and a `RecordFailure` input without its state.
    pub fn for_job(&self, job: Job) -> Result<Input, StepError> {
        Ok(match job {
            Job::ApiKey => Input::ApiKey {
                key: self.key.clone().ok_or_else(|| {
                    StepError::InvalidInput(
                        "event: field \"key\" (the API key id) is missing".into(),
                    )
                })?,
                account: self.account.clone(),
            },
            Job::RecordFailure => Input::RecordFailure {
                failure: self
                    .failure
                    .clone()
                    .ok_or_else(|| StepError::InvalidInput("event: no failed state".into()))?,
                account: self.account.clone(),
            },
            Job::SecretRotation => {
                return Err(StepError::InvalidInput(
                    "the rotation hook takes Secrets Manager events".into(),
                ));
            }
            Job::RespondDecode => Input::RespondDecode {
                event: self
                    .event
                    .clone()
                    .ok_or_else(|| StepError::InvalidInput("event: no event to decode".into()))?,
            },
            Job::RespondContain => Input::RespondContain {
                exposure: self.exposure.clone().ok_or_else(|| {
                    StepError::InvalidInput("event: field \"exposure\" is missing".into())
                })?,
                region: self.region.clone(),
            },
            Job::RespondInvestigate => Input::RespondInvestigate {
                response: self.response.clone().ok_or_else(no_response)?,
            },
            Job::RespondNotify => Input::RespondNotify {
                response: self.response.clone().ok_or_else(no_response)?,
            },
            Job::Plan => Input::Plan,
            Job::IamKeys => Input::IamKeys,
            Job::Migration => Input::Migration,
            Job::Certs => Input::Certs,
        })
    }
}

/// A failed state, as a Catch hands it to `RecordFailure`: `{"what", "resource", "kind",
/// "error": {"Error", "Cause"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub what: String,
    pub resource: String,
    pub kind: Kind,
    /// The error name (`KeyRotor.Blocked`, `States.Timeout`, ...).
    pub error: String,
    /// The cause, at most 1000 characters.
    pub cause: String,
}

/// Decodes `job`'s input. `event_time`: honour the `"at"` field (`KEYROTOR_EVENT_TIME=1`,
/// local runs where Wait states are shortened); otherwise it is ignored, malformed or not.
pub fn decode(job: Job, event: &Value, event_time: bool) -> Result<JobInput, StepError> {
    let at = match event.get("at").and_then(Value::as_str) {
        Some(text) if event_time => Some(
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| StepError::InvalidInput(format!("event field at = {text:?}: {e}")))?,
        ),
        _ => None,
    };
    let key = match job {
        Job::ApiKey => Some(
            event
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    StepError::InvalidInput(
                        "event: field \"key\" (the API key id) is missing".into(),
                    )
                })?
                .to_owned(),
        ),
        _ => None,
    };
    let account = match (job, event.get("account")) {
        (Job::ApiKey | Job::RecordFailure, Some(value)) => {
            let text = value.as_str().unwrap_or_default();
            Some(AccountId::parse(text).map_err(|e| {
                StepError::InvalidInput(format!(
                    "event field account = {value}: {e}; it is the 12-digit id of the account the resource is in"
                ))
            })?)
        }
        _ => None,
    };
    let failure = match job {
        Job::RecordFailure => Some(failure(event)?),
        _ => None,
    };
    let event_text = match job {
        Job::RespondDecode => Some(event_text(event)?),
        _ => None,
    };
    let (exposure, region) = match job {
        Job::RespondContain => (Some(exposure(event)?), region(event)?),
        _ => (None, None),
    };
    let response = match job {
        Job::RespondInvestigate | Job::RespondNotify => Some(Box::new(response(event)?)),
        _ => None,
    };
    Ok(JobInput {
        at,
        key,
        account,
        failure,
        event: event_text,
        exposure,
        region,
        response,
    })
}

fn no_response() -> StepError {
    StepError::InvalidInput("event: no response of keyrotor-respond-contain".into())
}

/// The event as JSON text, for the event decoder; bounded.
fn event_text(event: &Value) -> Result<String, StepError> {
    if !event.is_object() {
        return Err(StepError::InvalidInput(
            "event: not a JSON object; the respond state machine takes the event as EventBridge delivers it (an AWS Health, GuardDuty or CloudTrail event)".into(),
        ));
    }
    let text = event.to_string();
    if text.len() > EVENT_LIMIT {
        return Err(StepError::InvalidInput(format!(
            "event: {} bytes, larger than EventBridge's limit of {} KiB; nothing was done",
            text.len(),
            EVENT_LIMIT / 1024
        )));
    }
    Ok(text)
}

/// `"exposure"`: one item of `RespondDecode`'s output.
fn exposure(event: &Value) -> Result<Exposure, StepError> {
    let value = event.get("exposure").ok_or_else(|| {
        StepError::InvalidInput(
            "event: field \"exposure\" (one item of keyrotor-respond-decode's exposures) is missing".into(),
        )
    })?;
    serde_json::from_value(value.clone()).map_err(|e| {
        StepError::InvalidInput(format!(
            "event field exposure: {e}; it is one item of keyrotor-respond-decode's exposures"
        ))
    })
}

/// `"region"`, when present: an AWS region name.
fn region(event: &Value) -> Result<Option<String>, StepError> {
    match event.get("region") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let text = value.as_str().unwrap_or_default();
            let well_formed = (4..=32).contains(&text.len())
                && text
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if well_formed {
                Ok(Some(text.to_owned()))
            } else {
                Err(StepError::InvalidInput(format!(
                    "event field region = {value}: not an AWS region name (e.g. us-east-1)"
                )))
            }
        }
    }
}

/// The whole event: a response of `RespondContain` (or `RespondInvestigate`).
fn response(event: &Value) -> Result<Response, StepError> {
    serde_json::from_value(event.clone()).map_err(|e| {
        StepError::InvalidInput(format!(
            "event: not a response of keyrotor-respond-contain ({e})"
        ))
    })
}

/// Refuses an `account` (an API-key job's input) that is not among `targets`, the accounts
/// `[accounts]` resolves to ([`crate::steps::accounts::targets`]). The function's own
/// account needs no check (the caller passes it without asking). Whoever can start an
/// execution must not steer keyrotor's member role into an account the policy does not
/// cover: nothing is done there.
pub fn check_account(account: &AccountId, targets: &[Target]) -> Result<(), StepError> {
    if targets.iter().any(|t| &t.account == account) {
        return Ok(());
    }
    Err(StepError::InvalidInput(format!(
        "event field account = {}: not an account this deployment covers ([accounts] ids, or the organization's ACTIVE accounts when [accounts] organization = true; {} account(s) in all); nothing was done: add the account to [accounts] or fix the input",
        account.as_str(),
        targets.len()
    )))
}

fn failure(event: &Value) -> Result<Failure, StepError> {
    let field = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    let error = event.get("error").cloned().unwrap_or(Value::Null);
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .unwrap_or("States.Unknown");
    // Causes are error messages from keyrotor's own functions: identifiers, never values.
    let cause: String = error
        .get("Cause")
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(1000)
        .collect();
    let kind = match field("kind").as_str() {
        // Planning discovers API keys; its failure is theirs.
        "api-keys" | "plan" => Kind::ApiKeys,
        // A response contains IAM access keys.
        "iam-keys" | "respond" => Kind::IamKeys,
        "migration" => Kind::Migration,
        "certs" => Kind::Certs,
        other => {
            return Err(StepError::InvalidInput(format!(
                "event: kind {other:?} is not one of api-keys, plan, iam-keys, respond, migration, certs"
            )));
        }
    };
    Ok(Failure {
        what: field("what"),
        resource: field("resource"),
        kind,
        error: name.to_owned(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_api_key_job_may_name_its_account_and_a_bad_one_is_refused() {
        let input = decode(
            Job::ApiKey,
            &json!({"key": "k1", "account": "111122223333"}),
            true,
        )
        .unwrap();
        assert_eq!(input.account.unwrap().as_str(), "111122223333");
        assert_eq!(
            decode(Job::ApiKey, &json!({"key": "k1"}), true)
                .unwrap()
                .account,
            None
        );
        for bad in [json!("1234"), json!(111122223333_u64), json!(null)] {
            let e = decode(Job::ApiKey, &json!({"key": "k1", "account": bad}), true).unwrap_err();
            assert_eq!(e.name(), "KeyRotor.InvalidInput");
            assert!(e.to_string().contains("12-digit"), "{e}");
        }
    }

    fn target(id: &str, home: bool) -> Target {
        Target {
            account: AccountId::parse(id).unwrap(),
            name: String::new(),
            home,
        }
    }

    #[test]
    fn an_api_key_job_account_must_be_one_of_the_policy_targets() {
        let targets = [target("111122223333", true), target("444455556666", false)];
        let listed = AccountId::parse("444455556666").unwrap();
        assert!(check_account(&listed, &targets).is_ok());
        let other = AccountId::parse("777788889999").unwrap();
        let e = check_account(&other, &targets).unwrap_err();
        assert_eq!(e.name(), "KeyRotor.InvalidInput");
        let text = e.to_string();
        assert!(
            text.contains("777788889999")
                && text.contains("[accounts]")
                && text.contains("nothing was done"),
            "{text}"
        );
        assert!(check_account(&other, &[]).is_err());
    }

    #[test]
    fn each_job_gets_its_own_input_type() {
        let input = decode(
            Job::ApiKey,
            &json!({"key": "k1", "account": "111122223333"}),
            true,
        )
        .unwrap()
        .for_job(Job::ApiKey)
        .unwrap();
        assert!(
            matches!(&input, Input::ApiKey { key, account: Some(a) } if key == "k1" && a.as_str() == "111122223333"),
            "{input:?}"
        );
        let sweep = decode(Job::Certs, &json!({"key": "ignored"}), true).unwrap();
        assert!(matches!(sweep.for_job(Job::Certs).unwrap(), Input::Certs));
        assert!(sweep.for_job(Job::SecretRotation).is_err());
        // A sweep's input read as another job's does not invent the missing fields.
        assert!(sweep.for_job(Job::ApiKey).is_err());
        assert!(sweep.for_job(Job::RecordFailure).is_err());
    }

    #[test]
    fn an_api_key_job_needs_a_key() {
        let err = decode(Job::ApiKey, &json!({"at": 3}), true).unwrap_err();
        assert_eq!(err.name(), "KeyRotor.InvalidInput");
        let input = decode(Job::ApiKey, &json!({"key": "k1"}), true).unwrap();
        assert_eq!(input.key.as_deref(), Some("k1"));
    }

    #[test]
    fn at_is_read_only_when_event_time_is_on() {
        let event = json!({"at": "not a time"});
        assert!(decode(Job::Plan, &event, false).unwrap().at.is_none());
        assert!(decode(Job::Plan, &event, true).is_err());
        let at = decode(Job::Plan, &json!({"at": "2026-01-02T03:04:05+02:00"}), true)
            .unwrap()
            .at
            .unwrap();
        assert_eq!(at.to_rfc3339(), "2026-01-02T01:04:05+00:00");
    }

    #[test]
    fn a_failure_keeps_its_name_and_a_bounded_cause() {
        let event = json!({
            "what": "rotation", "resource": "k1", "kind": "api-keys",
            "error": {"Error": "KeyRotor.Blocked", "Cause": "é".repeat(5000)}
        });
        let f = decode(Job::RecordFailure, &event, false)
            .unwrap()
            .failure
            .unwrap();
        assert_eq!(
            (f.kind, f.error.as_str()),
            (Kind::ApiKeys, "KeyRotor.Blocked")
        );
        assert_eq!(f.cause.chars().count(), 1000);
        let mut with_account = event.clone();
        with_account["account"] = json!("111122223333");
        let input = decode(Job::RecordFailure, &with_account, false).unwrap();
        assert_eq!(input.account.unwrap().as_str(), "111122223333");
        let err = decode(Job::RecordFailure, &json!({"kind": 7}), false).unwrap_err();
        assert!(err.to_string().contains("\"unknown\""), "{err}");
    }

    #[test]
    fn the_respond_jobs_read_the_event_an_exposure_or_a_response() {
        // Decode: the event as EventBridge delivers it, as text; not an object: refused.
        let event = json!({"source": "aws.health", "detail": {"eventTypeCode": "X"}});
        let input = decode(Job::RespondDecode, &event, false).unwrap();
        assert!(
            matches!(input.for_job(Job::RespondDecode).unwrap(), Input::RespondDecode { event: e } if e.contains("aws.health"))
        );
        for bad in [json!("text"), json!([1]), json!(null)] {
            let e = decode(Job::RespondDecode, &bad, false).unwrap_err();
            assert_eq!(e.name(), "KeyRotor.InvalidInput", "{bad}");
        }
        let huge = json!({"detail": "x".repeat(EVENT_LIMIT)});
        let e = decode(Job::RespondDecode, &huge, false).unwrap_err();
        assert!(e.to_string().contains("256 KiB"), "{e}");

        // Contain: one exposure as Decode lists it, and a region.
        let exposure = json!({
            "target": {"type": "key", "id": "AKIAIOSFODNN7EXAMPLE"},
            "reason": "exposed", "trigger": "health",
            "event_id": "arn:aws:health:global::event/RISK/X/1",
            "event_type": "AWS_RISK_CREDENTIALS_EXPOSED", "account": "111122223333"
        });
        let input = decode(
            Job::RespondContain,
            &json!({"exposure": exposure, "region": "eu-west-1"}),
            false,
        )
        .unwrap();
        match input.for_job(Job::RespondContain).unwrap() {
            Input::RespondContain { exposure, region } => {
                assert_eq!(exposure.event_type, "AWS_RISK_CREDENTIALS_EXPOSED");
                assert_eq!(region.as_deref(), Some("eu-west-1"));
            }
            other => panic!("{other:?}"),
        }
        let no_region = decode(Job::RespondContain, &json!({"exposure": exposure}), false).unwrap();
        assert_eq!(no_region.region, None);
        for bad in [
            json!({"exposure": exposure, "region": "../etc"}),
            json!({"exposure": exposure, "region": 7}),
            json!({"region": "us-east-1"}),
            json!({"exposure": {"target": {"type": "key", "id": "not a key"}}}),
        ] {
            let e = decode(Job::RespondContain, &bad, false).unwrap_err();
            assert_eq!(e.name(), "KeyRotor.InvalidInput", "{bad}");
        }
    }

    #[test]
    fn a_response_passes_between_the_respond_jobs_as_it_was_written() {
        use crate::domain::respond::{Reason, Trigger};
        use crate::steps::respond::{Replacement, ResponseStep};
        use crate::steps::status::Status;
        let response = Response {
            run_id: "r1".into(),
            account: "111122223333".into(),
            key: "AKIAIOSFODNN7EXAMPLE".into(),
            user: Some("svc".into()),
            owner: None,
            reason: Reason::Compromised,
            trigger: Trigger::GuardDuty,
            event_id: "f1".into(),
            event_type: "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration".into(),
            status: Status::Done,
            detail: "contained".into(),
            steps: vec![ResponseStep {
                step: "revoke-sessions",
                status: Status::Done,
                detail: "denied".into(),
            }],
            replacement: Some(Replacement {
                secret: "arn:aws:secretsmanager:us-east-1:111122223333:secret:svc".into(),
                key: Some("AKIAI44QH8DHBEXAMPLE".into()),
            }),
            undo: vec!["keyrotor reactivate iam-key AKIAIOSFODNN7EXAMPLE".into()],
            activity: None,
            investigation_problems: Vec::new(),
            sessions_revoked_before: None,
        };
        let payload = serde_json::to_value(&response).unwrap();
        for job in [Job::RespondInvestigate, Job::RespondNotify] {
            let read = decode(job, &payload, false).unwrap().response.unwrap();
            assert_eq!(serde_json::to_value(&*read).unwrap(), payload);
        }
        // A step name keyrotor never writes is refused, as is a payload that is no response.
        let mut forged = payload.clone();
        forged["steps"][0]["step"] = json!("delete");
        let e = decode(Job::RespondNotify, &forged, false).unwrap_err();
        assert!(e.to_string().contains("delete"), "{e}");
        let e = decode(Job::RespondInvestigate, &json!({"key": "AKIA"}), false).unwrap_err();
        assert_eq!(e.name(), "KeyRotor.InvalidInput");
    }

    #[test]
    fn a_respond_failure_is_recorded_on_the_iam_key_chain() {
        let event = json!({"what": "respond", "resource": "event", "kind": "respond",
                           "error": {"Error": "KeyRotor.InvalidInput", "Cause": "no key"}});
        let f = decode(Job::RecordFailure, &event, false)
            .unwrap()
            .failure
            .unwrap();
        assert_eq!(f.kind, Kind::IamKeys);
    }
}
