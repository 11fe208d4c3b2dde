//! Reading the emulator's state back, for a test's THEN: a user's keys and their status,
//! the value a secret holds at a staging label.

use aws_sdk_iam::types::StatusType;
use serde_json::Value;

/// Every access key of `user` with its status, in IAM's order.
pub async fn keys(iam: &aws_sdk_iam::Client, user: &str) -> Vec<(String, StatusType)> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .expect("list the user's access keys")
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap_or_default().to_owned(),
                k.status().expect("a key has a status").clone(),
            )
        })
        .collect()
}

/// The status of `user`'s key `key`; `None` when the user has no such key.
pub async fn key_status(iam: &aws_sdk_iam::Client, user: &str, key: &str) -> Option<StatusType> {
    keys(iam, user)
        .await
        .into_iter()
        .find(|(id, _)| id == key)
        .map(|(_, status)| status)
}

/// The JSON secret `secret` holds at staging label `stage`; `None` when no version has
/// that label (or the value is not JSON).
pub async fn secret_stage(
    secrets: &aws_sdk_secretsmanager::Client,
    secret: &str,
    stage: &str,
) -> Option<Value> {
    let out = secrets
        .get_secret_value()
        .secret_id(secret)
        .version_stage(stage)
        .send()
        .await
        .ok()?;
    serde_json::from_str(out.secret_string()?).ok()
}
