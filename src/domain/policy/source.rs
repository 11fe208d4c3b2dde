//! Span-located errors: turns a position in the policy text into a [`PolicyError`] that
//! names the file, line, column and key, and reads the whole numbers every section uses.

use std::fmt;
use std::ops::RangeInclusive;

use toml::Spanned;

/// A policy file that cannot be used, located to the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// Dotted key, e.g. `iam_keys.max_age_days` (empty when the document itself is broken).
    pub key: String,
    pub message: String,
    /// The offending line of the file, for context.
    pub source_line: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.trim().is_empty() {
            write!(f, "\n  {:>4} | {}", self.line, self.source_line)?;
        }
        Ok(())
    }
}

/// A key of a raw section: absent, or its value with where it was written.
pub(super) type Field<T> = Option<Spanned<T>>;

/// Locates spans in the source text.
pub(super) struct Source<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Source<'_> {
    pub(super) fn error_at(
        &self,
        offset: usize,
        key: &str,
        message: impl Into<String>,
    ) -> PolicyError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        let source_line = self.text[line_start..]
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        PolicyError {
            file: self.file.to_owned(),
            line,
            column,
            key: key.to_owned(),
            message: message.into(),
            source_line,
        }
    }

    pub(super) fn error<T>(
        &self,
        field: &Spanned<T>,
        key: &str,
        message: impl Into<String>,
    ) -> PolicyError {
        self.error_at(field.span().start, key, message)
    }

    /// A whole number within `range`, or `default` when absent.
    pub(super) fn number(
        &self,
        field: &Field<i64>,
        key: &str,
        default: u32,
        range: RangeInclusive<u32>,
        unit: &str,
    ) -> Result<u32, PolicyError> {
        let Some(value) = field else {
            return Ok(default);
        };
        let n = *value.get_ref();
        match u32::try_from(n) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(self.error(
                value,
                key,
                format!(
                    "{n} is out of range: allowed values are {} to {} {unit}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }
}

/// The usual range of a number of days.
pub(super) const DAYS: RangeInclusive<u32> = 1..=3650;
