//! An EventBridge schedule expression (`cron(...)` / `rate(...)`, the template's
//! ScheduleExpression, `keyrotor schedule --cron`), and its next run times.
#![no_main]

use chrono::TimeZone;
use keyrotor::domain::schedule::EventSchedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(schedule) = EventSchedule::parse(text)
        && let chrono::LocalResult::Single(after) =
            chrono::Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
    {
        let _ = schedule.upcoming(after, 5);
    }
});
