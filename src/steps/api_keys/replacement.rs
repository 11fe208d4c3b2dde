//! The pieces of an API key rotation that the rotation steps and the Secrets Manager
//! rotation hook share (safety invariant 1: the replacement serves every usage plan of the
//! old key before the old key is taken away): how a step stops, the lease per key, the
//! replacement made once and only by keyrotor, and what keeps it from serving.

use std::collections::BTreeSet;

use super::store::RotationStore;
use crate::domain::api_rotation::{Rotation, TAG_REPLACES, TAG_ROTATION};
use crate::domain::model::AccountId;
use crate::ports::{ApiKeyAdmin, ApiKeyInfo, PortError, SecretValue};

/// Why a step did not complete.
pub(crate) enum Stop {
    /// Proceeding would risk a client: nothing more is done until a person looks.
    Blocked(String),
    Port(PortError),
}

impl From<PortError> for Stop {
    fn from(e: PortError) -> Self {
        Stop::Port(e)
    }
}

/// The lease serialising work on one API key.
pub fn lease_name(account: &AccountId, region: &str, key: &str) -> String {
    format!("api-key#{account}#{region}#{key}")
}

/// The replacement of `old_key` for rotation `token`: the one an earlier attempt created
/// (found by `name` and its rotation tag), or a new one with the old key's description and
/// tags; attached to every plan in `plans`.
pub(crate) async fn ensure_replacement(
    admin: &dyn ApiKeyAdmin,
    store: &RotationStore<'_>,
    rotation: &Rotation,
) -> Result<String, Stop> {
    let (old_key, token, plans) = (&rotation.old_key, &rotation.token, &rotation.plans);
    let name = rotation.replacement_name();
    let Some(old) = admin.key(old_key).await? else {
        return Err(Stop::Blocked(format!(
            "API key {old_key} no longer exists; nothing to replace"
        )));
    };
    // A key with the replacement's name and this rotation's tag is adopted only when
    // keyrotor can prove it made it. keyrotor chooses the value (random, never stored) and
    // notes a digest of it before CreateApiKey; a key whose value has no such note was made
    // by someone else. The name and the token are not secret, so someone who can create
    // API keys could otherwise have keyrotor attach a key of theirs, with a value they
    // chose, to the old key's usage plans.
    let found: Vec<ApiKeyInfo> = admin
        .keys_named(&name)
        .await?
        .into_iter()
        .filter(|k| {
            k.name == name && k.tags.get(TAG_ROTATION).map(String::as_str) == Some(token.as_str())
        })
        .collect();
    let recorded = match &rotation.new_key {
        Some(k) => admin.key(k).await?.map(|_| k.clone()),
        None => None,
    };
    let id = match (found.as_slice(), recorded) {
        // The record names the replacement (the state table is keyrotor's alone).
        (_, Some(recorded)) if found.iter().all(|k| k.id == recorded) => recorded,
        ([], None) => {
            let value = SecretValue::new(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ));
            store.note_replacement_value(old_key, token, &value).await?;
            let mut tags = old.tags.clone();
            tags.insert(TAG_ROTATION.into(), token.to_owned());
            tags.insert(TAG_REPLACES.into(), old_key.to_owned());
            admin
                .create_key(&name, old.description.as_deref(), &tags, &value)
                .await?
        }
        ([one], None)
            if store
                .replacement_value_noted(old_key, token, &admin.key_value(&one.id).await?)
                .await? =>
        {
            one.id.clone()
        }
        (many, _) => {
            return Err(Stop::Blocked(format!(
                "API key(s) [{}] named {name} carry this rotation's tag, but keyrotor did not create them; delete them (aws apigateway delete-api-key) and the rotation goes on",
                many.iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    for plan in plans {
        if !admin.plan_keys(plan).await?.contains(&id) {
            admin.attach(plan, &id).await?;
        }
    }
    Ok(id)
}

/// What keeps key `new` from serving the consumers of usage plans `plans`.
pub(crate) async fn replacement_problems(
    admin: &dyn ApiKeyAdmin,
    new: &str,
    plans: &[String],
) -> Result<Vec<String>, PortError> {
    let mut problems = Vec::new();
    match admin.key(new).await? {
        None => problems.push(format!("the replacement {new} does not exist")),
        Some(k) if !k.enabled => problems.push(format!("the replacement {new} is disabled")),
        Some(_) => {}
    }
    let mut missing = BTreeSet::new();
    for plan in plans {
        if !admin.plan_keys(plan).await?.iter().any(|k| k == new) {
            missing.insert(plan.clone());
        }
    }
    if !missing.is_empty() {
        problems.push(format!(
            "the replacement {new} is not in usage plans [{}]",
            missing.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    Ok(problems)
}
