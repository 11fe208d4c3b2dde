//! Test time: day `n` of a test's story, for both clocks at once.
//!
//! keyrotor reads its clock from `KEYROTOR_NOW`; the emulator keeps its own (CreateDate,
//! LastUsedDate and the credential report follow it). A lifecycle test is only real when
//! both say the same day, so [`Timeline::keyrotor`] moves the emulator's clock and sets
//! `KEYROTOR_NOW` from the same instant.

use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::World;

/// Day 0 of a test (midnight UTC) and the days after it.
#[derive(Clone, Copy, Debug)]
pub struct Timeline {
    year: i32,
    month: u32,
    day: u32,
}

impl Timeline {
    /// A timeline whose day 0 is `year-month-day`, midnight UTC.
    pub const fn starting(year: i32, month: u32, day: u32) -> Timeline {
        Timeline { year, month, day }
    }

    /// Day 0.
    pub fn t0(&self) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(self.year, self.month, self.day, 0, 0, 0)
            .single()
            .expect("a valid start date")
    }

    /// Day `n` (negative: before day 0).
    pub fn at(&self, n: i64) -> DateTime<Utc> {
        self.t0() + Duration::days(n)
    }

    /// Day `n` in RFC 3339, as `KEYROTOR_NOW` and the emulator's clock take it.
    pub fn day(&self, n: i64) -> String {
        self.at(n).to_rfc3339()
    }

    /// Moves `world`'s emulator clock to day `n`.
    pub fn set_clock(&self, world: &World, n: i64) {
        world.set_clock(&self.day(n));
    }

    /// `keyrotor --config <policy>` on day `n`: the emulator's clock moved to day `n` and
    /// `KEYROTOR_NOW` set to it.
    pub fn keyrotor(&self, world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Command {
        self.set_clock(world, n);
        let mut cmd = world.keyrotor();
        cmd.env("KEYROTOR_NOW", self.day(n))
            .arg("--config")
            .arg(policy.path());
        cmd
    }
}
