//! The tamper-evident audit log: hash chain, writer and verifier of the records defined in
//! [`crate::domain::audit_record`].
//!
//! The writer appends through the [`AuditStore`] port: it reads the resource's last record,
//! seals the next one (`seq + 1`, `prev_hash` = last hash) and puts it only if that sequence
//! number is free. A lost race re-reads and retries; no item is ever updated. The verifier
//! walks every chain and reports each gap, alteration or broken link.
//!
//! A chain alone cannot show that its newest records, or the whole chain, were removed. So
//! each run ends by anchoring what it wrote: one record per account and kind, on the chain
//! `kind#account#global#keyrotor:anchor`, listing every resource the run appended to with
//! its last sequence number and hash ([`AuditLog::anchor`]). The anchors are chained like
//! any record, and the verifier checks every resource an anchor names: a chain shorter than
//! anchored, or missing, is reported ([`Finding::Truncated`]). What stays undetectable:
//! records appended after the newest anchor of their account and kind (a run that died
//! before anchoring), removing the newest anchors together with what they anchor, and
//! records appended by anyone able to write the table (the hash is not keyed).
//!
//! The writer lives here; the verifier, which needs nothing but the stored records, in
//! `verify`; the unit tests of both in `tests`.

mod verify;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::audit_record::{AuditRecord, Entry, Phase, ResourceRef};
use crate::ports::{AppendError, AuditStore, PortError};

pub use verify::{Finding, VerifyReport, verify};

/// Attempts at appending one record when other writers keep winning the race.
const APPEND_ATTEMPTS: usize = 16;

/// Id of the anchor chain's resource (per account and kind).
pub const ANCHOR_ID: &str = "keyrotor:anchor";

/// Appends records for one run.
pub struct AuditLog<'a> {
    store: &'a dyn AuditStore,
    run_id: String,
    actor: String,
    /// The newest record this run appended to each resource: (kind, account) -> resource
    /// key -> (seq, hash).
    written: Mutex<BTreeMap<(crate::domain::model::Kind, String), Heads>>,
}

/// Resource key -> (last seq, its hash).
type Heads = BTreeMap<String, (u64, String)>;

/// One anchored chain head, as an anchor record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Anchored {
    pub resource: String,
    pub seq: u64,
    pub hash: String,
}

impl<'a> AuditLog<'a> {
    pub fn new(
        store: &'a dyn AuditStore,
        run_id: impl Into<String>,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            store,
            run_id: run_id.into(),
            actor: actor.into(),
            written: Mutex::new(BTreeMap::new()),
        }
    }

    fn remember(&self, record: &AuditRecord) {
        if record.resource_id == ANCHOR_ID {
            return;
        }
        if let Ok(mut written) = self.written.lock() {
            written
                .entry((record.kind, record.account.clone()))
                .or_default()
                .insert(record.resource.clone(), (record.seq, record.hash.clone()));
        }
    }

    /// Anchors what this run appended: one record per account and kind on the anchor
    /// chain, listing each resource's last sequence number and hash. Nothing appended,
    /// nothing written. Safe to call more than once (each call anchors what came since).
    pub async fn anchor(&self, recorded_at: DateTime<Utc>) -> Result<usize, PortError> {
        let written = match self.written.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return Ok(0),
        };
        let mut anchored = 0;
        for ((kind, account), heads) in written {
            let list: Vec<Anchored> = heads
                .into_iter()
                .map(|(resource, (seq, hash))| Anchored {
                    resource,
                    seq,
                    hash,
                })
                .collect();
            let detail = serde_json::to_string(&list).map_err(|e| PortError::Other {
                operation: "audit anchor".into(),
                message: e.to_string(),
            })?;
            let entry = Entry {
                resource: ResourceRef {
                    kind,
                    account,
                    region: "global".into(),
                    id: ANCHOR_ID.into(),
                },
                action: "anchor".into(),
                phase: Phase::Decision,
                outcome: None,
                reason: "anchor".into(),
                detail,
                before: None,
                after: None,
                dry_run: false,
                policy_time: recorded_at,
            };
            self.append(&entry, recorded_at).await?;
            anchored += 1;
        }
        Ok(anchored)
    }

    /// Anchors this run's records whatever `result` is, then returns `result`; a failed
    /// anchor turns a success into that error, and never hides the run's own error.
    pub async fn finish<T, E: From<PortError>>(
        &self,
        result: Result<T, E>,
        recorded_at: DateTime<Utc>,
    ) -> Result<T, E> {
        let anchored = self.anchor(recorded_at).await;
        let value = result?;
        anchored?;
        Ok(value)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends `entry` to its resource's chain. `recorded_at` is the wall-clock time.
    pub async fn append(
        &self,
        entry: &Entry,
        recorded_at: DateTime<Utc>,
    ) -> Result<AuditRecord, PortError> {
        let key = entry.resource.key();
        let mut tried: Option<AuditRecord> = None;
        for _ in 0..APPEND_ATTEMPTS {
            let last = self.store.last(&key).await?;
            // The sequence number was taken by this very record: its put went through and
            // only the answer was lost (the SDK's retry then found the number taken).
            if let (Some(mine), Some(last)) = (&tried, &last)
                && mine.hash == last.hash
            {
                self.remember(mine);
                return Ok(mine.clone());
            }
            let record =
                AuditRecord::seal(entry, last.as_ref(), &self.run_id, &self.actor, recorded_at);
            match self.store.append(&record).await {
                Ok(()) => {
                    self.remember(&record);
                    return Ok(record);
                }
                Err(AppendError::SeqTaken) => {
                    tried = Some(record);
                    continue;
                }
                Err(AppendError::Port(e)) => return Err(e),
            }
        }
        Err(PortError::Conflict {
            operation: "audit append".into(),
            message: format!(
                "{key}: {APPEND_ATTEMPTS} concurrent writers took every sequence number first"
            ),
        })
    }
}
