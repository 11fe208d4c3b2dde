//! The typed rotation records: a rotation starts once per key, moves on only from the
//! version it read, and an unreadable item is reported by name, never taken for none.

use std::collections::BTreeMap;

use crate::domain::api_rotation::{Rotation, RotationStep, Trigger};
use crate::domain::model::AccountId;
use crate::ports::{SecretValue, StateStore};
use crate::steps::api_keys::store::RotationStore;
use crate::steps::memory::MemState;

use super::fake::{OLD, t};

fn rotation(token: &str) -> Rotation {
    Rotation::start(
        OLD,
        "orders-client",
        "orders/api-key",
        &["plan-a".to_owned()],
        token.to_owned(),
        Trigger::Age,
        t(100),
    )
}

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

#[tokio::test]
async fn a_rotation_starts_once_and_moves_on_only_from_the_version_read() {
    let state = MemState::default();
    let store = RotationStore::new(&state, &account(), "us-east-1");
    let first = store
        .start(rotation("aaaaaaaa1111"), None)
        .await
        .unwrap()
        .expect("no record yet");
    assert_eq!(first.version, 1);
    // A second start of the same key (another run) finds the item there.
    assert_eq!(
        store.start(rotation("bbbbbbbb2222"), None).await.unwrap(),
        None
    );
    let next = first.advanced(RotationStep::CreateReplacement, t(100));
    let moved = store.advance(&first, next.clone()).await.unwrap().unwrap();
    assert_eq!(moved.version, 2);
    // The same step from the stale version (a run that read version 1) is refused.
    assert_eq!(store.advance(&first, next).await.unwrap(), None);
    let (found, unreadable) = store.load().await.unwrap();
    assert_eq!(found, vec![moved.clone()]);
    assert!(unreadable.is_empty());
    assert_eq!(store.find(OLD).await.unwrap(), Some(Ok(moved)));
    assert_eq!(store.find("other").await.unwrap(), None);
}

#[tokio::test]
async fn an_unreadable_item_is_named_not_skipped_silently() {
    let state = MemState::default();
    let store = RotationStore::new(&state, &account(), "us-east-1");
    state
        .put_versioned(
            store.partition(),
            OLD,
            0,
            &BTreeMap::from([("stage".to_owned(), "nonsense".to_owned())]),
        )
        .await
        .unwrap();
    let (found, unreadable) = store.load().await.unwrap();
    assert!(found.is_empty());
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].key, OLD);
    assert!(matches!(store.find(OLD).await.unwrap(), Some(Err(_))));
}

#[tokio::test]
async fn only_a_noted_value_counts_as_keyrotors_replacement() {
    let state = MemState::default();
    let store = RotationStore::new(&state, &account(), "us-east-1");
    let mine = SecretValue::new("chosen-by-keyrotor".to_owned());
    let theirs = SecretValue::new("chosen-by-someone-else".to_owned());
    store
        .note_replacement_value(OLD, "aaaaaaaa1111", &mine)
        .await
        .unwrap();
    assert!(
        store
            .replacement_value_noted(OLD, "aaaaaaaa1111", &mine)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replacement_value_noted(OLD, "aaaaaaaa1111", &theirs)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replacement_value_noted(OLD, "bbbbbbbb2222", &mine)
            .await
            .unwrap()
    );
}
