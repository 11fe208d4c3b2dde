//! The Step Functions input of every job (and the EventBridge scheduled event a rule would
//! hand the sweep's first task, or the exposure event a rule hands the respond workflow): the payload bytes decoded to JSON (what `lambda_runtime`
//! does), then `keyrotor::lambda::input::decode`, which `run_job` calls before any AWS call.
#![no_main]

use keyrotor::lambda::{Job, input};
use libfuzzer_sys::fuzz_target;

const JOBS: [Job; 10] = [
    Job::Plan,
    Job::IamKeys,
    Job::ApiKey,
    Job::Migration,
    Job::Certs,
    Job::RecordFailure,
    Job::RespondDecode,
    Job::RespondContain,
    Job::RespondInvestigate,
    Job::RespondNotify,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) {
        for job in JOBS {
            for event_time in [false, true] {
                if let Ok(decoded) = input::decode(job, &event, event_time) {
                    if let Some(failure) = &decoded.failure {
                        assert!(failure.cause.chars().count() <= 1000);
                    }
                    if let Some(text) = &decoded.event {
                        assert!(text.len() <= input::EVENT_LIMIT);
                    }
                    // What decode accepted, the job takes.
                    assert!(decoded.for_job(job).is_ok());
                }
            }
        }
    }
});
