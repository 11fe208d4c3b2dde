//! Reading the event's fields, with their paths in every message: the decoder's helpers
//! (typed reads of JSON fields, ids checked, values quoted safely for a message).

use std::fmt;

use serde_json::{Map, Value};

use super::{EventError, SHOWN_CHARS};
use crate::domain::model::AccountId;

/// Who the messages are about so far, and the event's id and type once known.
pub(super) struct Ctx {
    pub(super) label: String,
    pub(super) event_id: Option<String>,
    pub(super) event_type: Option<String>,
}

impl Ctx {
    pub(super) fn new() -> Self {
        Self {
            label: "event".to_owned(),
            event_id: None,
            event_type: None,
        }
    }

    pub(super) fn err(&self, problem: impl fmt::Display) -> EventError {
        EventError {
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            message: format!("{}: {problem}", self.label),
        }
    }
}

/// A field that is present and not `null`.
pub(super) fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).filter(|v| !v.is_null())
}

/// A string field: `None` when absent or `null`, a problem when of another type.
pub(super) fn text<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match field(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "{path}{key} is {}, expected a string; pass the event exactly as EventBridge \
             delivered it",
            kind(other)
        )),
    }
}

/// An object field: `None` when absent or `null`, a problem when of another type.
pub(super) fn object<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match field(object, key) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(format!(
            "{path}{key} is {}, expected an object; pass the event exactly as EventBridge \
             delivered it",
            kind(other)
        )),
    }
}

pub(super) fn detail<'a>(
    event: &'a Map<String, Value>,
    ctx: &Ctx,
) -> Result<&'a Map<String, Value>, EventError> {
    object(event, "", "detail")
        .map_err(|p| ctx.err(p))?
        .ok_or_else(|| {
            ctx.err(
                "has no detail; pass the whole event exactly as EventBridge delivered it, \
                 detail included",
            )
        })
}

/// The first account id given among `fields`, checked. The detail's account comes first:
/// for an organization's view the envelope's `account` is the account that received the
/// event, not the one it is about.
pub(super) fn account(
    fields: [(&Map<String, Value>, &str, &str); 2],
    ctx: &Ctx,
) -> Result<Option<String>, EventError> {
    for (object, path, key) in fields {
        if let Some(value) = text(object, path, key).map_err(|p| ctx.err(p))? {
            return match AccountId::parse(value) {
                Ok(account) => Ok(Some(account.into())),
                Err(e) => Err(ctx.err(format!(
                    "{path}{key} {} is not an account id ({}); pass the event exactly as \
                     EventBridge delivered it",
                    shown(value),
                    e.expected
                ))),
            };
        }
    }
    Ok(None)
}

/// An id or type: 1 to `max` printable ASCII characters, no spaces.
pub(super) fn valid_id(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic())
}

pub(super) fn checked_id(
    value: &str,
    path: &str,
    max: usize,
    ctx: &Ctx,
) -> Result<String, EventError> {
    if valid_id(value, max) {
        Ok(value.to_owned())
    } else {
        Err(ctx.err(format!(
            "{path} {} is not an id AWS would send (1 to {max} printable characters, no \
             spaces); pass the event exactly as EventBridge delivered it",
            shown(value)
        )))
    }
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value from the event, quoted for a message: shortened, control characters escaped,
/// and withheld when it has the shape of a secret access key (40 characters of base64).
pub(super) fn shown(value: &str) -> String {
    if value.len() == 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
    {
        return "(40 characters withheld: they look like a secret access key)".to_owned();
    }
    let mut short: String = value.chars().take(SHOWN_CHARS).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// An id already checked by [`valid_id`], shortened for a message's label.
pub(super) fn plain(value: &str) -> String {
    let mut short: String = value.chars().take(2 * SHOWN_CHARS).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    short
}

/// The user name of an IAM user ARN (`arn:aws:iam::123456789012:user/path/name`).
pub(super) fn user_arn(value: &str) -> Option<&str> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws") && AccountId::parse(account).is_ok() =>
        {
            let name = resource.strip_prefix("user/")?.rsplit('/').next()?;
            valid_user_name(name).then_some(name)
        }
        _ => None,
    }
}

/// IAM's rule for user names: 1 to 64 of letters, digits and `+=,.@_-`.
pub(super) fn valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}
