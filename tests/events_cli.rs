//! EventBridge notifications against the emulator: a rule on the policy's bus matching
//! `source = keyrotor` delivers to an SQS queue, and the test reads what an operator's
//! channel would receive.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{World, example_policy_with, ok, run};

const NOW: &str = "2026-11-25T00:00:00Z";

async fn drain(sqs: &aws_sdk_sqs::Client, queue: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return events;
        }
        for m in got.messages() {
            events.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn every_notification_is_an_event_with_what_when_whose_and_undo() {
    // GIVEN the demo account, a bus rule routing keyrotor's events to a queue, and a policy
    // naming the bus
    let world = World::new();
    world.seed_demo(NOW);
    let sdk = world.sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs
        .create_queue()
        .queue_name("keyrotor-events")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let queue_arn = format!("arn:aws:sqs:us-east-1:{}:keyrotor-events", world.account);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    events
        .put_rule()
        .name("keyrotor-to-queue")
        .event_pattern(r#"{"source": ["keyrotor"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("keyrotor-to-queue")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let policy = example_policy_with(&[
        ("mode = \"plan\"", "mode = \"enforce\""),
        ("event_bus = \"\"", "event_bus = \"default\""),
    ]);
    let keyrotor = || {
        let mut cmd = world.keyrotor();
        cmd.env("KEYROTOR_NOW", NOW)
            .arg("--config")
            .arg(policy.path());
        cmd
    };
    ok(&run(keyrotor().arg("init")));

    // WHEN the IAM key and certificate sweeps run
    let iam: Value = serde_json::from_str(&ok(&run(
        keyrotor().args(["sweep", "--kind", "iam-keys", "--output", "json"])
    )))
    .unwrap();
    ok(&run(keyrotor().args(["sweep", "--kind", "certs"])));

    // THEN each notification arrived once as an event of a documented detail-type
    let received = drain(&sqs, &queue_url).await;
    let types: BTreeSet<&str> = received
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains("Key Deactivation Scheduled")
            && types.contains("Certificate Expiring")
            && types.contains("Certificate Expired"),
        "{types:?}"
    );
    let documented: BTreeSet<&str> = keyrotor::ports::EVENT_TYPES
        .iter()
        .map(|(_, d, _)| *d)
        .collect();
    assert!(types.is_subset(&documented), "{types:?}");
    let warned = iam["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "warn" && a["status"] == "done")
        .count();
    let warnings: Vec<&Value> = received
        .iter()
        .filter(|e| e["detail-type"] == "Key Deactivation Scheduled")
        .collect();
    assert!(warned > 0);
    assert_eq!(warnings.len(), warned, "one event per warned key");
    for e in &received {
        assert_eq!(e["source"], "keyrotor");
        let d = &e["detail"];
        for field in ["event", "resource", "summary", "message", "at", "undo"] {
            assert!(
                d[field].as_str().is_some_and(|s| !s.is_empty()),
                "detail.{field} missing: {e}"
            );
        }
        // Names who must act: the owner tag or the policy's default contact.
        assert!(d["owner"].as_str().is_some_and(|o| o.contains('@')), "{e}");
    }
    let warning = &warnings[0]["detail"];
    assert!(
        warning["undo"]
            .as_str()
            .unwrap()
            .contains("keyrotor:exempt"),
        "{warning}"
    );
    assert!(
        warning["summary"]
            .as_str()
            .unwrap()
            .contains("will be deactivated on"),
        "{warning}"
    );

    // AND a second sweep the same day sends nothing again
    ok(&run(keyrotor().args(["sweep", "--kind", "iam-keys"])));
    ok(&run(keyrotor().args(["sweep", "--kind", "certs"])));
    assert_eq!(drain(&sqs, &queue_url).await.len(), 0);
}
