//! The audit record and its hash: what keyrotor writes down about every action and every
//! decision not to act. Pure data; the audit layer (`keyrotor::audit`) appends, reads and
//! verifies chains of these records through the `AuditStore` port.
//!
//! A record's hash is SHA-256 over its canonical form: a JSON object of every field except
//! `hash`, keys in lexicographic order, no whitespace, absent optional fields left out. The
//! canonical form includes `prev_hash` and `seq`, so changing, removing or reordering a record
//! breaks its chain. Records hold identifiers and reasons, never secret values.
//!
//! For these records (ASCII keys, strings, booleans and integers below 2^53) that form is
//! exactly RFC 8785, the JSON Canonicalization Scheme, so an auditor can re-hash a chain with
//! any JCS implementation: a property test checks it against an independent one. It is
//! written here rather than taken from a JCS crate because it is a dozen lines over
//! serde_json and pinned byte for byte by a test; were it ever to change, records would need
//! a form version so that existing chains still verify.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Kind;

/// `prev_hash` of the first record of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a record sits in the life of a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Written before a mutation; if it cannot be written, the mutation does not happen.
    Intent,
    /// Written after a mutation, with its outcome.
    Outcome,
    /// A decision with no mutation: a planned action or a decision not to act.
    Decision,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Intent => "intent",
            Phase::Outcome => "outcome",
            Phase::Decision => "decision",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
    Skipped,
    Blocked,
    Planned,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::Blocked => "blocked",
            Outcome::Planned => "planned",
        }
    }
}

/// The resource a chain belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    pub kind: Kind,
    pub account: String,
    pub region: String,
    pub id: String,
}

impl ResourceRef {
    /// The partition key: `kind#account#region#id`.
    pub fn key(&self) -> String {
        format!("{}#{}#{}#{}", self.kind, self.account, self.region, self.id)
    }
}

/// What a caller asks to record; the log adds sequence, time and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub resource: ResourceRef,
    pub action: String,
    pub phase: Phase,
    pub outcome: Option<Outcome>,
    pub reason: String,
    pub detail: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub dry_run: bool,
    /// The policy time (`now` of the run, possibly `KEYROTOR_NOW`).
    pub policy_time: DateTime<Utc>,
}

/// One stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Partition key, see [`ResourceRef::key`].
    pub resource: String,
    /// Sort key: 1, 2, 3 ... per resource.
    pub seq: u64,
    pub kind: Kind,
    pub account: String,
    pub region: String,
    pub resource_id: String,
    pub run_id: String,
    /// Execution ARN or the CLI caller's ARN.
    pub actor: String,
    pub action: String,
    pub phase: Phase,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome: Option<Outcome>,
    pub reason: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub after: Option<String>,
    pub dry_run: bool,
    /// Wall-clock time of writing (RFC 3339, UTC, microseconds).
    pub recorded_at: String,
    /// The run's policy time (RFC 3339).
    pub policy_time: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Formats a time the one way records store it.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AuditRecord {
    /// Canonical bytes hashed into `hash`.
    pub fn canonical(&self) -> Vec<u8> {
        let map = match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(map)) => map,
            // A struct of strings, numbers and bools always serialises to an object.
            _ => unreachable!("an audit record serialises to a JSON object"),
        };
        // Sorted explicitly: serde_json's own map order depends on a cargo feature
        // (`preserve_order`) that any dependency may switch on, and the hash must not.
        let sorted: std::collections::BTreeMap<String, serde_json::Value> =
            map.into_iter().filter(|(k, _)| k != "hash").collect();
        serde_json::to_vec(&sorted).unwrap_or_default()
    }

    /// SHA-256 (hex) of the canonical form.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical()))
    }

    /// Builds the record that follows `prev` (or starts a chain) and seals it with its hash.
    pub fn seal(
        entry: &Entry,
        prev: Option<&AuditRecord>,
        run_id: &str,
        actor: &str,
        recorded_at: DateTime<Utc>,
    ) -> AuditRecord {
        let mut record = AuditRecord {
            resource: entry.resource.key(),
            seq: prev.map_or(1, |p| p.seq + 1),
            kind: entry.resource.kind,
            account: entry.resource.account.clone(),
            region: entry.resource.region.clone(),
            resource_id: entry.resource.id.clone(),
            run_id: run_id.to_owned(),
            actor: actor.to_owned(),
            action: entry.action.clone(),
            phase: entry.phase,
            outcome: entry.outcome,
            reason: entry.reason.clone(),
            detail: entry.detail.clone(),
            before: entry.before.clone(),
            after: entry.after.clone(),
            dry_run: entry.dry_run,
            recorded_at: format_time(recorded_at),
            policy_time: format_time(entry.policy_time),
            prev_hash: prev.map_or_else(|| GENESIS.to_owned(), |p| p.hash.clone()),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }
}

/// A stored item that could not be decoded into a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRecord {
    pub resource: String,
    pub seq: Option<u64>,
    pub message: String,
}

/// What a read of the store yields per item.
pub type StoredRecord = Result<AuditRecord, UnreadableRecord>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    pub(crate) fn entry(id: &str) -> Entry {
        Entry {
            resource: ResourceRef {
                kind: Kind::IamKeys,
                account: "123456789012".into(),
                region: "global".into(),
                id: id.into(),
            },
            action: "warn".into(),
            phase: Phase::Decision,
            outcome: Some(Outcome::Planned),
            reason: "unused".into(),
            detail: "d".into(),
            before: None,
            after: None,
            dry_run: true,
            policy_time: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn first_record_starts_a_chain_and_next_links_to_it() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
        let a = AuditRecord::seal(&entry("AKIAAAAAAAAAAAAAAAAA"), None, "run-1", "arn:me", t);
        assert_eq!((a.seq, a.prev_hash.as_str()), (1, GENESIS));
        assert_eq!(a.hash, a.compute_hash());
        let b = AuditRecord::seal(
            &entry("AKIAAAAAAAAAAAAAAAAA"),
            Some(&a),
            "run-1",
            "arn:me",
            t,
        );
        assert_eq!((b.seq, b.prev_hash.as_str()), (2, a.hash.as_str()));
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn canonical_form_is_sorted_and_excludes_hash() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
        let a = AuditRecord::seal(&entry("AKIAAAAAAAAAAAAAAAAA"), None, "run-1", "arn:me", t);
        let text = String::from_utf8(a.canonical()).unwrap();
        assert!(text.starts_with("{\"account\":"), "{text}");
        assert!(!text.contains("\"hash\":"), "{text}");
        assert!(text.contains("\"prev_hash\":"), "{text}");
    }

    #[test]
    fn canonical_form_is_pinned() {
        // The exact bytes hashed: any change here breaks every stored chain.
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
        let a = AuditRecord::seal(&entry("AKIAAAAAAAAAAAAAAAAA"), None, "run-1", "arn:me", t);
        let expected = concat!(
            r#"{"account":"123456789012","action":"warn","actor":"arn:me","detail":"d","dry_run":true,"#,
            r#""kind":"iam-keys","outcome":"planned","phase":"decision","policy_time":"2026-11-25T00:00:00.000000Z","#,
            r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""reason":"unused","recorded_at":"2026-11-25T01:00:00.000000Z","region":"global","#,
            r#""resource":"iam-keys#123456789012#global#AKIAAAAAAAAAAAAAAAAA","#,
            r#""resource_id":"AKIAAAAAAAAAAAAAAAAA","run_id":"run-1","seq":1}"#
        );
        assert_eq!(String::from_utf8(a.canonical()).unwrap(), expected);
        assert_eq!(a.hash, hex::encode(Sha256::digest(expected.as_bytes())));
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
        let a = AuditRecord::seal(&entry("AKIAAAAAAAAAAAAAAAAA"), None, "run-1", "arn:me", t);
        let mut b = a.clone();
        b.reason = "never-used".into();
        assert_ne!(a.compute_hash(), b.compute_hash());
        let mut c = a.clone();
        c.seq = 2;
        assert_ne!(a.compute_hash(), c.compute_hash());
    }

    proptest::proptest! {
        /// The canonical form is RFC 8785 (JCS) for every record keyrotor writes: an
        /// auditor can re-hash a chain with any JCS implementation. Checked against an
        /// independent one over arbitrary text (control characters, quotes, backslashes,
        /// non-ASCII, line and paragraph separators) in every free-text field, and any
        /// sequence number a chain can reach (JCS numbers are exact up to 2^53).
        #[test]
        fn canonical_form_is_rfc_8785(
            id in "\\PC{0,12}[\\x00-\\x1f\"\\\\\\u{7f}\\u{2028}\\u{2029}\\u{1F600}]{0,4}",
            detail in "\\PC{0,24}[\\x00-\\x1f\"\\\\]{0,4}\\PC{0,8}",
            reason in "\\PC{0,16}",
            after in proptest::option::of("\\PC{0,8}"),
            seq in 1u64..(1u64 << 53),
        ) {
            let t = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
            let mut e = entry(&id);
            e.detail = detail;
            e.reason = reason;
            e.after = after;
            let mut record = AuditRecord::seal(&e, None, "run-1", "arn:me", t);
            record.seq = seq;
            let mut value = serde_json::to_value(&record).unwrap();
            value.as_object_mut().unwrap().remove("hash");
            let jcs = serde_json_canonicalizer::to_vec(&value).unwrap();
            proptest::prop_assert_eq!(
                String::from_utf8(record.canonical()).unwrap(),
                String::from_utf8(jcs).unwrap()
            );
        }
    }
}
