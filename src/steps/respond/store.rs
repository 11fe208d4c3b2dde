//! The responses keyrotor made, in the state table (partition `respond#<account>`, one item
//! per access key id), typed: what makes a response idempotent. The same event delivered
//! twice, or the CLI run after the event, finds the record and changes nothing more.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::model::{AccessKeyId, AccountId};
use crate::ports::{PortError, PortResult, StateStore};

/// At most this many event ids are remembered per key (the newest).
const EVENTS_KEPT: usize = 20;

/// keyrotor's record of its response to one leaked key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseRecord {
    pub key: AccessKeyId,
    pub user: String,
    /// The events answered, newest last (Health event ARN, GuardDuty finding id, `cli`).
    pub events: Vec<String>,
    pub run_id: String,
    pub contained_at: DateTime<Utc>,
    /// The secret whose replacement was published, and the replacement key.
    pub replacement: Option<(String, String)>,
    /// The cut-off of the session revocation, once one went through: a retry revokes with
    /// the same time, so sessions the replacement's clients got since are not denied.
    pub revoked_before: Option<DateTime<Utc>>,
    /// Every step of the last response went through; `false`: a step failed (a
    /// replacement, a revocation) and the next event or command redoes what is left.
    pub complete: bool,
    /// The item version, for compare-and-set writes (0: none yet).
    pub version: u64,
}

impl ResponseRecord {
    fn attrs(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::from([
            ("user".to_owned(), self.user.clone()),
            ("events".to_owned(), self.events.join("\n")),
            ("run_id".to_owned(), self.run_id.clone()),
            ("contained_at".to_owned(), self.contained_at.to_rfc3339()),
            ("complete".to_owned(), self.complete.to_string()),
        ]);
        if let Some(t) = self.revoked_before {
            a.insert("revoked_before".into(), t.to_rfc3339());
        }
        if let Some((secret, key)) = &self.replacement {
            a.insert("replacement_secret".into(), secret.clone());
            a.insert("replacement_key".into(), key.clone());
        }
        a
    }

    fn decode(
        sk: &str,
        version: u64,
        a: &BTreeMap<String, String>,
    ) -> Result<ResponseRecord, String> {
        let key = AccessKeyId::parse(sk).map_err(|e| e.to_string())?;
        let field = |name: &str| {
            a.get(name)
                .cloned()
                .ok_or_else(|| format!("response record {sk} lacks {name}"))
        };
        let contained_at = DateTime::parse_from_rfc3339(&field("contained_at")?)
            .map_err(|e| format!("response record {sk}: contained_at: {e}"))?
            .with_timezone(&Utc);
        let replacement = match (a.get("replacement_secret"), a.get("replacement_key")) {
            (Some(s), Some(k)) => Some((s.clone(), k.clone())),
            _ => None,
        };
        Ok(ResponseRecord {
            key,
            user: field("user")?,
            events: field("events")?
                .split('\n')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            run_id: field("run_id")?,
            contained_at,
            replacement,
            complete: a.get("complete").is_none_or(|v| v == "true"),
            revoked_before: match a.get("revoked_before") {
                Some(t) => Some(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|e| format!("response record {sk}: revoked_before: {e}"))?
                        .with_timezone(&Utc),
                ),
                None => None,
            },
            version,
        })
    }

    /// Whether `event` was already answered.
    pub(crate) fn answered(&self, event: &str) -> bool {
        self.events.iter().any(|e| e == event)
    }

    /// This record, also answering `event` (the oldest ids are dropped past a bound).
    pub(crate) fn with_event(mut self, event: &str) -> ResponseRecord {
        if !self.answered(event) {
            self.events.push(event.to_owned());
        }
        let extra = self.events.len().saturating_sub(EVENTS_KEPT);
        self.events.drain(..extra);
        self
    }
}

/// The response records of one account.
pub(crate) struct ResponseStore<'a> {
    state: &'a dyn StateStore,
    partition: String,
}

impl<'a> ResponseStore<'a> {
    pub(crate) fn new(state: &'a dyn StateStore, account: &AccountId) -> ResponseStore<'a> {
        ResponseStore {
            state,
            partition: format!("respond#{}", account.as_str()),
        }
    }

    /// The record of `key`, if keyrotor responded to it before. An item that cannot be
    /// decoded is an error: answering again without it could repeat the response.
    pub(crate) async fn get(&self, key: &AccessKeyId) -> PortResult<Option<ResponseRecord>> {
        let items = self.state.list(&self.partition).await?;
        items
            .iter()
            .find(|i| i.sk == key.as_str())
            .map(|i| {
                ResponseRecord::decode(&i.sk, i.version, &i.attrs).map_err(|e| {
                    PortError::InvalidResponse {
                        operation: "state table".into(),
                        message: format!(
                            "{e}; fix the item {} / {} or delete it",
                            self.partition, i.sk
                        ),
                    }
                })
            })
            .transpose()
    }

    /// Writes `next` over the record at its version; `Ok(false)`: another run wrote first.
    pub(crate) async fn put(&self, next: &ResponseRecord) -> PortResult<bool> {
        self.state
            .put_versioned(
                &self.partition,
                next.key.as_str(),
                next.version,
                &next.attrs(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_remembers_a_bounded_number_of_events() {
        let mut r = ResponseRecord {
            key: AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap(),
            user: "ci".into(),
            events: vec![],
            run_id: "run-1".into(),
            contained_at: DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            replacement: Some(("arn:secret".into(), "AKIANEWKEY0000000000".into())),
            complete: false,
            revoked_before: Some(
                DateTime::parse_from_rfc3339("2026-12-04T10:00:05Z")
                    .unwrap()
                    .with_timezone(&Utc),
            ),
            version: 0,
        };
        for i in 0..30 {
            r = r.with_event(&format!("event-{i}"));
        }
        r = r.with_event("event-29");
        assert_eq!(r.events.len(), EVENTS_KEPT);
        assert!(r.answered("event-29") && r.answered("event-10"));
        assert!(!r.answered("event-9"));
        let back = ResponseRecord::decode(r.key.as_str(), 3, &r.attrs()).unwrap();
        assert_eq!(back, ResponseRecord { version: 3, ..r });
        assert!(ResponseRecord::decode("AKIAIOSFODNN7EXAMPLE", 1, &BTreeMap::new()).is_err());
    }
}
