//! Bindings between a credential and the secret that holds it, proven both ways.
//!
//! A tag or a secret's content is written by someone with weaker rights than keyrotor's
//! (tagging a resource, creating a secret). Alone, neither may decide whose credential
//! keyrotor creates or where it writes a value, so each binding needs a statement from
//! both sides:
//!
//! - **IAM user ↔ secret** (the rotation hook mints a key for the secret's `userName`):
//!   the user carries `keyrotor:secret = <the secret's full ARN>`. Tagging a user takes
//!   `iam:TagUser` on that user, which is not a weak right; creating a secret is.
//! - **API key ↔ secret** (keyrotor writes the key's replacement into the secret): the key
//!   carries `keyrotor:secret = <name or ARN of the secret>` and the secret carries
//!   `keyrotor:api-key = <the key's name without keyrotor's -kr- suffix>`, a value that
//!   stays the same across rotations. The secret must be in the key's account.
//!
//! The deployed template backs both with IAM conditions (`iam:ResourceTag/keyrotor:secret`
//! on CreateAccessKey, `secretsmanager:ResourceTag/keyrotor:api-key` on the writes).

use super::model::{TAG_SECRET, TAG_TYPE, Tags};

/// On a secret that holds an API key: the stable name of the key it holds.
pub const TAG_API_KEY: &str = "keyrotor:api-key";

/// `keyrotor:type` of a secret that holds an API key (the deployed functions may write
/// only secrets tagged so).
pub const TYPE_API_KEY: &str = "apigw-api-key";

/// The name of an API key without the `-kr-<8 hex>` suffix keyrotor gives replacements:
/// the same for a key and every replacement keyrotor makes of it.
pub fn lineage_name(name: &str) -> &str {
    match name.rsplit_once("-kr-") {
        Some((base, suffix))
            if suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            base
        }
        _ => name,
    }
}

/// The account field of an ARN (`arn:partition:service:region:account:...`).
fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(3)
}

/// The secret as Secrets Manager describes it.
#[derive(Debug, Clone, Copy)]
pub struct SecretSide<'a> {
    pub arn: &'a str,
    pub name: &'a str,
    pub tags: &'a Tags,
}

/// Whether `user` (with `user_tags`, read from IAM now) is bound to the secret `secret_arn`.
/// `Err` says which side is missing and how to bind them.
pub fn iam_user_secret(user: &str, user_tags: &Tags, secret_arn: &str) -> Result<(), String> {
    match user_tags.get(TAG_SECRET).map(|v| v.trim()) {
        Some(v) if v == secret_arn => Ok(()),
        Some(v) => Err(format!(
            "IAM user {user} is bound to secret {v:?} (its tag {TAG_SECRET}), not to {secret_arn}; only the secret the user names may receive its keys — tag the user {TAG_SECRET} = {secret_arn} if this secret is meant to hold them"
        )),
        None => Err(format!(
            "IAM user {user} does not name this secret: keyrotor creates a user's keys only for the secret the user's tag {TAG_SECRET} names (its full ARN); tag the user {TAG_SECRET} = {secret_arn} (this takes iam:TagUser on the user)"
        )),
    }
}

/// Whether API key `key_id` (named `key_name`, with `key_tags`, in `account`) and `secret`
/// are bound both ways. `Err` says which side is missing and how to bind them.
pub fn api_key_secret(
    key_id: &str,
    key_name: &str,
    key_tags: &Tags,
    account: &str,
    secret: SecretSide<'_>,
) -> Result<(), String> {
    let Some(named) = key_tags
        .get(TAG_SECRET)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    else {
        return Err(format!(
            "API key {key_id} ({key_name}) has no {TAG_SECRET} tag, so it names no secret; tag it {TAG_SECRET} = {}",
            secret.name
        ));
    };
    if named.starts_with("arn:") && arn_account(named) != Some(account) {
        return Err(format!(
            "API key {key_id} ({key_name}) names secret {named} in another account ({TAG_SECRET}); keyrotor writes a key's value only into a secret of the key's own account {account}"
        ));
    }
    if named != secret.name && named != secret.arn {
        return Err(format!(
            "API key {key_id} ({key_name}) names secret {named:?} ({TAG_SECRET}), not {} ({}); the tag must hold the secret's name or its full ARN — fix the tag on the key",
            secret.name, secret.arn
        ));
    }
    if arn_account(secret.arn) != Some(account) {
        return Err(format!(
            "secret {} is not in the API key's account {account}; keyrotor writes a key's value only into a secret of the key's own account",
            secret.arn
        ));
    }
    if secret.tags.get(TAG_TYPE).map(|v| v.trim()) != Some(TYPE_API_KEY) {
        return Err(format!(
            "secret {} is not tagged {TAG_TYPE} = {TYPE_API_KEY}; keyrotor writes API key values only into secrets tagged so (its deployed roles can write no others) — tag the secret",
            secret.name
        ));
    }
    let lineage = lineage_name(key_name);
    match secret.tags.get(TAG_API_KEY).map(|v| v.trim()) {
        Some(v) if v == lineage => Ok(()),
        Some(v) => Err(format!(
            "secret {} holds API key {v:?} (its tag {TAG_API_KEY}), not {lineage:?}; a secret receives only the key it names — fix the secret's tag if it is meant for {key_name}",
            secret.name
        )),
        None => Err(format!(
            "secret {} does not name API key {lineage:?}: keyrotor writes a key's value only into a secret that agrees to hold it; tag the secret {TAG_API_KEY} = {lineage}",
            secret.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:partner/acme-AbCdEf";

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn lineage_strips_only_keyrotors_suffix() {
        assert_eq!(lineage_name("orders-client"), "orders-client");
        assert_eq!(lineage_name("orders-client-kr-0123abcd"), "orders-client");
        assert_eq!(lineage_name("orders-kr-client"), "orders-kr-client");
        assert_eq!(lineage_name("orders-kr-xyz12345"), "orders-kr-xyz12345");
    }

    #[test]
    fn a_user_is_bound_only_to_the_secret_its_tag_names_by_full_arn() {
        assert!(iam_user_secret("svc", &tags(&[(TAG_SECRET, ARN)]), ARN).is_ok());
        let other = iam_user_secret("svc", &tags(&[(TAG_SECRET, "other")]), ARN).unwrap_err();
        assert!(other.contains("not to") && other.contains(ARN), "{other}");
        let none = iam_user_secret("svc", &Tags::new(), ARN).unwrap_err();
        assert!(none.contains("iam:TagUser"), "{none}");
        // The secret's name is not enough: a deleted secret's name can be taken again.
        assert!(iam_user_secret("svc", &tags(&[(TAG_SECRET, "partner/acme")]), ARN).is_err());
    }

    #[test]
    fn an_api_key_and_its_secret_must_name_each_other() {
        let secret_tags = tags(&[(TAG_API_KEY, "acme"), (TAG_TYPE, TYPE_API_KEY)]);
        let secret = SecretSide {
            arn: ARN,
            name: "partner/acme",
            tags: &secret_tags,
        };
        let by_name = tags(&[(TAG_SECRET, "partner/acme")]);
        let by_arn = tags(&[(TAG_SECRET, ARN)]);
        assert!(api_key_secret("k1", "acme", &by_name, "111122223333", secret).is_ok());
        assert!(api_key_secret("k1", "acme-kr-0123abcd", &by_arn, "111122223333", secret).is_ok());
        // The key names another secret.
        let e = api_key_secret(
            "k1",
            "acme",
            &tags(&[(TAG_SECRET, "x")]),
            "111122223333",
            secret,
        )
        .unwrap_err();
        assert!(e.contains("fix the tag on the key"), "{e}");
        // The secret names another key (or none).
        let e = api_key_secret("k2", "globex", &by_name, "111122223333", secret).unwrap_err();
        assert!(e.contains("not \"globex\""), "{e}");
        let untyped = tags(&[(TAG_API_KEY, "acme")]);
        let e = api_key_secret(
            "k1",
            "acme",
            &by_name,
            "111122223333",
            SecretSide {
                tags: &untyped,
                ..secret
            },
        )
        .unwrap_err();
        assert!(e.contains("keyrotor:type = apigw-api-key"), "{e}");
        let bare = tags(&[(TAG_TYPE, TYPE_API_KEY)]);
        let e = api_key_secret(
            "k1",
            "acme",
            &by_name,
            "111122223333",
            SecretSide {
                tags: &bare,
                ..secret
            },
        )
        .unwrap_err();
        assert!(e.contains("tag the secret keyrotor:api-key = acme"), "{e}");
    }

    #[test]
    fn a_secret_in_another_account_is_refused_from_either_side() {
        let secret_tags = tags(&[(TAG_API_KEY, "acme"), (TAG_TYPE, TYPE_API_KEY)]);
        let foreign = "arn:aws:secretsmanager:eu-west-1:999988887777:secret:steal-AbCdEf";
        let e = api_key_secret(
            "k1",
            "acme",
            &tags(&[(TAG_SECRET, foreign)]),
            "111122223333",
            SecretSide {
                arn: foreign,
                name: "steal",
                tags: &secret_tags,
            },
        )
        .unwrap_err();
        assert!(e.contains("another account"), "{e}");
        let e = api_key_secret(
            "k1",
            "acme",
            &tags(&[(TAG_SECRET, "steal")]),
            "111122223333",
            SecretSide {
                arn: foreign,
                name: "steal",
                tags: &secret_tags,
            },
        )
        .unwrap_err();
        assert!(e.contains("not in the API key's account"), "{e}");
    }
}
