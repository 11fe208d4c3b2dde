//! The time: read once per run by the steps, never by the domain.

use chrono::{DateTime, Utc};

/// The time. Steps read it once per run; the core never reads it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, or a fixed time from `KEYROTOR_NOW` / `--at`.
#[derive(Debug, Clone, Copy)]
pub enum SystemClock {
    Real,
    Fixed(DateTime<Utc>),
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        match self {
            SystemClock::Real => Utc::now(),
            SystemClock::Fixed(t) => *t,
        }
    }
}
