//! The IAM keys' lifecycle records in the state table (partition `iam-key#<account>`, one
//! item per key id), typed: step code reads and writes [`KeyRecord`]s, never attribute maps.
//!
//! Every write is a compare-and-set on the version the writer read (safety invariant 5):
//! two runs that both read a key at version 3 cannot both move it; the loser is told so
//! and writes nothing. The encoding itself is the domain's ([`KeyRecord::attrs`],
//! [`KeyRecord::from_item`]).

use crate::domain::lifecycle::KeyRecord;
use crate::domain::model::AccountId;
use crate::ports::{PortResult, StateStore};
use crate::steps::StepError;

/// The lifecycle records of one account's IAM access keys.
pub(crate) struct KeyRecordStore<'a> {
    state: &'a dyn StateStore,
    partition: String,
}

impl<'a> KeyRecordStore<'a> {
    pub(crate) fn new(state: &'a dyn StateStore, account: &AccountId) -> KeyRecordStore<'a> {
        KeyRecordStore {
            state,
            partition: KeyRecord::partition(account.as_str()),
        }
    }

    /// Every record of the account. An item that cannot be decoded stops the caller:
    /// acting without it could repeat or skip a step.
    pub(crate) async fn list(&self) -> Result<Vec<KeyRecord>, StepError> {
        crate::steps::read_records(
            self.state,
            &self.partition,
            KeyRecord::from_item,
            "fix the item or delete it (keyrotor then treats the key as active)",
        )
        .await
    }

    /// Writes `next` over the record at version `expected` (0: there is none yet) and
    /// returns it as stored, with its new version. `Ok(None)`: another run changed the
    /// record first, and nothing was written.
    pub(crate) async fn replace(
        &self,
        expected: u64,
        next: KeyRecord,
    ) -> PortResult<Option<KeyRecord>> {
        let written = self
            .state
            .put_versioned(&self.partition, next.key.as_str(), expected, &next.attrs())
            .await?;
        Ok(written.then(|| KeyRecord {
            version: expected + 1,
            ..next
        }))
    }
}
