//! The in-memory state store the step tests use (`keyrotor::steps::memory::MemState`, built
//! with the `test-support` feature) must keep the promises the DynamoDB store keeps: a step
//! test that passes over the fake would otherwise prove nothing. One script of versioned
//! writes, rank advances and leases runs against both; every answer must be the same.

mod support;

use std::collections::BTreeMap;

use chrono::Duration;
use keyrotor::aws::dynamodb::{DynamoStateStore, DynamoTables};
use keyrotor::ports::{StateStore, TableAdmin};
use keyrotor::steps::memory::MemState;
use support::{Timeline, World};

const TIME: Timeline = Timeline::starting(2026, 1, 1);

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs the script against `store`; returns every answer, in order, as text.
async fn script(store: &dyn StateStore) -> Vec<String> {
    let pk = "iam-key#123456789012";
    let mut seen = Vec::new();
    // Versioned writes: the first needs the item absent, each next one the version read.
    for (expected, x) in [(0, "1"), (0, "2"), (1, "3"), (1, "4")] {
        let put = store
            .put_versioned(pk, "a", expected, &attrs(&[("x", x)]))
            .await;
        seen.push(format!("put_versioned(a, {expected}, x={x}) = {put:?}"));
    }
    seen.push(format!("get(a) = {:?}", store.get(pk, "a").await));
    // Rank advances: only forward.
    for (rank, y) in [(5, "1"), (3, "2"), (5, "3"), (7, "4")] {
        let advanced = store.advance(pk, "b", rank, &attrs(&[("y", y)])).await;
        seen.push(format!("advance(b, {rank}, y={y}) = {advanced:?}"));
    }
    seen.push(format!("get(b) = {:?}", store.get(pk, "b").await));
    seen.push(format!(
        "get(missing) = {:?}",
        store.get(pk, "missing").await
    ));
    // Leases: held until expiry, taken over after it, given back only by the holder.
    let ttl = Duration::minutes(10);
    let at = |minutes: i64| TIME.t0() + Duration::minutes(minutes);
    for (holder, minute) in [("run-1", 0), ("run-2", 1), ("run-1", 2), ("run-2", 11)] {
        let lease = store
            .acquire_lease("lease-a", holder, at(minute), ttl)
            .await;
        seen.push(format!("acquire({holder}, +{minute}m) = {lease:?}"));
    }
    let released = store.release_lease("lease-a", "run-1").await;
    seen.push(format!("release(run-1, not the holder) = {released:?}"));
    let lease = store.acquire_lease("lease-a", "run-3", at(12), ttl).await;
    seen.push(format!("acquire(run-3, +12m) = {lease:?}"));
    let released = store.release_lease("lease-a", "run-2").await;
    seen.push(format!("release(run-2) = {released:?}"));
    let lease = store.acquire_lease("lease-a", "run-3", at(13), ttl).await;
    seen.push(format!("acquire(run-3, +13m) = {lease:?}"));
    seen
}

#[tokio::test]
async fn the_in_memory_state_store_answers_as_dynamodb_does() {
    // GIVEN the DynamoDB state store over the emulator, and the fake
    let world = World::new();
    let client = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    DynamoTables::new(client.clone())
        .ensure_state_table("keyrotor-state")
        .await
        .unwrap();
    let real = DynamoStateStore::new(client, "keyrotor-state");
    let fake = MemState::default();

    // WHEN the same script runs against both
    let from_dynamodb = script(&real).await;
    let from_fake = script(&fake).await;

    // THEN every answer is the same, and the script did exercise the conditions (a fresh
    // write succeeds, a stale one is refused)
    assert_eq!(from_fake, from_dynamodb);
    assert!(from_dynamodb[0].ends_with("Ok(true)"), "{from_dynamodb:#?}");
    assert!(
        from_dynamodb[1].ends_with("Ok(false)"),
        "{from_dynamodb:#?}"
    );
    assert!(
        from_dynamodb.iter().any(|a| a.contains("Err(LeaseHolder")),
        "{from_dynamodb:#?}"
    );
}
