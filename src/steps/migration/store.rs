//! Migration records in the state table (partition `migration#<account>`, one item per
//! user), typed: step code reads and writes [`MigrationRecord`]s, never attribute maps.
//!
//! Every write is a compare-and-set on the version the writer read (safety invariant 5):
//! a rollback and a sweep that both read a migration cannot both move it; the loser is
//! told so and writes nothing. The encoding itself is the domain's
//! ([`MigrationRecord::attrs`], [`MigrationRecord::from_item`]).

use crate::domain::migration::MigrationRecord;
use crate::domain::model::AccountId;
use crate::ports::{PortError, PortResult, StateStore};
use crate::steps::StepError;

/// The migration records of one account.
pub(crate) struct MigrationStore<'a> {
    state: &'a dyn StateStore,
    partition: String,
}

impl<'a> MigrationStore<'a> {
    pub(crate) fn new(state: &'a dyn StateStore, account: &AccountId) -> MigrationStore<'a> {
        MigrationStore {
            state,
            partition: MigrationRecord::partition(account.as_str()),
        }
    }

    /// Every record of the account; a missing state table means none has started. An item
    /// that cannot be decoded stops the caller (acting without it could repeat or skip a
    /// step).
    pub(crate) async fn list(&self) -> Result<Vec<MigrationRecord>, StepError> {
        match crate::steps::read_records(
            self.state,
            &self.partition,
            MigrationRecord::from_item,
            "fix the item",
        )
        .await
        {
            Err(StepError::Port(PortError::NotFound { .. })) => Ok(Vec::new()),
            other => other,
        }
    }

    /// The record of `user`, if a migration of it was started.
    pub(crate) async fn get(&self, user: &str) -> Result<Option<MigrationRecord>, StepError> {
        Ok(self.list().await?.into_iter().find(|r| r.user == user))
    }

    /// Writes `next` over the record at version `expected` (0: there is none yet) and
    /// returns it as stored, with its new version. `Ok(None)`: another run changed the
    /// record first, and nothing was written.
    pub(crate) async fn replace(
        &self,
        expected: u64,
        next: MigrationRecord,
    ) -> PortResult<Option<MigrationRecord>> {
        let written = self
            .state
            .put_versioned(&self.partition, &next.user, expected, &next.attrs())
            .await?;
        Ok(written.then(|| MigrationRecord {
            version: expected + 1,
            ..next
        }))
    }
}
