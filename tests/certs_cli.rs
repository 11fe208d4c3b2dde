//! `keyrotor certs` and `keyrotor sweep --kind certs` against the emulator, with
//! certificates this test generates (rcgen) at chosen validity and imports into ACM.

mod support;

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use support::{World, ok, run, seed, stdout};

const NOW: &str = "2026-11-25T00:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// Generates a self-signed certificate for `domain` valid from `not_before` to `not_after`
/// (dates, UTC) and imports it into the world's ACM, tagged with an owner. Returns its ARN.
async fn import(
    world: &World,
    domain: &str,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
) -> String {
    // moto refuses certificates that are not valid at import time: import "back then".
    world.set_clock(&(not_before + Duration::days(1)).to_rfc3339());
    let arn = seed::certificate(
        world,
        domain,
        not_before,
        not_after,
        Some("tls-team@example.com"),
    )
    .await;
    world.set_clock(NOW);
    arn
}

struct Certs {
    in_3: String,
    in_20: String,
    in_200: String,
    expired: String,
}

async fn world_with_certs() -> (World, Certs) {
    let world = World::new();
    let certs = Certs {
        expired: import(
            &world,
            "expired.example.com",
            now() - Duration::days(400),
            now() - Duration::days(2),
        )
        .await,
        in_3: import(
            &world,
            "three.example.com",
            now() - Duration::days(300),
            now() + Duration::days(3),
        )
        .await,
        in_20: import(
            &world,
            "twenty.example.com",
            now() - Duration::days(100),
            now() + Duration::days(20),
        )
        .await,
        in_200: import(
            &world,
            "twohundred.example.com",
            now() - Duration::days(10),
            now() + Duration::days(200),
        )
        .await,
    };
    (world, certs)
}

#[tokio::test]
async fn certs_report_is_sorted_by_urgency_with_step_and_diagnosis() {
    let (world, c) = world_with_certs().await;
    let out = ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .args(["certs", "--within", "365d", "--output", "json"])));
    let report: Value = serde_json::from_str(&out).unwrap();
    let certs = report["certificates"].as_array().unwrap();
    let order: Vec<&str> = certs.iter().map(|c| c["arn"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        vec![c.expired.as_str(), &c.in_3, &c.in_20, &c.in_200]
    );
    let steps: Vec<Option<&str>> = certs.iter().map(|c| c["step"].as_str()).collect();
    assert_eq!(steps, vec![Some("expired"), Some("7d"), Some("30d"), None]);
    let days: Vec<i64> = certs
        .iter()
        .map(|c| c["days_left"].as_i64().unwrap())
        .collect();
    assert_eq!(days, vec![-2, 3, 20, 200]);
    assert_eq!(certs[1]["domain"], "three.example.com");
    for cert in certs {
        assert_eq!(cert["diagnosis"], "imported", "{cert}");
        assert!(
            cert["action"].as_str().unwrap().contains("re-import"),
            "{cert}"
        );
    }
    assert_eq!(certs[1]["owner"], "tls-team@example.com");

    // The default window is the farthest ladder step (45 days).
    let out = ok(&run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .args(["certs", "--output", "json"])));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["certificates"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn fail_within_exits_5_for_ci_pipelines() {
    let (world, _) = world_with_certs().await;
    let late = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .args(["certs", "--fail-within", "1"]));
    assert_eq!(
        late.status.code(),
        Some(5),
        "an expired certificate is within any limit"
    );
    let table = stdout(&late);
    assert!(
        table.contains("three.example.com") && table.contains("expired"),
        "{table}"
    );

    // Before any of them got close, with only the 200-day one left in range:
    let early = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", "2026-01-01T00:00:00Z")
        .args(["certs", "--fail-within", "7"]));
    assert_eq!(early.status.code(), Some(0), "{}", stdout(&early));
}

async fn subscribe_queue(world: &World) -> (String, String) {
    let sdk = world.sdk().await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("keyrotor")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_owned();
    let queue_url = sqs
        .create_queue()
        .queue_name("inbox")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    (topic, queue_url)
}

async fn drain(world: &World, queue_url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&world.sdk().await);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn sweep(world: &World, policy: &std::path::Path, now: &str, emf: &std::path::Path) -> Value {
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", now)
        .arg("--config")
        .arg(policy)
        .args(["sweep", "--kind", "certs", "--output", "json", "--emf"])
        .arg(emf));
    serde_json::from_str(&ok(&out)).unwrap()
}

fn statuses(sweep: &Value) -> HashMap<String, (String, String)> {
    sweep["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["arn"].as_str().unwrap().to_owned(),
                (
                    n["status"].as_str().unwrap().to_owned(),
                    n["step"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn sweep_notifies_once_per_ladder_step_across_repeated_sweeps() {
    // GIVEN certificates at 3, 20, 200 days and one expired, and an SNS topic with a queue
    let (world, c) = world_with_certs().await;
    let (topic, queue) = subscribe_queue(&world).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("keyrotor.toml");
    std::fs::write(
        &policy,
        format!("[notifications]\nsns_topic_arn = \"{topic}\"\n"),
    )
    .unwrap();
    let emf = dir.path().join("emf.jsonl");
    ok(&run(world.keyrotor().arg("init")));

    // WHEN the sweep runs
    let first = sweep(&world, &policy, NOW, &emf);

    // THEN the three certificates on the ladder are notified, the 200-day one is not
    let s = statuses(&first);
    assert_eq!(s.len(), 3, "{s:?}");
    assert_eq!(s[&c.expired], ("sent".into(), "expired".into()));
    assert_eq!(s[&c.in_3], ("sent".into(), "7d".into()));
    assert_eq!(s[&c.in_20], ("sent".into(), "30d".into()));
    let messages = drain(&world, &queue).await;
    assert_eq!(messages.len(), 3);
    let three = messages
        .iter()
        .find(|m| m["Message"].as_str().unwrap().contains(&c.in_3))
        .expect("a message about the 3-day certificate");
    assert!(
        three["Subject"]
            .as_str()
            .unwrap()
            .contains("expires in 3 days"),
        "{three}"
    );
    assert!(
        three["Message"].as_str().unwrap().contains("re-import"),
        "{three}"
    );
    // When it will happen, and how to postpone it.
    let body = three["Message"].as_str().unwrap();
    assert!(
        body.contains("\nWhen: ") && body.contains("\nUndo or postpone: "),
        "{three}"
    );
    assert_eq!(
        three["MessageAttributes"]["owner"]["Value"],
        "tls-team@example.com"
    );

    // AND a metric per certificate is emitted in Embedded Metric Format
    let metrics: Vec<Value> = std::fs::read_to_string(&emf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(metrics.len(), 4);
    let m = metrics
        .iter()
        .find(|m| m["CertificateArn"] == c.in_200.as_str())
        .unwrap();
    assert_eq!(m["DaysToExpiry"], 200);
    assert_eq!(
        m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
        "DaysToExpiry"
    );

    // WHEN the sweep runs again at the same time: nothing new is sent
    let again = sweep(&world, &policy, NOW, &emf);
    assert!(
        statuses(&again)
            .values()
            .all(|(status, _)| status == "already-notified")
    );
    assert!(drain(&world, &queue).await.is_empty());

    // WHEN time moves 14 days: the 20-day certificate reaches 7d, the 3-day one expires,
    // the 200-day one is still far; only the new steps are notified
    let later = sweep(&world, &policy, "2026-12-09T00:00:00Z", &emf);
    let s = statuses(&later);
    assert_eq!(s[&c.in_20], ("sent".into(), "7d".into()));
    assert_eq!(s[&c.in_3], ("sent".into(), "expired".into()));
    assert_eq!(s[&c.expired], ("already-notified".into(), "expired".into()));
    assert_eq!(drain(&world, &queue).await.len(), 2);

    // AND every notification has an intent and an outcome record; the chain verifies
    let ddb = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let items = ddb
        .scan()
        .table_name("keyrotor-audit")
        .send()
        .await
        .unwrap();
    let items = items.items();
    let intents = items
        .iter()
        .filter(|i| i["phase"].as_s().unwrap() == "intent")
        .count();
    let outcomes: Vec<&str> = items
        .iter()
        .filter(|i| i["phase"].as_s().unwrap() == "outcome")
        .map(|i| i["outcome"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(intents, 5);
    assert_eq!(outcomes, vec!["succeeded"; 5]);
    assert!(
        items
            .iter()
            .all(|i| i["dry_run"].as_bool().unwrap() == &false)
    );
    let verify = run(world.keyrotor().args(["audit", "verify"]));
    assert!(verify.status.success(), "{}", stdout(&verify));
}

#[tokio::test]
async fn exempt_certificates_are_reported_but_never_notified() {
    let world = World::new();
    let arn = import(
        &world,
        "exempt.example.com",
        now() - Duration::days(100),
        now() + Duration::days(5),
    )
    .await;
    let acm = aws_sdk_acm::Client::new(&world.sdk().await);
    acm.add_tags_to_certificate()
        .certificate_arn(&arn)
        .tags(
            aws_sdk_acm::types::Tag::builder()
                .key("keyrotor:exempt")
                .value("2026-12-31")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    ok(&run(world.keyrotor().arg("init")));
    let dir = tempfile::tempdir().unwrap();
    let out = run(world
        .keyrotor()
        .env("KEYROTOR_NOW", NOW)
        .args(["sweep", "--kind", "certs", "--output", "json", "--emf"])
        .arg(dir.path().join("m")));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        done["notifications"].as_array().unwrap().is_empty(),
        "{done}"
    );
    assert_eq!(done["report"]["certificates"][0]["arn"], arn.as_str());
}
