//! Writing a command's output: stdout for results (a closed pipe is not an error), stderr
//! for notes, pretty JSON with its newline.

use std::io::Write;

use super::{CliError, OutputFormat};

/// Writes to stdout; a closed pipe (`keyrotor plan | head`) is not an error.
pub(super) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Io(format!("cannot write output: {e}"))),
    }
}

/// An informational line on stderr, unless `--quiet`.
pub(super) fn note(quiet: bool, text: &str) {
    if !quiet {
        eprintln!("{text}");
    }
}

/// Pretty JSON, with its newline.
pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, CliError> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))
}

/// A JSON value, to embed in a larger output.
pub(super) fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(value).map_err(|e| CliError::Io(format!("cannot encode JSON: {e}")))
}

/// Renders `value` in `format` and prints it.
pub(super) fn render<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    emit(&match format {
        OutputFormat::Json => to_json(value)?,
        OutputFormat::Table => table(value),
    })
}
