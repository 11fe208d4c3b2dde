//! The DynamoDB audit store through the real SDK and emulator: conditional appends under
//! concurrency, never overwriting, and chains that verify.

mod support;

use chrono::{TimeZone, Utc};
use keyrotor::audit::{AuditLog, verify};
use keyrotor::aws::dynamodb::{DynamoAuditStore, DynamoTables};
use keyrotor::domain::audit_record::{Entry, Outcome, Phase, ResourceRef};
use keyrotor::domain::model::Kind;
use keyrotor::ports::{AppendError, AuditStore, TableAdmin};
use support::World;

fn entry(id: &str, n: usize) -> Entry {
    Entry {
        resource: ResourceRef {
            kind: Kind::ApiKeys,
            account: "123456789012".into(),
            region: "us-east-1".into(),
            id: id.into(),
        },
        action: "rotate".into(),
        phase: Phase::Intent,
        outcome: Some(Outcome::Succeeded),
        reason: "max-age-exceeded".into(),
        detail: format!("writer {n}"),
        before: Some("old-key".into()),
        after: Some("new-key".into()),
        dry_run: false,
        policy_time: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
    }
}

async fn store(world: &World) -> DynamoAuditStore {
    let client = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    DynamoTables::new(client.clone())
        .ensure_audit_table("keyrotor-audit")
        .await
        .unwrap();
    DynamoAuditStore::new(client, "keyrotor-audit")
}

#[tokio::test]
async fn concurrent_writers_on_one_resource_each_get_a_sequence_number() {
    // GIVEN one audit table and 12 writers racing on the same resource
    let world = World::new();
    let store = store(&world).await;
    let log = AuditLog::new(&store, "run-test", "arn:aws:iam::123456789012:user/tester");

    // WHEN they all append at once
    let appends = (0..12).map(|n| {
        let log = &log;
        async move { log.append(&entry("key-1", n), Utc::now()).await }
    });
    let results = futures::future::join_all(appends).await;

    // THEN every append landed, with seq 1..=12 and an intact chain
    let mut seqs: Vec<u64> = results.into_iter().map(|r| r.unwrap().seq).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=12).collect::<Vec<_>>());
    let report = verify(store.all().await.unwrap());
    assert!(report.ok(), "{:?}", report.findings);
    assert_eq!(report.records, 12);
    let details: std::collections::BTreeSet<String> = store
        .all()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().detail)
        .collect();
    assert_eq!(details.len(), 12, "no writer's record was overwritten");
}

#[tokio::test]
async fn an_append_never_overwrites_an_existing_record() {
    let world = World::new();
    let store = store(&world).await;
    let log = AuditLog::new(&store, "run-test", "actor");
    let first = log.append(&entry("key-2", 0), Utc::now()).await.unwrap();

    // WHEN a stale writer tries to put the same sequence number again
    let mut forged = first.clone();
    forged.detail = "replaced".into();
    let result = store.append(&forged).await;

    // THEN it is refused and the original stays
    assert!(matches!(result, Err(AppendError::SeqTaken)), "{result:?}");
    let last = store.last(&first.resource).await.unwrap().unwrap();
    assert_eq!(last, first);
}

#[tokio::test]
async fn last_returns_the_highest_sequence_number() {
    let world = World::new();
    let store = store(&world).await;
    let log = AuditLog::new(&store, "run-test", "actor");
    for n in 0..11 {
        log.append(&entry("key-3", n), Utc::now()).await.unwrap();
    }
    // 11 sorts before 2 as text; the sort key is a number, so seq 11 is the last.
    let last = store
        .last("api-keys#123456789012#us-east-1#key-3")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(last.seq, 11);
}
