//! Human-readable tables and JSON shapes for the CLI.
//!
//! Much of what is shown comes from the accounts keyrotor reads (API key and user names,
//! tags, certificate domains, error messages that quote them), so every table cell and
//! every such string put into free text goes through [`clean`] first: a name cannot move
//! the cursor, clear the screen, retitle the window or fake a line of output. JSON output
//! is escaped by serde and needs nothing more.
//!
//! This module holds what every renderer shares (colour, [`clean`], the table layout); one
//! file per subject renders its tables: `plan`, `posture`, `iam`, `certs`, `api_keys`,
//! `migration` and `records` (the audit table, its creation and verification).

mod api_keys;
mod certs;
mod iam;
mod migration;
mod plan;
mod posture;
mod records;
mod respond;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

pub use api_keys::{api_sweep_table, rotation_text, secret_steps_table};
pub use certs::{certs_table, sweep_table};
pub use iam::{iam_sweep_table, reactivated_text};
pub use migration::{funnel_table, migration_plan_text, migration_sweep_table};
pub use plan::plan_table;
pub use posture::posture_table;
pub use records::{init_json, init_table, records_json, records_table, verify_text};
pub use respond::responses_text;

/// Whether output may be coloured: set once by the CLI when stdout is a terminal and
/// `NO_COLOR` is not set.
static COLOUR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn enable_colour(on: bool) {
    COLOUR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// A tone for [`paint`].
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Muted,
}

/// `text` in the tone's colour on a terminal, unchanged otherwise. Only used for a table's
/// last column (which is not padded) or whole lines, so alignment is unaffected.
pub fn paint(text: &str, tone: Tone) -> String {
    if !COLOUR.load(std::sync::atomic::Ordering::Relaxed) {
        return text.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
        Tone::Muted => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Whether `c` is a C0 control (U+0000–U+001F), DEL (U+007F) or a C1 control
/// (U+0080–U+009F): the characters a terminal may act on rather than print.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// `text` fit for a terminal: every C0 and C1 control character and DEL removed (tab,
/// newline and carriage return become a space, so words stay apart). Escape sequences lose
/// their ESC/CSI introducer and are shown as the harmless text that remains.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter_map(|c| match c {
                '\t' | '\n' | '\r' => Some(' '),
                c if is_control(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// [`clean`] for a block of several lines (a policy document, a config snippet): each line
/// cleaned, the line breaks kept.
pub fn clean_lines(text: &str) -> String {
    text.lines()
        .map(|l| clean(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Left-aligned columns, two spaces apart; the last column is not padded. Every cell is
/// [`clean`]ed: this is the one place table cells are rendered.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_toned(header, rows, |_| None)
}

/// [`table`], with row `i`'s last cell [`paint`]ed in `tone(i)` after it is cleaned (the
/// colour codes are keyrotor's own, never a cell's).
fn table_toned(
    header: &[&str],
    rows: &[Vec<String>],
    tone: impl Fn(usize) -> Option<Tone>,
) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>, tone: Option<Tone>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                match tone {
                    Some(t) => out.push_str(&paint(cell, t)),
                    None => out.push_str(cell),
                }
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), None);
    for (i, row) in rows.iter().enumerate() {
        line(row.iter().map(|c| c.as_ref()).collect(), tone(i));
    }
    out
}

fn day(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d").to_string())
}
