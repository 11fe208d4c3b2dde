//! Progress bars on stderr for the steps' [`crate::progress`] events: one bar per phase,
//! drawn only when stderr is a terminal and `--quiet` is not given.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;

/// The fields of one progress event.
#[derive(Default)]
struct Fields {
    phase: Option<String>,
    total: Option<u64>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "phase" {
            self.phase = Some(value.to_owned());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "total" {
            self.total = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        }
    }
}

/// A tracing layer drawing the bars.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Bars {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != crate::progress::TARGET {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        let (Some(phase), Some(message)) = (f.phase, f.message) else {
            return;
        };
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match message.as_str() {
            "start" => {
                let total = f.total.unwrap_or(0);
                // Nothing to show for an empty phase.
                if total == 0 {
                    return;
                }
                let bar = self.multi.add(ProgressBar::new(total));
                if let Ok(style) = ProgressStyle::with_template(
                    "{msg:>18} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
                ) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_message(phase.clone());
                bar.tick();
                bars.insert(phase, bar);
            }
            "step" => {
                if let Some(bar) = bars.get(&phase) {
                    bar.inc(1);
                }
            }
            "finish" => {
                if let Some(bar) = bars.remove(&phase) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            _ => {}
        }
    }
}
