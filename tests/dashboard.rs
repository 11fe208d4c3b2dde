//! The template's dashboard and metric alarms read the metrics the Lambdas emit, under the
//! names `keyrotor::metrics` gives them (a renamed metric would leave a blank dashboard and
//! an alarm that never fires).

use std::collections::BTreeSet;

use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/template.yaml"))
        .unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// The string under a CloudFormation short tag (`!Sub ...`) or a plain string.
fn text(v: &Value) -> String {
    match v {
        Value::Tagged(t) => text(&t.value),
        Value::String(s) => s.clone(),
        other => panic!("not a string: {other:?}"),
    }
}

/// `${Name}` and `${Name.Attr}` replaced by a placeholder, as CloudFormation would.
fn substitute(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        let name = &rest[i + 2..end];
        out.push_str(if name.ends_with("Days") {
            "14"
        } else {
            "placeholder"
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Metric names of namespace KeyRotor anywhere in a dashboard body.
fn keyrotor_metrics(v: &serde_json::Value, found: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Array(items) => {
            if items.first().and_then(|f| f.as_str()) == Some("KeyRotor") {
                found.insert(items[1].as_str().unwrap().to_owned());
            }
            for item in items {
                keyrotor_metrics(item, found);
            }
        }
        serde_json::Value::Object(map) => {
            if let Some(expr) = map.get("expression").and_then(|e| e.as_str()) {
                let name = expr
                    .split("MetricName=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                assert!(expr.contains("{KeyRotor,"), "{expr}");
                found.insert(name.to_owned());
            }
            for item in map.values() {
                keyrotor_metrics(item, found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_dashboard_and_alarms_use_the_metrics_the_functions_emit() {
    let t = template();
    let resources = t["Resources"].as_mapping().unwrap();
    let emitted: BTreeSet<String> = keyrotor::metrics::METRICS
        .iter()
        .map(|m| m.to_string())
        .collect();

    let body = substitute(&text(
        &t["Resources"]["Dashboard"]["Properties"]["DashboardBody"],
    ));
    let dashboard: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("the dashboard body is not JSON: {e}\n{body}"));
    let mut used = BTreeSet::new();
    keyrotor_metrics(&dashboard, &mut used);
    assert!(
        used.is_subset(&emitted),
        "unknown metrics on the dashboard: {used:?}"
    );
    assert_eq!(used, emitted, "every emitted metric is on the dashboard");

    let mut alarmed = BTreeSet::new();
    for (_, r) in resources {
        if r["Type"] == "AWS::CloudWatch::Alarm" && r["Properties"]["Namespace"] == "KeyRotor" {
            alarmed.insert(r["Properties"]["MetricName"].as_str().unwrap().to_owned());
        }
    }
    assert!(alarmed.contains("BlockedActions") && alarmed.contains("MinDaysToCertificateExpiry"));
    assert!(alarmed.is_subset(&emitted), "{alarmed:?}");
    // The alarm widget lists every alarm of the template.
    let alarms = resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .count();
    let widget = dashboard["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["type"] == "alarm")
        .unwrap();
    assert_eq!(
        widget["properties"]["alarms"].as_array().unwrap().len(),
        alarms
    );
}

#[test]
fn a_dashboard_naming_an_unknown_metric_is_caught() {
    let body = r#"{"widgets":[{"properties":{"metrics":[["KeyRotor","ActionCount"]]}}]}"#;
    let mut used = BTreeSet::new();
    keyrotor_metrics(&serde_json::from_str(body).unwrap(), &mut used);
    assert!(!used.contains("Actions") && used.contains("ActionCount"));
}
