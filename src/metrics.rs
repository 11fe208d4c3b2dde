//! CloudWatch metrics as Embedded Metric Format (EMF) documents: one JSON object per line of
//! a Lambda's stdout, which CloudWatch Logs turns into metrics without an API call.
//!
//! Metrics (namespace [`NAMESPACE`]), which the template's dashboard and alarms use:
//! - `Actions` (Count), by `Kind` and `Outcome`: what a run did (`succeeded`, `failed`,
//!   `blocked`, `planned`, `conflict`);
//! - `BlockedActions` (Count), by `Kind` and in total: actions keyrotor refused to take
//!   because they could break a client (a person must look);
//! - `MinDaysToCertificateExpiry` (Count), in total: the fewest days any certificate has
//!   left (negative once expired);
//! - `DaysToExpiry` (Count), by `Domain` and `Region`: one per certificate.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::cert::CertAssessment;

pub const NAMESPACE: &str = "KeyRotor";

/// Every metric name keyrotor emits (the template test checks the dashboard uses only these).
pub const METRICS: [&str; 4] = [
    "Actions",
    "BlockedActions",
    "MinDaysToCertificateExpiry",
    "DaysToExpiry",
];

/// What one run of a job did, counted for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// `iam-keys`, `api-keys`, `migration`, `certs`.
    pub kind: String,
    /// Actions per outcome.
    pub outcomes: BTreeMap<String, u64>,
    pub blocked: u64,
    pub min_days_to_expiry: Option<i64>,
    /// Documents made elsewhere (one per certificate).
    pub extra: Vec<Value>,
}

impl Tally {
    pub fn new(kind: &str) -> Tally {
        Tally {
            kind: kind.to_owned(),
            ..Tally::default()
        }
    }

    /// Counts one action by the name of its status as the steps report it (`done`,
    /// `dry-run`, ...: a `Status::as_str`) or of an audit outcome (`succeeded`, `planned`).
    pub fn count(&mut self, status: &str) {
        let outcome = match status {
            "done" | "sent" | "succeeded" => "succeeded",
            "dry-run" | "planned" => "planned",
            other => other,
        };
        if outcome == "blocked" {
            self.blocked += 1;
        }
        *self.outcomes.entry(outcome.to_owned()).or_default() += 1;
    }

    /// Adds another account's counts of the same kind to these.
    pub fn merge(&mut self, other: Tally) {
        for (outcome, n) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
        self.blocked += other.blocked;
        self.min_days_to_expiry = match (self.min_days_to_expiry, other.min_days_to_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.extra.extend(other.extra);
    }

    /// The EMF documents of this run, stamped `at`.
    pub fn documents(&self, at: DateTime<Utc>) -> Vec<Value> {
        let mut docs: Vec<Value> = self
            .outcomes
            .iter()
            .map(|(outcome, n)| {
                json!({
                    "_aws": envelope(at, &[&["Kind", "Outcome"]], &["Actions"]),
                    "Kind": self.kind,
                    "Outcome": outcome,
                    "Actions": n,
                })
            })
            .collect();
        // Always, zero included, so the alarm sees data from every run.
        docs.push(json!({
            "_aws": envelope(at, &[&["Kind"], &[]], &["BlockedActions"]),
            "Kind": self.kind,
            "BlockedActions": self.blocked,
        }));
        if let Some(days) = self.min_days_to_expiry {
            docs.push(json!({
                "_aws": envelope(at, &[&[]], &["MinDaysToCertificateExpiry"]),
                "MinDaysToCertificateExpiry": days,
            }));
        }
        docs.extend(self.extra.iter().cloned());
        docs
    }
}

fn envelope(at: DateTime<Utc>, dimensions: &[&[&str]], metrics: &[&str]) -> Value {
    json!({
        "Timestamp": at.timestamp_millis(),
        "CloudWatchMetrics": [{
            "Namespace": NAMESPACE,
            "Dimensions": dimensions,
            "Metrics": metrics.iter().map(|m| json!({"Name": m, "Unit": "Count"})).collect::<Vec<_>>(),
        }]
    })
}

/// The `DaysToExpiry` document of one certificate.
pub fn certificate_days(a: &CertAssessment, days_left: i64, at: DateTime<Utc>) -> Value {
    json!({
        "_aws": envelope(at, &[&["Domain", "Region"]], &["DaysToExpiry"]),
        "Domain": a.domain,
        "Region": a.region,
        "CertificateArn": a.arn,
        "DaysToExpiry": days_left,
    })
}

/// Checks a document against the EMF specification's rules that CloudWatch enforces: the
/// envelope, a namespace, and every dimension and metric present as a top-level member
/// (dimensions as strings, metrics as numbers). Returns the problems found.
pub fn problems(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(meta) = doc.get("_aws") else {
        return vec!["no _aws member".into()];
    };
    if !meta["Timestamp"].is_i64() {
        out.push("_aws.Timestamp is not an integer of milliseconds".into());
    }
    let Some(directives) = meta["CloudWatchMetrics"].as_array() else {
        return vec!["_aws.CloudWatchMetrics is not an array".into()];
    };
    for d in directives {
        if d["Namespace"].as_str().is_none_or(str::is_empty) {
            out.push("a directive has no Namespace".into());
        }
        for set in d["Dimensions"].as_array().into_iter().flatten() {
            let Some(set) = set.as_array() else {
                out.push("a dimension set is not an array".into());
                continue;
            };
            if set.len() > 30 {
                out.push("more than 30 dimensions in a set".into());
            }
            for name in set {
                let name = name.as_str().unwrap_or_default();
                if !doc[name].is_string() {
                    out.push(format!("dimension {name} is not a string member"));
                }
            }
        }
        for m in d["Metrics"].as_array().into_iter().flatten() {
            let name = m["Name"].as_str().unwrap_or_default();
            if !doc[name].is_number() {
                out.push(format!("metric {name} is not a number member"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap()
    }

    #[test]
    fn a_run_makes_one_document_per_outcome_plus_blocked_and_expiry() {
        let mut t = Tally::new("iam-keys");
        for s in ["done", "done", "failed", "blocked", "dry-run"] {
            t.count(s);
        }
        t.min_days_to_expiry = Some(-2);
        let docs = t.documents(at());
        for d in &docs {
            assert_eq!(problems(d), Vec::<String>::new(), "{d}");
        }
        let actions = |outcome: &str| {
            docs.iter()
                .find(|d| d["Outcome"] == outcome)
                .map(|d| d["Actions"].as_u64().unwrap())
        };
        assert_eq!(actions("succeeded"), Some(2));
        assert_eq!(actions("failed"), Some(1));
        assert_eq!(actions("planned"), Some(1));
        let blocked = docs
            .iter()
            .find(|d| d.get("BlockedActions").is_some())
            .unwrap();
        assert_eq!(blocked["BlockedActions"], 1);
        let expiry = docs
            .iter()
            .find(|d| d.get("MinDaysToCertificateExpiry").is_some())
            .unwrap();
        assert_eq!(expiry["MinDaysToCertificateExpiry"], -2);
        assert_eq!(expiry["_aws"]["Timestamp"], at().timestamp_millis());
    }

    #[test]
    fn a_quiet_run_still_reports_zero_blocked_actions() {
        let docs = Tally::new("certs").documents(at());
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["BlockedActions"], 0);
    }

    #[test]
    fn the_checker_finds_a_metric_without_its_member() {
        let bad = json!({"_aws": envelope(at(), &[&["Kind"]], &["Actions"]), "Kind": 3});
        let found = problems(&bad);
        assert!(
            found.iter().any(|p| p.contains("dimension Kind")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|p| p.contains("metric Actions")),
            "{found:?}"
        );
    }
}
