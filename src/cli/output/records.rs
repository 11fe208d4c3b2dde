//! The audit table as text and JSON: its creation (`keyrotor init`), its records and
//! their verification.

use serde::Serialize;

use super::{clean, table};
use crate::audit::VerifyReport;
use crate::domain::audit_record::AuditRecord;
use crate::domain::audit_record::StoredRecord;
use crate::ports::TableStatus;

#[derive(Serialize)]
pub struct InitRow<'a> {
    table: &'a str,
    status: &'static str,
}

fn status(s: TableStatus) -> &'static str {
    match s {
        TableStatus::Created => "created",
        TableStatus::AlreadyExists => "exists",
    }
}

pub fn init_json(done: &[(String, TableStatus)]) -> Vec<InitRow<'_>> {
    done.iter()
        .map(|(t, s)| InitRow {
            table: t,
            status: status(*s),
        })
        .collect()
}

pub fn init_table(done: &[(String, TableStatus)], region: &str) -> String {
    let rows: Vec<Vec<String>> = done
        .iter()
        .map(|(t, s)| vec![t.clone(), status(*s).to_owned()])
        .collect();
    format!(
        "Tables in {}:\n{}",
        clean(region),
        table(&["TABLE", "STATUS"], &rows)
    )
}

/// One listed item: a record, or an item that could not be read.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ListedRecord<'a> {
    Record(&'a AuditRecord),
    Unreadable {
        resource: &'a str,
        seq: Option<u64>,
        unreadable: &'a str,
    },
}

pub fn records_json(records: &[StoredRecord]) -> Vec<ListedRecord<'_>> {
    records
        .iter()
        .map(|r| match r {
            Ok(r) => ListedRecord::Record(r),
            Err(u) => ListedRecord::Unreadable {
                resource: &u.resource,
                seq: u.seq,
                unreadable: &u.message,
            },
        })
        .collect()
}

pub fn records_table(records: &[StoredRecord]) -> String {
    if records.is_empty() {
        return "No audit records match.\n".into();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| match r {
            Ok(r) => vec![
                r.recorded_at
                    .get(..19)
                    .unwrap_or(&r.recorded_at)
                    .replace('T', " "),
                r.run_id.clone(),
                r.kind.to_string(),
                r.resource_id.clone(),
                r.seq.to_string(),
                format!(
                    "{}{}",
                    r.phase.as_str(),
                    r.outcome
                        .map(|o| format!("/{}", o.as_str()))
                        .unwrap_or_default()
                ),
                r.action.clone(),
                format!("{}{}", r.reason, if r.dry_run { " (dry run)" } else { "" }),
            ],
            Err(u) => vec![
                String::new(),
                String::new(),
                String::new(),
                u.resource.clone(),
                u.seq.map(|s| s.to_string()).unwrap_or_default(),
                "UNREADABLE".into(),
                String::new(),
                u.message.clone(),
            ],
        })
        .collect();
    format!(
        "{} record(s):\n{}",
        records.len(),
        table(
            &[
                "RECORDED", "RUN", "KIND", "RESOURCE", "SEQ", "PHASE", "ACTION", "REASON"
            ],
            &rows
        )
    )
}

pub fn verify_text(report: &VerifyReport, table_name: &str) -> String {
    if report.ok() {
        return format!(
            "audit table {}: OK — {} record(s) in {} chain(s), every hash and link verified\n",
            clean(table_name),
            report.records,
            report.chains
        );
    }
    let mut out = format!(
        "audit table {}: TAMPERED — {} problem(s) in {} record(s):\n",
        clean(table_name),
        report.findings.len(),
        report.records
    );
    for f in &report.findings {
        out.push_str(&format!("  - {}\n", clean(&f.to_string())));
    }
    out
}
