//! IAM policy documents as JSON values: compared as sets (order ignored), measured as IAM
//! counts them, and summarised for messages.

use serde_json::Value;

/// A policy document in a form where order does not matter: object keys sorted, every
/// list sorted and without duplicates, a one-item list the same as its item (IAM accepts
/// `"Action": "x"` and `"Action": ["x"]` alike).
fn canonical(doc: &Value) -> String {
    match doc {
        Value::Array(items) => {
            let mut parts: Vec<String> = items.iter().map(canonical).collect();
            parts.sort();
            parts.dedup();
            if parts.len() == 1 {
                parts.remove(0)
            } else {
                format!("[{}]", parts.join(","))
            }
        }
        Value::Object(map) => {
            let mut parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

/// Whether two policy documents grant the same: compared as parsed JSON, with the order
/// of statements and of every list ignored.
pub fn same_document(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// Size of a policy as IAM counts it (without whitespace).
pub(super) fn policy_size(doc: &Value) -> usize {
    doc.to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// The principals and conditions of a trust policy, short, for messages.
pub(super) fn principals(doc: &Value) -> String {
    let list = match &doc["Statement"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    };
    let parts: Vec<String> = list
        .iter()
        .map(|st| {
            let mut text = st["Principal"].to_string();
            if !st["Condition"].is_null() {
                text.push_str(&format!(" if {}", st["Condition"]));
            }
            text
        })
        .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join("; ")
    }
}
