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

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::audit_record::{AuditRecord, Entry, GENESIS, Phase, ResourceRef, StoredRecord};
use crate::ports::{AppendError, AuditStore, PortError};

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

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Finding {
    /// The stored hash does not match the record's content: the record was altered.
    Altered { resource: String, seq: u64 },
    /// Sequence numbers skip: these records were removed.
    Missing {
        resource: String,
        from_seq: u64,
        to_seq: u64,
    },
    /// `prev_hash` does not match the hash of the record before it: a record before it was
    /// replaced, removed or moved.
    BrokenLink { resource: String, seq: u64 },
    /// An anchor names this resource's record `anchored_seq`, and the chain ends before it
    /// (`found_seq`: its last record; none: the whole chain is gone): records were removed
    /// from the end of the chain.
    Truncated {
        resource: String,
        anchored_seq: u64,
        found_seq: Option<u64>,
    },
    /// The item is not a readable audit record.
    Unreadable {
        resource: String,
        seq: Option<u64>,
        message: String,
    },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::Altered { resource, seq } => {
                write!(
                    f,
                    "{resource} seq {seq}: content does not match its hash (record altered)"
                )
            }
            Finding::Missing {
                resource,
                from_seq,
                to_seq,
            } if from_seq == to_seq => {
                write!(f, "{resource} seq {from_seq}: missing (record removed)")
            }
            Finding::Missing {
                resource,
                from_seq,
                to_seq,
            } => {
                write!(
                    f,
                    "{resource} seq {from_seq}..={to_seq}: missing (records removed)"
                )
            }
            Finding::BrokenLink { resource, seq } => write!(
                f,
                "{resource} seq {seq}: prev_hash does not match the record before it (a record was replaced, removed or reordered)"
            ),
            Finding::Truncated {
                resource,
                anchored_seq,
                found_seq: Some(found),
            } => write!(
                f,
                "{resource}: an anchor names seq {anchored_seq}, the chain ends at seq {found} (records removed from its end)"
            ),
            Finding::Truncated {
                resource,
                anchored_seq,
                found_seq: None,
            } => write!(
                f,
                "{resource}: an anchor names seq {anchored_seq}, the chain is gone (every record removed)"
            ),
            Finding::Unreadable {
                resource,
                seq,
                message,
            } => match seq {
                Some(seq) => write!(f, "{resource} seq {seq}: unreadable ({message})"),
                None => write!(f, "{resource}: unreadable item ({message})"),
            },
        }
    }
}

/// Result of walking every chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub chains: usize,
    pub records: usize,
    pub findings: Vec<Finding>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies every chain in `items`. Pure: works on whatever the store returned.
pub fn verify(items: Vec<StoredRecord>) -> VerifyReport {
    let mut findings = Vec::new();
    let mut chains: BTreeMap<String, Vec<AuditRecord>> = BTreeMap::new();
    let mut records = 0;
    for item in items {
        records += 1;
        match item {
            Ok(r) => chains.entry(r.resource.clone()).or_default().push(r),
            Err(u) => findings.push(Finding::Unreadable {
                resource: u.resource,
                seq: u.seq,
                message: u.message,
            }),
        }
    }
    for (resource, chain) in chains.iter_mut() {
        let resource = resource.clone();
        chain.sort_by_key(|r| r.seq);
        let mut expected_seq = 1;
        let mut prev_hash: Option<String> = None;
        for r in chain.iter() {
            if r.seq < expected_seq {
                // Two records with one sequence number: one of them was inserted.
                findings.push(Finding::BrokenLink {
                    resource: resource.clone(),
                    seq: r.seq,
                });
                continue;
            }
            if r.seq > expected_seq {
                findings.push(Finding::Missing {
                    resource: resource.clone(),
                    from_seq: expected_seq,
                    to_seq: r.seq - 1,
                });
            }
            if r.compute_hash() != r.hash {
                findings.push(Finding::Altered {
                    resource: resource.clone(),
                    seq: r.seq,
                });
            }
            let expected_prev = if r.seq == 1 {
                Some(GENESIS.to_owned())
            } else if r.seq == expected_seq {
                prev_hash.clone()
            } else {
                None // already reported as missing
            };
            if let Some(expected_prev) = expected_prev
                && r.prev_hash != expected_prev
            {
                findings.push(Finding::BrokenLink {
                    resource: resource.clone(),
                    seq: r.seq,
                });
            }
            expected_seq = r.seq + 1;
            prev_hash = Some(r.hash.clone());
        }
    }
    check_anchors(&chains, &mut findings);
    VerifyReport {
        chains: chains.len(),
        records,
        findings,
    }
}

/// Every chain head an anchor names must still be there, with the anchored hash.
fn check_anchors(chains: &BTreeMap<String, Vec<AuditRecord>>, findings: &mut Vec<Finding>) {
    let mut truncated: BTreeMap<String, (u64, Option<u64>)> = BTreeMap::new();
    for anchor in chains
        .values()
        .flatten()
        .filter(|r| r.resource_id == ANCHOR_ID)
    {
        let Ok(list) = serde_json::from_str::<Vec<Anchored>>(&anchor.detail) else {
            findings.push(Finding::Unreadable {
                resource: anchor.resource.clone(),
                seq: Some(anchor.seq),
                message: "the anchor's list of chain heads is not readable".into(),
            });
            continue;
        };
        for head in list {
            let chain = chains.get(&head.resource);
            match chain.and_then(|c| c.iter().find(|r| r.seq == head.seq)) {
                Some(r) if r.hash == head.hash => {}
                // Already reported by the chain walk when altered; a replaced record
                // with a valid hash of its own is reported here.
                Some(r) => {
                    if r.compute_hash() == r.hash {
                        findings.push(Finding::Altered {
                            resource: head.resource.clone(),
                            seq: head.seq,
                        });
                    }
                }
                None => {
                    let found = chain.and_then(|c| c.iter().map(|r| r.seq).max());
                    if found.is_none_or(|f| f < head.seq) {
                        let e = truncated.entry(head.resource.clone()).or_insert((0, found));
                        e.0 = e.0.max(head.seq);
                    }
                }
            }
        }
    }
    for (resource, (anchored_seq, found_seq)) in truncated {
        findings.push(Finding::Truncated {
            resource,
            anchored_seq,
            found_seq,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit_record::{Outcome, UnreadableRecord};
    use crate::domain::model::Kind;
    use chrono::TimeZone;

    fn entry(id: &str) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::ApiKeys,
                account: "123456789012".into(),
                region: "us-east-1".into(),
                id: id.into(),
            },
            action: "rotate".into(),
            phase: Phase::Intent,
            outcome: None,
            reason: "max-age-exceeded".into(),
            detail: String::new(),
            before: Some("old".into()),
            after: None,
            dry_run: false,
            policy_time: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        }
    }

    fn chain(id: &str, n: usize) -> Vec<AuditRecord> {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let mut out: Vec<AuditRecord> = Vec::new();
        for _ in 0..n {
            let r = AuditRecord::seal(&entry(id), out.last(), "run", "actor", t);
            out.push(r);
        }
        out
    }

    fn ok(records: Vec<AuditRecord>) -> Vec<StoredRecord> {
        records.into_iter().map(Ok).collect()
    }

    #[test]
    fn intact_chains_verify() {
        let mut all = chain("a", 3);
        all.extend(chain("b", 2));
        let report = verify(ok(all));
        assert!(report.ok(), "{:?}", report.findings);
        assert_eq!((report.chains, report.records), (2, 5));
    }

    #[test]
    fn altered_record_is_named() {
        let mut c = chain("a", 3);
        c[1].outcome = Some(Outcome::Succeeded);
        let report = verify(ok(c));
        assert_eq!(
            report.findings,
            vec![Finding::Altered {
                resource: "api-keys#123456789012#us-east-1#a".into(),
                seq: 2
            }]
        );
    }

    #[test]
    fn removed_record_is_reported_as_missing() {
        let mut c = chain("a", 4);
        c.remove(1);
        let report = verify(ok(c));
        assert_eq!(
            report.findings,
            vec![Finding::Missing {
                resource: "api-keys#123456789012#us-east-1#a".into(),
                from_seq: 2,
                to_seq: 2
            }]
        );
    }

    #[test]
    fn rehashed_forgery_breaks_the_next_link() {
        let mut c = chain("a", 3);
        c[1].detail = "forged".into();
        c[1].hash = c[1].compute_hash();
        let report = verify(ok(c));
        assert_eq!(
            report.findings,
            vec![Finding::BrokenLink {
                resource: "api-keys#123456789012#us-east-1#a".into(),
                seq: 3
            }]
        );
    }

    #[test]
    fn swapped_records_are_detected() {
        let mut c = chain("a", 3);
        let (s1, s2) = (c[1].seq, c[2].seq);
        c[1].seq = s2;
        c[2].seq = s1;
        let report = verify(ok(c));
        assert!(!report.ok());
        assert!(
            report
                .findings
                .iter()
                .any(|f| matches!(f, Finding::Altered { .. }))
        );
    }

    #[test]
    fn unreadable_items_are_findings() {
        let report = verify(vec![Err(UnreadableRecord {
            resource: "x".into(),
            seq: Some(1),
            message: "missing attribute hash".into(),
        })]);
        assert_eq!(report.findings.len(), 1);
        assert!(
            report.findings[0]
                .to_string()
                .contains("missing attribute hash")
        );
    }

    mod tampering {
        //! Property: whatever is altered, removed (before the last record), inserted or
        //! reordered in the stored chains, `verify` reports it; untouched chains verify.

        use super::*;
        use proptest::prelude::*;

        fn chains(lens: &[usize]) -> Vec<AuditRecord> {
            let at = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
            let mut out = Vec::new();
            for (c, len) in lens.iter().enumerate() {
                let mut last: Option<AuditRecord> = None;
                for i in 0..*len {
                    let mut e = entry(&format!("key{c}"));
                    e.detail = format!("step {i}");
                    let r = AuditRecord::seal(&e, last.as_ref(), "run-1", "tester", at);
                    out.push(r.clone());
                    last = Some(r);
                }
            }
            out
        }

        fn stored(records: Vec<AuditRecord>) -> Vec<StoredRecord> {
            records.into_iter().map(Ok).collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::with_cases(256) })]

            #[test]
            fn untouched_chains_verify(lens in prop::collection::vec(1usize..8, 1..4)) {
                prop_assert!(verify(stored(chains(&lens))).ok());
            }

            #[test]
            fn any_tampering_is_detected(
                lens in prop::collection::vec(2usize..8, 1..4),
                op in 0u8..6,
                pick in any::<prop::sample::Index>(),
                text in "[a-z]{1,8}",
            ) {
                let mut records = chains(&lens);
                // A record that is not the last of its chain (each chain has 2 or more).
                let candidates: Vec<usize> = (0..records.len())
                    .filter(|&i| records.get(i + 1).is_some_and(|n| n.resource == records[i].resource))
                    .collect();
                let i = candidates[pick.index(candidates.len())];
                match op {
                    // Altered in place.
                    0 => records[i].detail.push_str(&text),
                    // Altered and re-hashed: the next record's link breaks.
                    1 => {
                        records[i].detail.push_str(&text);
                        records[i].hash = records[i].compute_hash();
                    }
                    // Removed.
                    2 => { records.remove(i); }
                    // Reordered: two neighbours swap their sequence numbers.
                    3 => {
                        let seq = records[i].seq;
                        records[i].seq = records[i + 1].seq;
                        records[i + 1].seq = seq;
                    }
                    // Inserted after the last record, reusing its sequence number.
                    5 => {
                        let last = records
                            .iter()
                            .rposition(|r| r.resource == records[i].resource)
                            .unwrap_or(i);
                        let mut forged = records[last].clone();
                        forged.detail.push_str(&text);
                        forged.hash = forged.compute_hash();
                        records.push(forged);
                    }
                    // Inserted: a well-formed record reusing a sequence number.
                    _ => {
                        let mut forged = records[i].clone();
                        forged.detail.push_str(&text);
                        forged.hash = forged.compute_hash();
                        records.push(forged);
                    }
                }
                let report = verify(stored(records));
                prop_assert!(!report.ok(), "op {} on record {} went unnoticed", op, i);
            }
        }
    }

    /// A run that appended 3 records to "a" and 2 to "b", then anchored.
    async fn anchored_run() -> crate::steps::memory::MemAudit {
        let store = crate::steps::memory::MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "actor");
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        for id in ["a", "a", "a", "b", "b"] {
            log.append(&entry(id), t).await.unwrap();
        }
        assert_eq!(log.anchor(t).await.unwrap(), 1);
        store
    }

    fn stored(store: &crate::steps::memory::MemAudit) -> Vec<AuditRecord> {
        store.records.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn an_anchored_run_verifies_and_its_anchor_lists_each_chain_head() {
        let store = anchored_run().await;
        let all = stored(&store);
        assert_eq!(all.len(), 6);
        let anchor = all.last().unwrap();
        assert_eq!(
            anchor.resource,
            "api-keys#123456789012#global#keyrotor:anchor"
        );
        let heads: Vec<Anchored> = serde_json::from_str(&anchor.detail).unwrap();
        let seqs: Vec<(String, u64)> = heads.iter().map(|h| (h.resource.clone(), h.seq)).collect();
        assert_eq!(
            seqs,
            [
                ("api-keys#123456789012#us-east-1#a".to_owned(), 3),
                ("api-keys#123456789012#us-east-1#b".to_owned(), 2)
            ]
        );
        let report = verify(ok(all));
        assert!(report.ok(), "{:?}", report.findings);
    }

    #[tokio::test]
    async fn a_removed_chain_tail_is_detected_through_the_anchor() {
        let store = anchored_run().await;
        let mut all = stored(&store);
        all.retain(|r| !(r.resource_id == "a" && r.seq == 3));
        let report = verify(ok(all));
        assert_eq!(
            report.findings,
            vec![Finding::Truncated {
                resource: "api-keys#123456789012#us-east-1#a".into(),
                anchored_seq: 3,
                found_seq: Some(2),
            }]
        );
        assert!(
            report.findings[0]
                .to_string()
                .contains("removed from its end")
        );
    }

    #[tokio::test]
    async fn a_removed_whole_chain_is_detected_through_the_anchor() {
        let store = anchored_run().await;
        let mut all = stored(&store);
        all.retain(|r| r.resource_id != "b");
        let report = verify(ok(all));
        assert_eq!(
            report.findings,
            vec![Finding::Truncated {
                resource: "api-keys#123456789012#us-east-1#b".into(),
                anchored_seq: 2,
                found_seq: None,
            }]
        );
    }

    #[tokio::test]
    async fn a_run_that_appended_nothing_writes_no_anchor() {
        let store = crate::steps::memory::MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "actor");
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        assert_eq!(log.anchor(t).await.unwrap(), 0);
        assert!(stored(&store).is_empty());
    }

    #[tokio::test]
    async fn concurrent_appends_of_one_run_are_all_anchored() {
        let store = crate::steps::memory::MemAudit::default();
        let log = AuditLog::new(&store, "run-1", "actor");
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let ids: Vec<String> = (0..8).map(|n| format!("k{n}")).collect();
        let entries: Vec<Entry> = ids.iter().map(|id| entry(id)).collect();
        futures::future::try_join_all(entries.iter().map(|e| log.append(e, t)))
            .await
            .unwrap();
        log.anchor(t).await.unwrap();
        let anchor = stored(&store).last().cloned().unwrap();
        let heads: Vec<Anchored> = serde_json::from_str(&anchor.detail).unwrap();
        assert_eq!(heads.len(), 8);
    }
}
