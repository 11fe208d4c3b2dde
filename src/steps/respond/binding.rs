//! Which keyrotor secret, if any, a leaked key lives in — proven both ways before anything
//! is replaced: the user's tag `keyrotor:secret` names the secret, and the secret's
//! AWSCURRENT names the user and the key. A tag or a secret's content alone never decides
//! whose key is created (the rotation hook checks the binding again before it creates one).

use crate::domain::model::{AccessKeyId, IamUser, TAG_SECRET, TAG_TYPE};
use crate::ports::PortResult;
use crate::steps::secret_rotation::{HookPorts, TYPE_IAM, iam_secret_names};

/// What binds a leaked key to a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Bound {
    /// The secret's AWSCURRENT holds this key: it is replaced through the secret.
    Current { arn: String, name: String },
    /// The secret already holds another key of the user (replaced earlier, for example by
    /// a response that stopped before it deactivated this one).
    Replaced {
        arn: String,
        name: String,
        current: AccessKeyId,
    },
    /// No proven binding: why, for the response's detail. The key is deactivated at once.
    Unbound(String),
}

/// Reads the binding of `key` of `user` (as IAM has the user now) from IAM and Secrets
/// Manager. A read that fails is an error: the caller does not guess.
pub(super) async fn bound_secret(
    ports: &HookPorts<'_>,
    user: &IamUser,
    key: &AccessKeyId,
) -> PortResult<Bound> {
    let name = &user.name;
    let Some(arn) = user
        .tags
        .get(TAG_SECRET)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    else {
        return Ok(Bound::Unbound(format!(
            "user {name} names no secret (tag {TAG_SECRET}), so no client reads its key from a keyrotor secret"
        )));
    };
    let Some(secret) = ports.secrets.describe(&arn).await? else {
        return Ok(Bound::Unbound(format!(
            "user {name} names secret {arn}, which does not exist"
        )));
    };
    // The user's tag must name the secret exactly (its ARN), as the hook requires.
    if secret.arn != arn {
        return Ok(Bound::Unbound(format!(
            "user {name}'s tag {TAG_SECRET} is {arn:?}, not the secret's full ARN {}",
            secret.arn
        )));
    }
    if secret.tags.get(TAG_TYPE).map(String::as_str) != Some(TYPE_IAM) {
        return Ok(Bound::Unbound(format!(
            "secret {} (named by user {name}) is not tagged {TAG_TYPE} = {TYPE_IAM}",
            secret.name
        )));
    }
    let Some(current) = ports
        .secrets
        .value(&secret.arn, None, Some("AWSCURRENT"))
        .await?
    else {
        return Ok(Bound::Unbound(format!(
            "secret {} has no AWSCURRENT value",
            secret.name
        )));
    };
    let (named_user, named_key) = match iam_secret_names(current.expose()) {
        Ok(names) => names,
        Err(why) => {
            return Ok(Bound::Unbound(format!(
                "AWSCURRENT of secret {} {why}",
                secret.name
            )));
        }
    };
    if &named_user != name {
        return Ok(Bound::Unbound(format!(
            "secret {} names user {named_user}, not {name}: the binding does not hold both ways",
            secret.name
        )));
    }
    if &named_key == key {
        return Ok(Bound::Current {
            arn: secret.arn,
            name: secret.name,
        });
    }
    // Another key: replaced already only if that key is the same user's.
    match ports.iam.key_owner(&named_key).await? {
        Some(owner) if &owner == name => Ok(Bound::Replaced {
            arn: secret.arn,
            name: secret.name,
            current: named_key,
        }),
        _ => Ok(Bound::Unbound(format!(
            "secret {} holds key {named_key}, which is not a key of {name}",
            secret.name
        ))),
    }
}
