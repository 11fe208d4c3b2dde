//! The IAM credential report CSV, as GetCredentialReport returns its content.
#![no_main]

use keyrotor::domain::credential_report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = credential_report::parse(data) {
        for row in &rows {
            let _ = (row.is_root(), row.path());
        }
    }
});
