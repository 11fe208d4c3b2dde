//! The IAM credential report: a CSV that lists every user, its two access key slots and when
//! each was last rotated and used. It is decoded here, in the core, because it is outside
//! input: a malformed report is an error that names the line, never a panic.

use chrono::{DateTime, Utc};

use super::model::LastUsed;

/// The user name the report gives the account's root user.
pub const ROOT_ROW: &str = "<root_account>";

/// One access key slot of a report row. The report has no key ids; a slot is matched to a
/// key from ListAccessKeys by its creation time (`last_rotated`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportKey {
    pub active: bool,
    pub last_rotated: DateTime<Utc>,
    pub last_used: Option<LastUsed>,
}

/// One user of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportRow {
    pub user: String,
    pub arn: String,
    pub created: Option<DateTime<Utc>>,
    pub keys: Vec<ReportKey>,
}

impl ReportRow {
    pub fn is_root(&self) -> bool {
        self.user == ROOT_ROW
    }

    /// The IAM path, from the ARN (`arn:aws:iam::123456789012:user/apps/alice` -> `/apps/`).
    pub fn path(&self) -> String {
        let resource = self.arn.splitn(6, ':').nth(5).unwrap_or_default();
        match resource.strip_prefix("user") {
            Some(rest) => match rest.rfind('/') {
                Some(i) => rest[..=i].to_owned(),
                None => "/".to_owned(),
            },
            None => "/".to_owned(),
        }
    }
}

/// A report that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential report line {line}: {message}")]
pub struct ReportError {
    pub line: u64,
    pub message: String,
}

const COLUMNS: [&str; 13] = [
    "user",
    "arn",
    "user_creation_time",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
];

/// A timestamp cell; `N/A`, `no_information`, `not_supported` and empty cells are `None`.
fn time_cell(value: &str, line: u64, column: &str) -> Result<Option<DateTime<Utc>>, ReportError> {
    match value {
        "" | "N/A" | "no_information" | "not_supported" => Ok(None),
        v => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| ReportError {
                line,
                message: format!("column {column}: {v:?} is not a timestamp ({e})"),
            }),
    }
}

fn text_cell(value: &str) -> Option<String> {
    match value {
        "" | "N/A" | "no_information" | "not_supported" => None,
        v => Some(v.to_owned()),
    }
}

fn bool_cell(value: &str, line: u64, column: &str) -> Result<bool, ReportError> {
    match value {
        "true" => Ok(true),
        "false" | "N/A" => Ok(false),
        v => Err(ReportError {
            line,
            message: format!("column {column}: {v:?} is neither true nor false"),
        }),
    }
}

/// Decodes the report's CSV content.
pub fn parse(content: &[u8]) -> Result<Vec<ReportRow>, ReportError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(content);
    let headers = reader
        .headers()
        .map_err(|e| ReportError {
            line: 1,
            message: format!("unreadable header: {e}"),
        })?
        .clone();
    let mut index = [0usize; COLUMNS.len()];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ReportError {
                line: 1,
                message: format!("missing column {name}; is this an IAM credential report?"),
            })?;
    }

    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| ReportError {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |i: usize| record.get(index[i]).unwrap_or_default();
        let user = cell(0).to_owned();
        if user.is_empty() {
            return Err(ReportError {
                line,
                message: "empty user name".into(),
            });
        }
        let mut keys = Vec::with_capacity(2);
        for slot in 0..2 {
            let base = 3 + slot * 5;
            let active = bool_cell(cell(base), line, COLUMNS[base])?;
            let Some(last_rotated) = time_cell(cell(base + 1), line, COLUMNS[base + 1])? else {
                continue; // empty slot
            };
            let last_used =
                time_cell(cell(base + 2), line, COLUMNS[base + 2])?.map(|at| LastUsed {
                    at,
                    region: text_cell(cell(base + 3)),
                    service: text_cell(cell(base + 4)),
                });
            keys.push(ReportKey {
                active,
                last_rotated,
                last_used,
            });
        }
        rows.push(ReportRow {
            user,
            arn: cell(1).to_owned(),
            created: time_cell(cell(2), line, COLUMNS[2])?,
            keys,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n";

    #[test]
    fn reads_root_and_users_with_zero_one_and_two_keys() {
        let csv = format!(
            "{HEADER}<root_account>,arn:aws:iam::123456789012:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
alice,arn:aws:iam::123456789012:user/apps/alice,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,true,2026-01-02T00:00:00+00:00,2026-02-01T10:00:00+00:00,us-east-1,s3,false,2026-01-03T00:00:00+00:00,N/A,N/A,N/A,false,N/A,false,N/A\n\
bob,arn:aws:iam::123456789012:user/bob,2026-01-01T00:00:00+00:00,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let rows = parse(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].is_root() && rows[0].keys.is_empty());
        let alice = &rows[1];
        assert_eq!(alice.path(), "/apps/");
        assert_eq!(alice.keys.len(), 2);
        assert!(alice.keys[0].active && !alice.keys[1].active);
        let used = alice.keys[0].last_used.as_ref().unwrap();
        assert_eq!(used.service.as_deref(), Some("s3"));
        assert_eq!(alice.keys[1].last_used, None);
        assert_eq!(rows[2].path(), "/");
        assert!(rows[2].keys.is_empty());
    }

    #[test]
    fn missing_column_is_an_error_naming_it() {
        let err = parse(b"user,arn\nalice,arn:x\n").unwrap_err();
        assert!(err.message.contains("user_creation_time"), "{err}");
    }

    #[test]
    fn bad_timestamp_names_line_and_column() {
        let csv = format!(
            "{HEADER}alice,arn:aws:iam::1:user/alice,yesterday,false,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        );
        let err = parse(csv.as_bytes()).unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("user_creation_time"), "{err}");
    }

    #[test]
    fn truncated_row_is_an_error() {
        let csv = format!("{HEADER}alice,arn:aws:iam::1:user/alice\n");
        assert!(parse(csv.as_bytes()).is_err());
    }

    #[test]
    fn empty_report_has_no_rows() {
        assert_eq!(parse(HEADER.as_bytes()).unwrap(), vec![]);
    }
}
