//! Progress of long steps, as `tracing` events on target [`TARGET`] at debug level.
//!
//! Steps say how many items a phase has and when each is done; they do not know who
//! listens. The CLI turns these events into progress bars on a terminal (not with
//! `--quiet`); the Lambdas' log filter (`keyrotor=info`) drops them.

/// The tracing target of progress events.
pub const TARGET: &str = "keyrotor::progress";

/// One phase of a step: `start` announces its size, [`Phase::step`] each item done, and
/// dropping it ends the phase.
pub struct Phase {
    name: &'static str,
}

impl Phase {
    pub fn start(name: &'static str, total: usize) -> Phase {
        tracing::debug!(target: TARGET, phase = name, total = total as u64, "start");
        Phase { name }
    }

    pub fn step(&self) {
        tracing::debug!(target: TARGET, phase = self.name, "step");
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        tracing::debug!(target: TARGET, phase = self.name, "finish");
    }
}
