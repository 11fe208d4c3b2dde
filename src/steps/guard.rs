//! The re-reads every destructive step makes right before it acts (safety invariant 8):
//! the world may have changed since the step was planned, so the facts a guard decides on
//! are read from AWS now, never taken from the plan or the state table alone. A guard that
//! cannot read answers with the error, and its caller does not act.

use chrono::{DateTime, Utc};

use crate::domain::binding::{self, SecretSide};
use crate::domain::lifecycle::KeyRecord;
use crate::domain::model::{AccessKey, AccessKeyId, IamUser};
use crate::domain::policy::Policy;
use crate::domain::removal::{self, RemovalFacts};
use crate::domain::scope;
use crate::ports::{ApiKeyAdmin, IamInventory, PortResult, SecretVersions};

/// What the removal guard found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removal {
    /// The key exists and may be removed now.
    Allowed(AccessKey),
    /// The key no longer exists under `user`.
    Gone,
    /// The key must be kept (as IAM shows it now): why, for people.
    Refused(AccessKey, String),
}

/// "May this key be removed": reads the user's keys and the key's last use now and asks
/// [`removal::may_remove`]. Every deletion of an access key goes through here.
pub(crate) async fn removable(
    iam: &dyn IamInventory,
    user: &str,
    key: &AccessKeyId,
    record: Option<&KeyRecord>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> PortResult<Removal> {
    let keys = iam.access_keys(user).await?;
    let Some(found) = keys.into_iter().find(|k| &k.id == key) else {
        return Ok(Removal::Gone);
    };
    let last_used = iam.key_last_used(key).await?.map(|u| u.at);
    let facts = RemovalFacts {
        key: &found,
        last_used,
        record,
    };
    Ok(match removal::may_remove(facts, now, policy) {
        Ok(()) => Removal::Allowed(found),
        Err(why) => Removal::Refused(found, why),
    })
}

/// The scope check of a user a step acts on by name: the user as IAM has it now (path and
/// tags), through [`scope::iam_user_exclusion`]. `Err(why)` when the user does not exist or
/// is out of scope.
pub(crate) async fn user_in_scope(
    iam: &dyn IamInventory,
    name: &str,
    now: DateTime<Utc>,
    policy: &Policy,
) -> PortResult<Result<IamUser, String>> {
    let Some(user) = iam.user(name).await? else {
        return Ok(Err(format!("IAM user {name} does not exist")));
    };
    Ok(match scope::iam_user_exclusion(&user, now, policy) {
        Some(e) => Err(format!(
            "IAM user {name} is out of keyrotor's scope ({}): {}",
            e.code(),
            e.detail()
        )),
        None => Ok(user),
    })
}

/// The binding of IAM user `user` to secret `secret_arn`, read from IAM now
/// ([`binding::iam_user_secret`]). `Err(why)` when the user does not exist or does not
/// name the secret.
pub(crate) async fn user_bound(
    iam: &dyn IamInventory,
    user: &str,
    secret_arn: &str,
) -> PortResult<Result<IamUser, String>> {
    let Some(found) = iam.user(user).await? else {
        return Ok(Err(format!("IAM user {user} does not exist")));
    };
    Ok(binding::iam_user_secret(user, &found.tags, secret_arn).map(|()| found))
}

/// The binding of API key `key` to secret `secret` (name or ARN), both read now
/// ([`binding::api_key_secret`]). `Err(why)` when either is missing or they do not name
/// each other.
pub(crate) async fn api_key_bound(
    admin: &dyn ApiKeyAdmin,
    secrets: &dyn SecretVersions,
    key: &str,
    secret: &str,
    account: &str,
) -> PortResult<Result<(), String>> {
    let Some(found) = admin.key(key).await? else {
        return Ok(Err(format!("API key {key} does not exist")));
    };
    let Some(described) = secrets.describe(secret).await? else {
        return Ok(Err(format!(
            "secret {secret:?} (named by API key {key}) does not exist"
        )));
    };
    Ok(binding::api_key_secret(
        key,
        &found.name,
        &found.tags,
        account,
        SecretSide {
            arn: &described.arn,
            name: &described.name,
            tags: &described.tags,
        },
    ))
}
