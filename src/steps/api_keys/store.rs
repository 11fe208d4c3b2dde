//! The API key rotation records of one account and region, typed, over the state table.
//!
//! Every write is a compare-and-set on the item's version (safety invariant 5): a rotation
//! starts only by creating its item (or replacing a finished one), and moves on only from
//! the version it read, so two runs never both act on the same step. The record's encoding
//! is the domain's ([`Rotation::attrs`], [`Rotation::from_item`]); this module only knows
//! where the records live. The notes that prove keyrotor made a replacement live here too.

use std::collections::BTreeMap;

use crate::domain::api_rotation::Rotation;
use crate::domain::model::AccountId;
use crate::ports::{PortResult, SecretValue, StateStore};

/// The rotation records of one account and region.
pub(crate) struct RotationStore<'a> {
    state: &'a dyn StateStore,
    pk: String,
}

/// A stored item that is not a readable rotation record: its sort key (the old key's id)
/// and what is wrong with it.
pub(crate) struct Unreadable {
    pub key: String,
    pub why: String,
}

impl<'a> RotationStore<'a> {
    pub(crate) fn new(state: &'a dyn StateStore, account: &AccountId, region: &str) -> Self {
        RotationStore {
            state,
            pk: Rotation::partition(account.as_str(), region),
        }
    }

    /// The state-table partition (named in messages about its items).
    pub(crate) fn partition(&self) -> &str {
        &self.pk
    }

    /// Every record, and the items that cannot be decoded (the caller decides what an
    /// unreadable item means: the sweep reports and skips it, the hook blocks on it).
    pub(crate) async fn load(&self) -> PortResult<(Vec<Rotation>, Vec<Unreadable>)> {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        for item in self.state.list(&self.pk).await? {
            match Rotation::from_item(&item.sk, item.version, &item.attrs) {
                Ok(r) => found.push(r),
                Err(why) => unreadable.push(Unreadable { key: item.sk, why }),
            }
        }
        Ok((found, unreadable))
    }

    /// The record of API key `key`, if there is an item: `Err(why)` when it cannot be read.
    pub(crate) async fn find(&self, key: &str) -> PortResult<Option<Result<Rotation, String>>> {
        Ok(self
            .state
            .list(&self.pk)
            .await?
            .into_iter()
            .find(|i| i.sk == key)
            .map(|item| Rotation::from_item(&item.sk, item.version, &item.attrs)))
    }

    /// Writes the new `rotation`, over `finished` (a record of an earlier rotation of the
    /// same key, replaced at its version) or where no item is. `None` when another run
    /// wrote the item first; otherwise the record as stored (with its version).
    pub(crate) async fn start(
        &self,
        rotation: Rotation,
        finished: Option<&Rotation>,
    ) -> PortResult<Option<Rotation>> {
        let expected = finished.map_or(0, |r| r.version);
        self.put(rotation, expected).await
    }

    /// Replaces `from` by `next` (compare-and-set on `from`'s version). `None` when another
    /// run changed the record since `from` was read; otherwise `next` as stored.
    pub(crate) async fn advance(
        &self,
        from: &Rotation,
        next: Rotation,
    ) -> PortResult<Option<Rotation>> {
        self.put(next, from.version).await
    }

    async fn put(&self, rotation: Rotation, expected: u64) -> PortResult<Option<Rotation>> {
        let written = self
            .state
            .put_versioned(&self.pk, &rotation.old_key, expected, &rotation.attrs())
            .await?;
        Ok(written.then(|| Rotation {
            version: expected + 1,
            ..rotation
        }))
    }

    /// Notes, before CreateApiKey, a digest of the value keyrotor chose for the replacement
    /// of `old_key` in rotation `token` (never the value itself): a key whose value has no
    /// such note was not made by keyrotor.
    pub(crate) async fn note_replacement_value(
        &self,
        old_key: &str,
        token: &str,
        value: &SecretValue,
    ) -> PortResult<()> {
        self.state
            .put_versioned(
                &self.notes(),
                &note(old_key, token, value),
                0,
                &BTreeMap::new(),
            )
            .await
            .map(|_| ())
    }

    /// Whether `value` was noted for the replacement of `old_key` in rotation `token`.
    pub(crate) async fn replacement_value_noted(
        &self,
        old_key: &str,
        token: &str,
        value: &SecretValue,
    ) -> PortResult<bool> {
        Ok(self
            .state
            .get(&self.notes(), &note(old_key, token, value))
            .await?
            .is_some())
    }

    fn notes(&self) -> String {
        format!("replacement-value#{}", self.pk)
    }
}

/// The sort key of a value note: the old key, the token and the value's SHA-256.
fn note(old_key: &str, token: &str, value: &SecretValue) -> String {
    use sha2::Digest;
    format!(
        "{old_key}#{token}#{}",
        hex::encode(sha2::Sha256::digest(value.expose().as_bytes()))
    )
}
