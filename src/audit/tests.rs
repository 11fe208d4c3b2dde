//! Unit tests of the audit writer (chains, anchors, races) and verifier.

use super::*;
use crate::domain::audit_record::{Outcome, StoredRecord, UnreadableRecord};
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
