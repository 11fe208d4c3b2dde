//! The policy file (`keyrotor.toml`, or the `KEYROTOR_POLICY` text of a function).
#![no_main]

use keyrotor::domain::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Policy::from_toml(text, "fuzz.toml");
    }
});
