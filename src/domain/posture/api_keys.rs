//! API Gateway API keys in the posture: each key's age and status (managed or not, due,
//! rotating), and how many keys are in each status.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Count, PostureInput, count, days};
use crate::domain::api_rotation::{Rotation, RotationStage};
use crate::domain::model::{ApiKey, Kind, TAG_SECRET};

#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyLine {
    pub id: String,
    pub name: String,
    pub age_days: i64,
    /// `unmanaged` (no keyrotor:secret tag), `current`, `due`, `rotating: <stage>`, `disabled`.
    pub status: String,
}

/// Every API key, oldest first, and the number of keys per status (`rotating: <stage>`
/// counts as `rotating`).
pub(super) fn api_key_lines(input: &PostureInput<'_>) -> (Vec<ApiKeyLine>, Vec<Count>) {
    let now = input.now;
    let due: Vec<&str> = input
        .plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys)
        .map(|a| a.resource.as_str())
        .collect();
    let mut api_keys: Vec<ApiKeyLine> = input
        .api_keys
        .iter()
        .map(|k| ApiKeyLine {
            id: k.id.clone(),
            name: k.name.clone(),
            age_days: days(k.created, now),
            status: api_status(k, input.rotations, &due),
        })
        .collect();
    api_keys.sort_by(|a, b| b.age_days.cmp(&a.age_days).then(a.id.cmp(&b.id)));
    let mut api_key_status: BTreeMap<String, usize> = BTreeMap::new();
    for k in &api_keys {
        let group = k.status.split(':').next().unwrap_or_default().to_owned();
        *api_key_status.entry(group).or_default() += 1;
    }
    let api_key_status = api_key_status
        .into_iter()
        .map(|(label, n)| count(label, n))
        .collect();
    (api_keys, api_key_status)
}

fn api_status(key: &ApiKey, rotations: &[Rotation], due: &[&str]) -> String {
    if let Some(r) = rotations
        .iter()
        .find(|r| r.old_key == key.id && r.stage != RotationStage::Deleted)
    {
        return format!("rotating: {}", r.stage.as_str());
    }
    if rotations
        .iter()
        .any(|r| r.new_key.as_deref() == Some(key.id.as_str()) && r.stage != RotationStage::Deleted)
    {
        return "replacement: in rotation".into();
    }
    if !key.tags.contains_key(TAG_SECRET) {
        "unmanaged".into()
    } else if !key.enabled {
        "disabled".into()
    } else if due.contains(&key.id.as_str()) {
        "due".into()
    } else {
        "current".into()
    }
}
