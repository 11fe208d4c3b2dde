//! Which ladder step of a certificate was notified, in the state table (partition
//! `cert#<arn>`, one item per NotAfter), typed: the sweep reads and writes
//! [`LadderStep`]s, never attribute maps.
//!
//! A write only moves up the ladder (the item's rank is the step's urgency), so two runs
//! that both send the same step leave one record, and a slow run never moves a certificate
//! back to an earlier step (safety invariant 5: no duplicate effects on the next run).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::cert::LadderStep;
use crate::ports::{PortResult, StateStore};

/// State-table key of the notifications for one certificate and NotAfter: a renewed
/// certificate (new NotAfter) starts its ladder over.
pub fn state_key(arn: &str, not_after: DateTime<Utc>) -> (String, String) {
    (
        format!("cert#{arn}"),
        format!("notified#{}", not_after.to_rfc3339()),
    )
}

/// The notification of one ladder step, as recorded.
pub(crate) struct LadderRecord {
    pub(crate) step: LadderStep,
    pub(crate) notified_at: DateTime<Utc>,
    /// The run that sent it.
    pub(crate) run_id: String,
}

impl LadderRecord {
    fn attrs(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("step".to_owned(), self.step.label()),
            ("notified_at".to_owned(), self.notified_at.to_rfc3339()),
            ("run_id".to_owned(), self.run_id.clone()),
        ])
    }
}

/// The notified ladder steps of certificates.
pub(crate) struct LadderStore<'a> {
    state: &'a dyn StateStore,
}

impl<'a> LadderStore<'a> {
    pub(crate) fn new(state: &'a dyn StateStore) -> LadderStore<'a> {
        LadderStore { state }
    }

    /// The last step notified for the certificate with this NotAfter. An item whose step
    /// cannot be read counts as none: the worst that follows is one more notification.
    pub(crate) async fn last_step(
        &self,
        arn: &str,
        not_after: DateTime<Utc>,
    ) -> PortResult<Option<LadderStep>> {
        let (pk, sk) = state_key(arn, not_after);
        Ok(self
            .state
            .get(&pk, &sk)
            .await?
            .and_then(|attrs| attrs.get("step").and_then(|s| LadderStep::parse(s))))
    }

    /// Records `notified`, unless a step at least as urgent is recorded already.
    /// `Ok(false)`: another run got there first (its record stays).
    pub(crate) async fn advance(
        &self,
        arn: &str,
        not_after: DateTime<Utc>,
        notified: &LadderRecord,
    ) -> PortResult<bool> {
        let (pk, sk) = state_key(arn, not_after);
        self.state
            .advance(
                &pk,
                &sk,
                u64::from(notified.step.urgency()),
                &notified.attrs(),
            )
            .await
    }
}
