//! `keyrotor init`, `plan --record`, `audit list` and `audit verify` against the emulator,
//! including tampering done directly in DynamoDB.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::{World, example_policy, ok, run, stdout};

const NOW: &str = "2026-11-25T00:00:00Z";
const AUDIT: &str = "keyrotor-audit";

fn record_plan(world: &World) -> Value {
    ok(&run(world.keyrotor().arg("init")));
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .arg("--config")
        .arg(example_policy())
        .args(["plan", "--record", "--output", "json"]));
    serde_json::from_str(&ok(&out)).unwrap()
}

async fn audit_items(world: &World) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    ddb.scan()
        .table_name(AUDIT)
        .send()
        .await
        .unwrap()
        .items()
        .to_vec()
}

fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// The records of the run's anchors, and the rest.
type Items = Vec<std::collections::HashMap<String, AttributeValue>>;
fn split_anchors(items: Items) -> (Items, Items) {
    items
        .into_iter()
        .partition(|i| s(i, "resource_id") == "keyrotor:anchor")
}

#[tokio::test]
async fn init_creates_both_tables_once_with_recovery_and_protection() {
    let world = World::new();
    let first = ok(&run(world.keyrotor().args(["init", "--output", "json"])));
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first[0]["status"], "created");
    assert_eq!(first[1]["status"], "created");
    let second: Value = serde_json::from_str(&ok(&run(world
        .keyrotor()
        .args(["init", "--output", "json"]))))
    .unwrap();
    assert_eq!(second[0]["status"], "exists");
    assert_eq!(second[1]["status"], "exists");

    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    for table in [AUDIT, "keyrotor-state"] {
        let d = ddb.describe_table().table_name(table).send().await.unwrap();
        let t = d.table().unwrap();
        assert_eq!(t.deletion_protection_enabled(), Some(true), "{table}");
        let backups = ddb
            .describe_continuous_backups()
            .table_name(table)
            .send()
            .await
            .unwrap();
        let pitr = backups
            .continuous_backups_description()
            .and_then(|c| c.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .map(|s| s.as_str().to_owned());
        assert_eq!(pitr.as_deref(), Some("ENABLED"), "{table}");
    }
}

#[tokio::test]
async fn plan_record_writes_one_dry_run_decision_per_action_and_skip() {
    // GIVEN a seeded world; WHEN the plan is recorded
    let world = World::new();
    world.seed_demo(NOW);
    let plan = record_plan(&world);
    let expected =
        plan["actions"].as_array().unwrap().len() + plan["skipped"].as_array().unwrap().len();

    // THEN each decision is one chained, dry-run record of the caller, in one run, and the
    // run is anchored once per kind it recorded
    let (anchors, items) = split_anchors(audit_items(&world).await);
    assert_eq!(items.len(), expected);
    let kinds: std::collections::BTreeSet<String> = items.iter().map(|i| s(i, "kind")).collect();
    assert_eq!(anchors.len(), kinds.len(), "one anchor per kind");
    let runs: std::collections::BTreeSet<String> = items.iter().map(|i| s(i, "run_id")).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    for item in &items {
        assert_eq!(item["dry_run"].as_bool().unwrap(), &true);
        assert_eq!(s(item, "phase"), "decision");
        assert!(["planned", "skipped"].contains(&s(item, "outcome").as_str()));
        assert_eq!(s(item, "policy_time"), "2026-11-25T00:00:00.000000Z");
        assert!(
            s(item, "actor").starts_with("arn:aws:"),
            "actor is the caller's ARN"
        );
        assert_eq!(s(item, "hash").len(), 64);
    }

    // AND `audit verify` passes on it
    let out = run(world.keyrotor().args(["audit", "verify"]));
    let text = ok(&out);
    let total = expected + anchors.len();
    assert!(text.contains(&format!("OK — {total} record(s)")), "{text}");
}

#[tokio::test]
async fn recording_the_plan_twice_extends_each_chain() {
    let world = World::new();
    world.seed_demo(NOW);
    let plan = record_plan(&world);
    record_plan(&world);
    let (anchors, items) = split_anchors(audit_items(&world).await);
    let per_run =
        plan["actions"].as_array().unwrap().len() + plan["skipped"].as_array().unwrap().len();
    assert_eq!(items.len(), 2 * per_run);
    assert!(items.iter().any(|i| i["seq"].as_n().unwrap() == "2"));
    let verify: Value = serde_json::from_str(&ok(&run(world
        .keyrotor()
        .args(["audit", "verify", "--output", "json"]))))
    .unwrap();
    assert_eq!(verify["findings"].as_array().unwrap().len(), 0);
    assert_eq!(
        verify["records"].as_u64().unwrap() as usize,
        2 * per_run + anchors.len()
    );
}

#[tokio::test]
async fn verify_fails_naming_the_record_after_it_is_altered_in_dynamodb() {
    // GIVEN a recorded plan
    let world = World::new();
    world.seed_demo(NOW);
    record_plan(&world);
    let items = audit_items(&world).await;
    let mut victim = items
        .iter()
        .find(|i| s(i, "outcome") == "planned")
        .unwrap()
        .clone();
    let resource = s(&victim, "resource");

    // WHEN someone rewrites its reason directly in the table
    victim.insert("reason".into(), AttributeValue::S("nothing-to-see".into()));
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    ddb.put_item()
        .table_name(AUDIT)
        .set_item(Some(victim))
        .send()
        .await
        .unwrap();

    // THEN verify exits 1 and names the resource and sequence number
    let out = run(world.keyrotor().args(["audit", "verify"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("TAMPERED"), "{text}");
    assert!(text.contains(&format!("{resource} seq 1")), "{text}");
    assert!(text.contains("altered"), "{text}");
}

#[tokio::test]
async fn verify_reports_a_removed_record() {
    // GIVEN a resource with a chain of two records
    let world = World::new();
    world.seed_demo(NOW);
    record_plan(&world);
    record_plan(&world);
    let items = audit_items(&world).await;
    let first = items
        .iter()
        .find(|i| i["seq"].as_n().unwrap() == "1")
        .unwrap();
    let resource = s(first, "resource");

    // WHEN its first record is deleted
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    ddb.delete_item()
        .table_name(AUDIT)
        .key("resource", AttributeValue::S(resource.clone()))
        .key("seq", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();

    // THEN verify reports it missing
    let out = run(world
        .keyrotor()
        .args(["audit", "verify", "--output", "json"]));
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["problem"] == "missing"
            && f["resource"] == resource.as_str()
            && f["from_seq"] == 1),
        "{findings:?}"
    );
}

#[tokio::test]
async fn verify_detects_a_removed_chain_tail_and_a_removed_whole_chain() {
    // GIVEN a plan recorded twice (chains of two records, each run anchored)
    let world = World::new();
    world.seed_demo(NOW);
    record_plan(&world);
    record_plan(&world);
    let (_, items) = split_anchors(audit_items(&world).await);
    let mut resources: Vec<String> = items.iter().map(|i| s(i, "resource")).collect();
    resources.sort();
    resources.dedup();
    let (tail, whole) = (resources[0].clone(), resources[1].clone());
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let delete = |resource: String, seq: &'static str| {
        let ddb = ddb.clone();
        async move {
            ddb.delete_item()
                .table_name(AUDIT)
                .key("resource", AttributeValue::S(resource))
                .key("seq", AttributeValue::N(seq.into()))
                .send()
                .await
                .unwrap();
        }
    };
    // WHEN the newest record of one chain, and every record of another, are deleted —
    // removals the chains alone cannot show
    delete(tail.clone(), "2").await;
    delete(whole.clone(), "1").await;
    delete(whole.clone(), "2").await;

    // THEN verify names both through the runs' anchors
    let out = run(world
        .keyrotor()
        .args(["audit", "verify", "--output", "json"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["problem"] == "truncated"
            && f["resource"] == tail.as_str()
            && f["anchored_seq"] == 2
            && f["found_seq"] == 1),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f["problem"] == "truncated"
            && f["resource"] == whole.as_str()
            && f["found_seq"].is_null()),
        "{findings:?}"
    );
    let text = stdout(&run(world.keyrotor().args(["audit", "verify"])));
    assert!(text.contains("the chain is gone"), "{text}");
}

#[tokio::test]
async fn audit_list_filters_by_resource_and_run() {
    let world = World::new();
    let m = world.seed_demo(NOW);
    record_plan(&world);
    let items = audit_items(&world).await;
    let run_id = s(&items[0], "run_id");
    let bob_key = m["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "bob")
        .unwrap()["keys"][0]["access_key_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let by_resource: Value = serde_json::from_str(&ok(&run(world.keyrotor().args([
        "audit",
        "list",
        "--resource",
        &bob_key,
        "--output",
        "json",
    ]))))
    .unwrap();
    let by_resource = by_resource.as_array().unwrap();
    assert_eq!(by_resource.len(), 1);
    assert_eq!(by_resource[0]["resource_id"], bob_key.as_str());
    assert_eq!(by_resource[0]["action"], "rotate");

    let by_run: Value = serde_json::from_str(&ok(&run(world
        .keyrotor()
        .args(["audit", "list", "--run", &run_id, "--output", "json"]))))
    .unwrap();
    assert_eq!(by_run.as_array().unwrap().len(), items.len());
    let none: Value = serde_json::from_str(&ok(&run(world
        .keyrotor()
        .args(["audit", "list", "--run", "run-nope", "--output", "json"]))))
    .unwrap();
    assert_eq!(none.as_array().unwrap().len(), 0);

    let recent = ok(&run(world
        .keyrotor()
        .args(["audit", "list", "--since", "1h"])));
    assert!(recent.contains(&bob_key), "{recent}");
}
