//! `keyrotor report` against the seeded demo account: the JSON posture is checked against
//! the seeder's manifest, and the HTML page is opened in headless Chromium (Debian's
//! package, driven by playwright-core from tests/browser), which must load it without an
//! error or an outside request and display every section and chart.

mod support;

use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use support::{World, example_policy_with, ok, repo_root, run};

const NOW: &str = "2026-11-25T00:00:00Z";

/// The page's sections, as the report promises them.
const SECTIONS: [&str; 8] = [
    "summary",
    "compliance",
    "iam-key-age",
    "iam-key-states",
    "api-keys",
    "certificates",
    "migration",
    "recent-actions",
];

/// A name that would run script and fetch an outside image if it were not escaped.
const HOSTILE: &str = "<img src=https://example.invalid/x.png onerror=alert(1)>";

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn control<'a>(posture: &'a Value, id: &str) -> &'a Value {
    posture["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("control {id} missing: {posture}"))
}

#[tokio::test]
async fn the_report_matches_the_account_and_renders_in_chromium() {
    // GIVEN the demo account, one API key with a hostile name, and a sweep that acted
    let world = World::new();
    let manifest = world.seed_demo(NOW);
    let sdk = world.sdk().await;
    aws_sdk_apigateway::Client::new(&sdk)
        .create_api_key()
        .name(HOSTILE)
        .enabled(true)
        .send()
        .await
        .unwrap();
    let enforce = example_policy_with(&[("mode = \"plan\"", "mode = \"enforce\"")]);
    let keyrotor = || {
        let mut cmd = world.keyrotor();
        cmd.env("KEYROTOR_NOW", NOW)
            .arg("--config")
            .arg(enforce.path());
        cmd
    };
    ok(&run(keyrotor().arg("init")));
    ok(&run(keyrotor().args(["sweep", "--kind", "iam-keys"])));

    // WHEN the report is asked for as JSON and as HTML
    let posture: Value =
        serde_json::from_str(&ok(&run(keyrotor().args(["report", "--output", "json"])))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("posture.html");
    let out = run(keyrotor()
        .args(["report", "--recent", "5", "--html"])
        .arg(&html_path));
    ok(&out);

    // THEN the counts are the manifest's, computed here independently
    let now = time(NOW);
    let active: Vec<(DateTime<Utc>, DateTime<Utc>)> = manifest["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["keys"].as_array().unwrap().iter())
        .filter(|k| k["status"] == "Active")
        .map(|k| {
            let created = time(k["created"].as_str().unwrap());
            let used = k["last_used"].as_str().map_or(created, time);
            (created, used)
        })
        .collect();
    let old = active
        .iter()
        .filter(|(c, _)| now - *c > Duration::days(90))
        .count();
    let idle = active
        .iter()
        .filter(|(_, u)| now - *u >= Duration::days(45))
        .count();
    assert!(old > 0 && idle > 0, "the demo has old and idle keys");
    assert_eq!(posture["iam"]["active_keys"], active.len());
    assert_eq!(posture["iam"]["over_rotation_line"], old);
    let bucketed: u64 = posture["iam"]["age_buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(bucketed, active.len() as u64);
    for (id, failing) in [
        ("CIS 1.14", old),
        ("IAM.3", old),
        ("CIS 1.12", idle),
        ("IAM.22", idle),
    ] {
        assert_eq!(control(&posture, id)["status"], "failed", "{id}");
        assert_eq!(control(&posture, id)["failing"], failing, "{id}");
    }
    // Certificates expiring in 3 and 20 days and one expired are within ACM.1's 30 days.
    assert_eq!(control(&posture, "ACM.1")["failing"], 3);
    let first = &posture["certificates"][0];
    assert!(first["days_left"].as_i64().unwrap() < 0, "{first}");
    assert!(
        posture["api_keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["name"] == HOSTILE && k["status"] == "unmanaged"),
        "{}",
        posture["api_keys"]
    );
    // The sweep's warnings are among the recent actions; dry-run records are not.
    let recent = posture["recent_actions"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|a| a["kind"] == "iam-keys" && a["action"] == "warn"),
        "{recent:?}"
    );
    assert!(
        stdout_of(&out).contains("CIS 1.14") && stdout_of(&out).contains("FAILED"),
        "{}",
        stdout_of(&out)
    );
    assert!(
        support::stderr(&out).contains(&html_path.display().to_string()),
        "the path is printed"
    );

    // AND the page escapes what came from the account
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(!html.contains(HOSTILE), "a name was written unescaped");
    assert!(html.contains("&lt;img src=https://example.invalid/x.png onerror=alert(1)&gt;"));
    assert!(!html.contains("<script") && !html.contains("<link"));

    // AND Chromium loads it without an error or an outside request, and shows every section
    let screenshot = repo_root().join("target/report-screenshot.png");
    let check = Command::new("node")
        .arg(repo_root().join("tests/browser/check-report.cjs"))
        .arg(&html_path)
        .arg(&screenshot)
        .args(SECTIONS)
        .output()
        .expect("run node (scripts/setup-browser.sh installs the browser test's packages)");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "browser check failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let seen: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(seen["problems"].as_array().unwrap().len(), 0, "{report}");
    let sections = seen["sections"].as_array().unwrap();
    assert_eq!(sections.len(), SECTIONS.len());
    for s in sections {
        assert_eq!(s["visible"], true, "{s}");
    }
    let charts: usize = sections
        .iter()
        .map(|s| s["charts"].as_array().unwrap().len())
        .sum();
    assert!(
        charts >= 5,
        "age, states, API keys, certificates, funnel: {charts}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}
