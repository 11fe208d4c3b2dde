//! The audit verifier: walks every chain (and every anchor) in what the store returned and
//! names each gap, alteration, broken link or truncation. Pure: no store, no clock.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{ANCHOR_ID, Anchored};
use crate::domain::audit_record::{AuditRecord, GENESIS, StoredRecord};

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
