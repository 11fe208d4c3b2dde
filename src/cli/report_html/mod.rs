//! `keyrotor report --html`: one self-contained page (no script, no external asset), with
//! the charts drawn as inline SVG.
//!
//! The markup is in askama templates (`templates/report/page.html` and its chart macros in
//! `templates/report/charts.html`), compiled into the binary. This module only computes what
//! the page shows: chart geometry as numbers ([`charts`]), colours from a fixed palette, and
//! the posture itself. The page shows names that come from the audited account (user names, tags,
//! domains, reasons), so the safety invariant is that **every interpolation is escaped**: the
//! templates are `.html`, where askama escapes each `{{ … }}` by itself, and no template marks
//! account data `|safe`. A forgotten call can no longer turn a key's name into script in a
//! security report.

use std::fmt;

use askama::Template;
use askama::filters::Escaper;

use crate::domain::posture::{ApiKeyLine, ControlStatus, Posture, ROTATION_DAYS};

mod charts;

use charts::{AgeHistogram, BAD, BarChart, CertTimeline, INFO, MUTED, OK, WARN};

/// The page's sections, in order: `(id, heading)`. The browser test checks each is shown;
/// the template's `section` macro takes each heading from here.
pub const SECTIONS: [(&str, &str); 8] = [
    ("summary", "Summary"),
    ("compliance", "Compliance"),
    ("iam-key-age", "IAM access key age"),
    ("iam-key-states", "IAM keys by lifecycle state"),
    ("api-keys", "API key rotation"),
    ("certificates", "Certificate expiry"),
    ("migration", "Migration to roles"),
    ("recent-actions", "Recent audited actions"),
];

/// API keys listed in the table (the oldest first); the bars count them all.
const API_KEY_ROWS: usize = 50;

/// The escaper of every `.html` template (`templates/askama.toml`): HTML's five special
/// characters become named or short entities, safe in element content and in quoted
/// attribute values alike.
///
/// askama's own `Html` escaper is just as safe but writes numeric entities (`&#60;`); this one
/// keeps the escaped form the page has always had (`&lt;`), which readers grepping a saved
/// report and `tests/report_cli.rs` look for. It is the only escaping code left here, and
/// askama applies it: no template has to remember it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NamedEntities;

impl askama::filters::Escaper for NamedEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, byte) in text.bytes().enumerate() {
            let entity = match byte {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // The five are ASCII, so `i` is a char boundary.
            dest.write_str(&text[plain..i])?;
            dest.write_str(entity)?;
            plain = i + 1;
        }
        dest.write_str(&text[plain..])
    }
}

/// The whole page (`templates/report/page.html`).
#[derive(Template)]
#[template(path = "report/page.html", config = "templates/askama.toml")]
struct Page<'a> {
    p: &'a Posture,
    generated_at: String,
    version: &'static str,
    rotation_days: i64,
    next_expiry: Option<i64>,
    age: AgeHistogram<'a>,
    key_states: BarChart<'a>,
    api_key_status: BarChart<'a>,
    api_keys: &'a [ApiKeyLine],
    certificates: CertTimeline<'a>,
    migration_funnel: BarChart<'a>,
}

impl<'a> Page<'a> {
    fn new(p: &'a Posture) -> Self {
        Page {
            p,
            generated_at: p.generated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            version: env!("CARGO_PKG_VERSION"),
            rotation_days: ROTATION_DAYS,
            next_expiry: p.certificates.iter().filter_map(|c| c.days_left).min(),
            age: AgeHistogram::new(&p.iam.age_buckets),
            key_states: BarChart::new("IAM access keys by lifecycle state", &p.iam.by_stage, |c| {
                match c.label.as_str() {
                    "active" => OK,
                    "warned" | "escalated" | "superseded" => WARN,
                    "deactivated" | "contained" => BAD,
                    _ => MUTED,
                }
            }),
            api_key_status: BarChart::new("API keys by rotation status", &p.api_key_status, |c| {
                match c.label.as_str() {
                    "current" => OK,
                    "due" => BAD,
                    "rotating" | "replacement" => INFO,
                    _ => MUTED,
                }
            }),
            api_keys: &p.api_keys[..p.api_keys.len().min(API_KEY_ROWS)],
            certificates: CertTimeline::new(p),
            migration_funnel: BarChart::new(
                "IAM users reaching each migration stage",
                &p.migration_funnel,
                |c| if c.label == "migrated" { OK } else { INFO },
            ),
        }
    }

    /// The heading of a section, from [`SECTIONS`] (the id itself if it is not listed).
    fn heading<'s>(&self, id: &'s str) -> &'s str {
        SECTIONS
            .iter()
            .find(|(s, _)| *s == id)
            .map_or(id, |(_, h)| h)
    }
}

/// The whole page.
///
/// Rendering writes only `str`s, integers and [`charts::Px`] into a `String`, none of which can fail
/// to format, so the error arm is not expected to run; if it ever does, the page says what
/// went wrong and where the same data is, instead of the command panicking.
pub fn render(p: &Posture) -> String {
    Page::new(p).render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "the HTML report could not be rendered");
        let mut why = String::new();
        let _ = NamedEntities.write_escaped_str(&mut why, &e.to_string());
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>keyrotor posture</title></head><body><p>keyrotor could not render this report ({why}); `keyrotor report --output json` shows the same posture.</p></body></html>\n"
        )
    })
}

#[cfg(test)]
mod tests;
