//! `[audit]`: the DynamoDB tables of the audit chain and of the lifecycle state.

use serde::{Deserialize, Serialize};

use super::source::{Field, PolicyError, Source};
use super::validate::is_table_name;

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPolicy {
    /// DynamoDB table holding the hash-chained audit records.
    pub table: String,
    /// DynamoDB table holding lifecycle state and leases.
    pub state_table: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    table: Field<String>,
    state_table: Field<String>,
}

impl AuditPolicy {
    /// Checks `[audit]`: the two tables must differ, since the audit table is append-only.
    pub(super) fn decode(r: &RawAudit, src: &Source<'_>) -> Result<AuditPolicy, PolicyError> {
        let table_name = |field: &Field<String>, key: &str, default: &str| match field {
            None => Ok(default.to_owned()),
            Some(name) if is_table_name(name.get_ref()) => Ok(name.get_ref().clone()),
            Some(name) => Err(src.error(
                name,
                key,
                format!(
                    "{:?} is not a DynamoDB table name: 3 to 255 letters, digits and _.-",
                    name.get_ref()
                ),
            )),
        };
        let audit = AuditPolicy {
            table: table_name(&r.table, "audit.table", "keyrotor-audit")?,
            state_table: table_name(&r.state_table, "audit.state_table", "keyrotor-state")?,
        };
        if audit.table == audit.state_table {
            let offset = r.state_table.as_ref().map_or(0, |f| f.span().start);
            return Err(src.error_at(
                offset,
                "audit.state_table",
                "must differ from audit.table: the audit table is append-only",
            ));
        }
        Ok(audit)
    }
}
