//! The Secrets Manager rotation event, as the hook's Lambda runtime receives it: the payload
//! bytes decoded to JSON (what `lambda_runtime` does), then `Request::from_event`.
#![no_main]

use keyrotor::steps::secret_rotation::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = Request::from_event(event);
    }
});
