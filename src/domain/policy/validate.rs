//! The shapes AWS gives names and ARNs (regions, IAM paths and role names, secret ids,
//! event buses, topics, managed policies, tables), checked before a policy is accepted so
//! that a typo fails `keyrotor policy check` instead of a call at 3 a.m.

use crate::domain::model::AccountId;

pub(super) fn is_region(value: &str) -> bool {
    // e.g. us-east-1, eu-central-2, us-gov-west-1, cn-north-1
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u8>()
            .is_ok_and(|n| (1..=20).contains(&n))
}

pub(super) fn is_role_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c))
}

/// An IAM path: `/`, or `/` segments `/`.
pub(super) fn is_iam_path(value: &str) -> bool {
    (1..=512).contains(&value.len())
        && value.starts_with('/')
        && value.ends_with('/')
        && !value.contains("//")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/+=,.@_-".contains(c))
}

/// STS's ExternalId pattern: `[\w+=,.@:\/-]{2,1224}`.
pub(super) fn is_external_id(value: &str) -> bool {
    (2..=1224).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c))
}

/// A Secrets Manager secret name (`[A-Za-z0-9/_+=.@-]{1,512}`) or ARN.
pub(super) fn is_secret_id(value: &str) -> bool {
    (1..=2048).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@:-".contains(c))
}

/// An event bus name (`default`, `[A-Za-z0-9._-/]{1,256}`) or an event bus ARN.
pub(super) fn is_event_bus(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        return parts.len() == 5
            && parts[0].starts_with("aws")
            && parts[1] == "events"
            && is_region(parts[2])
            && AccountId::parse(parts[3]).is_ok()
            && parts[4]
                .strip_prefix("event-bus/")
                .is_some_and(is_event_bus);
    }
    (1..=256).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
}

pub(super) fn is_sns_topic_arn(value: &str) -> bool {
    // arn:<partition>:sns:<region>:<12-digit account>:<topic name>
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && is_region(parts[3])
        && AccountId::parse(parts[4]).is_ok()
        && (1..=256).contains(&parts[5].len())
        && parts[5]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

/// An entry of `[migration] allowed_oidc_subjects`: not empty, no blank, `*` only as the
/// last character and not alone.
pub(super) fn is_oidc_subject_entry(value: &str) -> bool {
    let body = value.strip_suffix('*').unwrap_or(value);
    !body.is_empty() && !body.contains('*') && !value.chars().any(char::is_whitespace)
}

/// A managed policy ARN: `arn:<partition>:iam::<account or aws>:policy/<path/><name>`.
pub(super) fn is_managed_policy_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "iam"
        && parts[3].is_empty()
        && (parts[4] == "aws" || AccountId::parse(parts[4]).is_ok())
        && parts[5].strip_prefix("policy/").is_some_and(|rest| {
            let name = rest.rsplit('/').next().unwrap_or_default();
            (1..=128).contains(&name.len())
                && !rest.contains("//")
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/+=,.@_-".contains(c))
        })
}

pub(super) fn is_table_name(value: &str) -> bool {
    (3..=255).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}
