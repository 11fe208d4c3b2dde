//! The recent actions of the posture, from the audit table (dry runs left out).

use serde::Serialize;

use super::PostureInput;
use crate::domain::audit_record::{AuditRecord, Phase};
use crate::domain::model::Kind;

#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    pub recorded_at: String,
    pub kind: Kind,
    pub resource_id: String,
    pub action: String,
    pub phase: Phase,
    pub outcome: Option<String>,
    pub reason: String,
}

/// The newest `input.recent` records that changed something, newest first.
pub(super) fn recent_actions(input: &PostureInput<'_>) -> Vec<AuditLine> {
    let mut recent: Vec<&AuditRecord> = input.audit.iter().filter(|r| !r.dry_run).collect();
    recent.sort_by(|a, b| {
        (&b.recorded_at, &b.resource, b.seq).cmp(&(&a.recorded_at, &a.resource, a.seq))
    });
    recent
        .into_iter()
        .take(input.recent)
        .map(|r| AuditLine {
            recorded_at: r.recorded_at.clone(),
            kind: r.kind,
            resource_id: r.resource_id.clone(),
            action: r.action.clone(),
            phase: r.phase,
            outcome: r.outcome.map(|o| o.as_str().to_owned()),
            reason: r.reason.clone(),
        })
        .collect()
}
