//! The events that report an exposed credential (AWS Health, GuardDuty, CloudTrail), as
//! EventBridge delivers them: the payload bytes as text, then
//! `keyrotor::domain::respond::event::decode`, which every respond entry point calls first.
#![no_main]

use keyrotor::domain::respond::event::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(input) = std::str::from_utf8(data) {
        match decode(input) {
            Ok(exposures) => assert!(!exposures.is_empty()),
            Err(e) => {
                assert!(e.message.starts_with("event"));
                assert!(e.message.chars().count() <= 2000);
            }
        }
    }
});
