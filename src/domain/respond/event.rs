//! Decoding the events that report an exposed credential, exactly as EventBridge delivers
//! them (the envelope `version`, `id`, `detail-type`, `source`, `account`, `time`, `region`,
//! `resources`, `detail`), into [`Exposure`]s:
//!
//! - **AWS Health** (`source` = `aws.health`): the `AWS_RISK_CREDENTIALS_*` and
//!   `AWS_RISK_IAM_QUARANTINE` event types. Key ids come from `detail.affectedEntities`,
//!   `detail.eventMetadata` and, as a last resort, from key-id-shaped words in the
//!   description. An entity that is an IAM user ARN names the user when no key id is found.
//! - **GuardDuty** (`source` = `aws.guardduty`, `GuardDuty Finding`): the finding's
//!   `resource.accessKeyDetails`.
//! - **CloudTrail** (`source` = `aws.iam`, `AWS API Call via CloudTrail`): AWS attaching its
//!   `AWSCompromisedKeyQuarantine*` policy to a user (`AttachUserPolicy`).
//!
//! Anything else is an [`EventError`] that names the event, the problem and the fix. Pure: no
//! I/O; never panics, whatever the input. Values copied from the event into a message are
//! shortened, stripped of control characters, and withheld when they look like a secret
//! access key.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::{Exposure, Reason, Target, Trigger};
use crate::domain::model::AccessKeyId;

/// The largest event accepted, in bytes: EventBridge's limit for one event (256 KiB).
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The AWS Health event types keyrotor responds to, and why.
pub const HEALTH_EVENT_TYPES: [(&str, Reason); 5] = [
    ("AWS_RISK_CREDENTIALS_EXPOSED", Reason::Exposed),
    ("AWS_RISK_CREDENTIALS_EXPOSURE_SUSPECTED", Reason::Exposed),
    ("AWS_RISK_CREDENTIALS_COMPROMISED", Reason::Compromised),
    (
        "AWS_RISK_CREDENTIALS_COMPROMISE_SUSPECTED",
        Reason::Compromised,
    ),
    ("AWS_RISK_IAM_QUARANTINE", Reason::Exposed),
];

/// The name every version of AWS's quarantine policy starts with
/// (`arn:aws:iam::aws:policy/AWSCompromisedKeyQuarantine`, `…V2`, `…V3`).
pub const QUARANTINE_POLICY_PREFIX: &str = "AWSCompromisedKeyQuarantine";

const GUARDDUTY_DETAIL_TYPE: &str = "GuardDuty Finding";
const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// GuardDuty's sample findings (CreateSampleFindings) carry this in place of a key id.
const GUARDDUTY_SAMPLE_KEY: &str = "GeneratedFindingAccessKeyId";
/// AWS Health event ARNs are at most 1600 characters; other ids are far shorter.
const MAX_ID_CHARS: usize = 1600;
const MAX_TYPE_CHARS: usize = 256;
/// How much of a value from the event a message repeats.
const SHOWN_CHARS: usize = 80;
/// How many skipped values a message lists.
const SHOWN_REASONS: usize = 3;
const BY_HAND: &str = "respond by hand: keyrotor respond iam-key AKIA…";

/// Why an event could not be decoded. The event's id and type are kept when they were read
/// before the problem, so the caller can record an audited "could not act" with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The event's id (Health event ARN, GuardDuty finding id, CloudTrail event id, or the
    /// EventBridge id), when known.
    pub event_id: Option<String>,
    /// The event type (Health event type code, GuardDuty finding type, CloudTrail event
    /// name), when known.
    pub event_type: Option<String>,
    /// The whole message: the event, the problem and the fix.
    pub message: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EventError {}

/// Decodes one event, as EventBridge delivers it, into the exposures it reports: never
/// empty, one per target (key id, or user when the event names no key). Temporary key ids
/// (`ASIA…`) are decoded like any other; refusing them is the caller's decision.
pub fn decode(input: &str) -> Result<Vec<Exposure>, EventError> {
    if input.len() > MAX_EVENT_BYTES {
        return Err(Ctx::new().err(format!(
            "{} bytes is more than the {MAX_EVENT_BYTES} bytes (256 KiB) EventBridge delivers \
             in one event; pass one event exactly as EventBridge delivered it",
            input.len()
        )));
    }
    let value: Value = serde_json::from_str(input).map_err(|e| {
        Ctx::new().err(format!(
            "not valid JSON ({e}); pass the event exactly as EventBridge delivers it, a JSON \
             object with version, id, detail-type, source, account, time, region, resources \
             and detail"
        ))
    })?;
    decode_value(&value)
}

/// [`decode`] for an event already parsed (what a Lambda runtime hands over). The size bound
/// is the caller's: Lambda's own payload limit.
pub fn decode_value(value: &Value) -> Result<Vec<Exposure>, EventError> {
    let mut ctx = Ctx::new();
    let Some(event) = value.as_object() else {
        return Err(ctx.err(format!(
            "expected a JSON object (an EventBridge event), found {}; pass the whole event \
             as EventBridge delivers it",
            kind(value)
        )));
    };
    let source = match text(event, "", "source").map_err(|p| ctx.err(p))? {
        Some(source) => source,
        None => {
            return Err(ctx.err(
                "has no source; keyrotor reads an event exactly as EventBridge delivers it \
                 (version, id, detail-type, source, account, time, region, resources, detail) \
                 — pass the whole event, not only its detail",
            ));
        }
    };
    let detail_type = text(event, "", "detail-type").map_err(|p| ctx.err(p))?;
    // The EventBridge id: kept for errors until the event's own id is known.
    if let Ok(Some(id)) = text(event, "", "id")
        && valid_id(id, MAX_ID_CHARS)
    {
        ctx.event_id = Some(id.to_owned());
    }
    let decoded = match source {
        "aws.health" => health(event, &mut ctx),
        "aws.guardduty" => guardduty(event, detail_type, &mut ctx),
        "aws.iam" => cloudtrail(event, detail_type, &mut ctx),
        other => Err(ctx.err(format!(
            "source {} is not one keyrotor responds to; it reads AWS Health (aws.health), \
             GuardDuty (aws.guardduty) and CloudTrail AttachUserPolicy (aws.iam) events — \
             check the EventBridge rule's pattern",
            shown(other)
        ))),
    }?;
    // Every path above returns at least one exposure or an error; this keeps the promise
    // even if one of them changes.
    if decoded.is_empty() {
        return Err(ctx.err(format!("names no credential; {BY_HAND}")));
    }
    Ok(decoded)
}

// ---------------------------------------------------------------------------------------
// AWS Health

fn health(event: &Map<String, Value>, ctx: &mut Ctx) -> Result<Vec<Exposure>, EventError> {
    ctx.label = "event (AWS Health)".to_owned();
    let detail = detail(event, ctx)?;
    if let Some(arn) = text(detail, "detail.", "eventArn").map_err(|p| ctx.err(p))? {
        ctx.event_id = Some(checked_id(arn, "detail.eventArn", MAX_ID_CHARS, ctx)?);
    }
    let Some(event_id) = ctx.event_id.clone() else {
        return Err(ctx.err(
            "names no event id (neither detail.eventArn nor id); pass the event exactly as \
             EventBridge delivered it",
        ));
    };
    ctx.label = format!("event (AWS Health, {})", plain(&event_id));
    let Some(code) = text(detail, "detail.", "eventTypeCode").map_err(|p| ctx.err(p))? else {
        return Err(ctx.err(format!(
            "has no detail.eventTypeCode; keyrotor responds to {} — check the EventBridge \
             rule's pattern",
            health_types()
        )));
    };
    let code = checked_id(code, "detail.eventTypeCode", MAX_TYPE_CHARS, ctx)?;
    ctx.event_type = Some(code.clone());
    ctx.label = format!("event (AWS Health {}, {})", plain(&code), plain(&event_id));
    let Some(reason) = HEALTH_EVENT_TYPES
        .iter()
        .find(|(known, _)| *known == code)
        .map(|(_, reason)| *reason)
    else {
        return Err(ctx.err(format!(
            "detail.eventTypeCode {} is not a credential exposure; keyrotor responds to {} — \
             check the EventBridge rule's pattern",
            shown(&code),
            health_types()
        )));
    };
    let account = account(
        [
            (detail, "detail.", "affectedAccount"),
            (event, "", "account"),
        ],
        ctx,
    )?;

    let mut found = Found::default();
    if let Some(entities) = field(detail, "affectedEntities") {
        match entities.as_array() {
            Some(entities) => {
                for (i, entity) in entities.iter().enumerate() {
                    let path = format!("detail.affectedEntities[{i}].entityValue");
                    match entity.get("entityValue") {
                        Some(Value::String(value)) => found.entity(&path, value),
                        None | Some(Value::Null) => {}
                        Some(other) => found.skip(format!("{path} is {}", kind(other))),
                    }
                }
            }
            None => found.skip(format!("detail.affectedEntities is {}", kind(entities))),
        }
    }
    if let Some(metadata) = field(detail, "eventMetadata") {
        match metadata.as_object() {
            Some(metadata) => {
                for value in metadata.values() {
                    if let Value::String(value) = value {
                        found.words(value);
                        if let Some(user) = user_arn(value) {
                            found.user(user);
                        }
                    }
                }
            }
            None => found.skip(format!("detail.eventMetadata is {}", kind(metadata))),
        }
    }
    if found.keys.is_empty()
        && let Some(Value::Array(descriptions)) = field(detail, "eventDescription")
    {
        for description in descriptions {
            if let Some(Value::String(text)) = description.get("latestDescription") {
                found.words(text);
            }
        }
    }
    let user = match found.users.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    };
    let targets: Vec<Target> = if found.keys.is_empty() {
        found.users.iter().cloned().map(Target::User).collect()
    } else {
        found.keys.iter().cloned().map(Target::Key).collect()
    };
    if targets.is_empty() {
        return Err(ctx.err(format!(
            "names no access key id in detail.affectedEntities, detail.eventMetadata or the \
             description{}; {BY_HAND}",
            found.skipped_note()
        )));
    }
    Ok(targets
        .into_iter()
        .map(|target| Exposure {
            target,
            reason,
            trigger: Trigger::Health,
            event_id: event_id.clone(),
            event_type: code.clone(),
            account: account.clone(),
            user: user.clone(),
        })
        .collect())
}

fn health_types() -> String {
    let names: Vec<&str> = HEALTH_EVENT_TYPES.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

// ---------------------------------------------------------------------------------------
// GuardDuty

fn guardduty(
    event: &Map<String, Value>,
    detail_type: Option<&str>,
    ctx: &mut Ctx,
) -> Result<Vec<Exposure>, EventError> {
    ctx.label = "event (GuardDuty)".to_owned();
    if detail_type != Some(GUARDDUTY_DETAIL_TYPE) {
        return Err(ctx.err(format!(
            "detail-type {} is not a finding; keyrotor responds to {GUARDDUTY_DETAIL_TYPE:?} \
             events about an access key — check the EventBridge rule's pattern",
            detail_type.map_or_else(|| "(missing)".to_owned(), shown)
        )));
    }
    let detail = detail(event, ctx)?;
    // The finding id, not the EventBridge id: GuardDuty sends an updated finding again
    // under the same finding id, and that must not be a second response.
    let Some(id) = text(detail, "detail.", "id").map_err(|p| ctx.err(p))? else {
        return Err(ctx.err(
            "has no detail.id (the finding id); pass the event exactly as EventBridge \
             delivered it",
        ));
    };
    let event_id = checked_id(id, "detail.id", MAX_ID_CHARS, ctx)?;
    ctx.event_id = Some(event_id.clone());
    let event_type = match text(detail, "detail.", "type").map_err(|p| ctx.err(p))? {
        Some(kind) => checked_id(kind, "detail.type", MAX_TYPE_CHARS, ctx)?,
        None => GUARDDUTY_DETAIL_TYPE.to_owned(),
    };
    ctx.event_type = Some(event_type.clone());
    ctx.label = format!(
        "event (GuardDuty {}, {})",
        plain(&event_type),
        plain(&event_id)
    );
    let account = account(
        [(detail, "detail.", "accountId"), (event, "", "account")],
        ctx,
    )?;

    let resource = object(detail, "detail.", "resource").map_err(|p| ctx.err(p))?;
    let details = match resource {
        Some(resource) => {
            object(resource, "detail.resource.", "accessKeyDetails").map_err(|p| ctx.err(p))?
        }
        None => None,
    };
    let key = match details {
        Some(details) => text(details, "detail.resource.accessKeyDetails.", "accessKeyId")
            .map_err(|p| ctx.err(p))?,
        None => None,
    };
    let Some(key) = key else {
        let resource_type = resource
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str)
            .map_or_else(|| "not given".to_owned(), shown);
        return Err(ctx.err(format!(
            "names no access key: detail.resource.accessKeyDetails.accessKeyId is missing \
             (resource type {resource_type}); keyrotor responds to findings about an access \
             key (resource type AccessKey) — check the EventBridge rule's pattern"
        )));
    };
    let key = match AccessKeyId::parse(key) {
        Ok(key) => key,
        Err(_) if key == GUARDDUTY_SAMPLE_KEY => {
            return Err(ctx.err(format!(
                "is one of GuardDuty's sample findings (detail.resource.accessKeyDetails.\
                 accessKeyId is the placeholder {GUARDDUTY_SAMPLE_KEY:?}); nothing to respond \
                 to — a real finding names a key such as AKIAIOSFODNN7EXAMPLE"
            )));
        }
        Err(e) => {
            return Err(ctx.err(format!(
                "detail.resource.accessKeyDetails.accessKeyId {} is not an access key id ({}); \
                 {BY_HAND}",
                shown(key),
                e.expected
            )));
        }
    };
    let user = details
        .and_then(|d| d.get("userName"))
        .and_then(Value::as_str)
        .filter(|name| valid_user_name(name))
        .map(str::to_owned);
    Ok(vec![Exposure {
        target: Target::Key(key),
        reason: Reason::Compromised,
        trigger: Trigger::GuardDuty,
        event_id,
        event_type,
        account,
        user,
    }])
}

// ---------------------------------------------------------------------------------------
// CloudTrail: AWS attaching its quarantine policy

fn cloudtrail(
    event: &Map<String, Value>,
    detail_type: Option<&str>,
    ctx: &mut Ctx,
) -> Result<Vec<Exposure>, EventError> {
    ctx.label = "event (CloudTrail)".to_owned();
    if detail_type != Some(CLOUDTRAIL_DETAIL_TYPE) {
        return Err(ctx.err(format!(
            "detail-type {} is not a CloudTrail API call; keyrotor responds to \
             {CLOUDTRAIL_DETAIL_TYPE:?} events of AWS attaching its {QUARANTINE_POLICY_PREFIX} \
             policy (AttachUserPolicy) — check the EventBridge rule's pattern",
            detail_type.map_or_else(|| "(missing)".to_owned(), shown)
        )));
    }
    let detail = detail(event, ctx)?;
    if let Some(id) = text(detail, "detail.", "eventID").map_err(|p| ctx.err(p))? {
        ctx.event_id = Some(checked_id(id, "detail.eventID", MAX_ID_CHARS, ctx)?);
    }
    let Some(event_id) = ctx.event_id.clone() else {
        return Err(ctx.err(
            "names no event id (neither detail.eventID nor id); pass the event exactly as \
             EventBridge delivered it",
        ));
    };
    ctx.label = format!("event (CloudTrail, {})", plain(&event_id));
    let name = text(detail, "detail.", "eventName").map_err(|p| ctx.err(p))?;
    if name != Some("AttachUserPolicy") {
        if let Some(name) = name.filter(|n| valid_id(n, MAX_TYPE_CHARS)) {
            ctx.event_type = Some(name.to_owned());
        }
        return Err(ctx.err(format!(
            "detail.eventName {} is not AttachUserPolicy; keyrotor responds to CloudTrail's \
             record of AWS attaching its {QUARANTINE_POLICY_PREFIX} policy to a user — check \
             the EventBridge rule's pattern",
            name.map_or_else(|| "(missing)".to_owned(), shown)
        )));
    }
    let event_type = "AttachUserPolicy".to_owned();
    ctx.event_type = Some(event_type.clone());
    ctx.label = format!("event (CloudTrail AttachUserPolicy, {})", plain(&event_id));
    if let Some(code) = field(detail, "errorCode") {
        let code = code.as_str().map_or_else(|| kind(code).to_owned(), shown);
        return Err(ctx.err(format!(
            "the call failed (detail.errorCode {code}), so no policy was attached; nothing \
             to respond to"
        )));
    }
    // AWS attaches its quarantine policy itself (userIdentity AWSService or invoked by "AWS
    // Internal"); the same call by a principal of the account is a person's or a tool's
    // decision, not an exposure AWS found: it does not deactivate anybody's key.
    let by_aws = object(detail, "detail.", "userIdentity")
        .map_err(|p| ctx.err(p))?
        .is_some_and(|who| {
            field(who, "type").and_then(Value::as_str) == Some("AWSService")
                || field(who, "invokedBy").and_then(Value::as_str) == Some("AWS Internal")
        });
    if !by_aws {
        return Err(ctx.err(
            "the quarantine policy was attached by a principal of the account, not by AWS              (detail.userIdentity is not AWSService nor invoked by AWS Internal); keyrotor              responds to AWS's own quarantine — if a key did leak, respond by hand:              keyrotor respond iam-key AKIA…",
        ));
    }
    let Some(params) = object(detail, "detail.", "requestParameters").map_err(|p| ctx.err(p))?
    else {
        return Err(ctx.err(
            "has no detail.requestParameters (policyArn and userName); pass the event \
             exactly as EventBridge delivered it",
        ));
    };
    let policy = text(params, "detail.requestParameters.", "policyArn").map_err(|p| ctx.err(p))?;
    match policy {
        Some(policy) if quarantine_policy(policy) => {}
        Some(policy) => {
            return Err(ctx.err(format!(
                "detail.requestParameters.policyArn {} is not AWS's quarantine policy \
                 (arn:aws:iam::aws:policy/{QUARANTINE_POLICY_PREFIX}, …V2, …V3), so this is \
                 not a quarantine — check the EventBridge rule's pattern",
                shown(policy)
            )));
        }
        None => {
            return Err(ctx.err(
                "has no detail.requestParameters.policyArn; pass the event exactly as \
                 EventBridge delivered it",
            ));
        }
    }
    let user = text(params, "detail.requestParameters.", "userName").map_err(|p| ctx.err(p))?;
    let user = match user {
        Some(user) if valid_user_name(user) => user.to_owned(),
        Some(user) => {
            return Err(ctx.err(format!(
                "detail.requestParameters.userName {} is not an IAM user name (1 to 64 \
                 letters, digits and +=,.@_-); {BY_HAND}",
                shown(user)
            )));
        }
        None => {
            return Err(ctx.err(format!(
                "has no detail.requestParameters.userName; {BY_HAND}"
            )));
        }
    };
    let account = account(
        [
            (detail, "detail.", "recipientAccountId"),
            (event, "", "account"),
        ],
        ctx,
    )?;
    Ok(vec![Exposure {
        target: Target::User(user.clone()),
        reason: Reason::Exposed,
        trigger: Trigger::CloudTrail,
        event_id,
        event_type,
        account,
        user: Some(user),
    }])
}

/// `arn:<partition>:iam::aws:policy/AWSCompromisedKeyQuarantine…`: AWS's own policy, not a
/// customer's policy of the same name (whose ARN names the customer's account).
fn quarantine_policy(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", partition, "iam", "", "aws", resource] => {
            partition.starts_with("aws")
                && resource
                    .strip_prefix("policy/")
                    .and_then(|name| name.strip_prefix(QUARANTINE_POLICY_PREFIX))
                    .is_some_and(|version| version.bytes().all(|b| b.is_ascii_alphanumeric()))
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// What a Health event names

/// Key ids and user names found in an event, in order, without repeats, and why other
/// values were skipped.
#[derive(Default)]
struct Found {
    keys: Vec<AccessKeyId>,
    users: Vec<String>,
    seen: BTreeSet<(bool, String)>,
    skipped: Vec<String>,
}

impl Found {
    fn key(&mut self, key: AccessKeyId) {
        if self.seen.insert((true, key.as_str().to_owned())) {
            self.keys.push(key);
        }
    }

    fn user(&mut self, name: &str) {
        if self.seen.insert((false, name.to_owned())) {
            self.users.push(name.to_owned());
        }
    }

    fn skip(&mut self, reason: String) {
        self.skipped.push(reason);
    }

    /// An affected entity: a key id, an IAM user ARN, or a text with key ids in it.
    fn entity(&mut self, path: &str, value: &str) {
        if let Ok(key) = AccessKeyId::parse(value) {
            self.key(key);
        } else if let Some(user) = user_arn(value) {
            self.user(user);
        } else if self.words(value) == 0 {
            self.skip(format!(
                "{path} {} is neither an access key id nor an IAM user ARN",
                shown(value)
            ));
        }
    }

    /// Adds every access-key-id-shaped word (`AKIA…` or `ASIA…`, 20 upper-case letters and
    /// digits, not part of a longer word) in `text`; returns how many it found.
    fn words(&mut self, text: &str) -> usize {
        let mut count = 0;
        for word in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() == 20
                && (word.starts_with("AKIA") || word.starts_with("ASIA"))
                && let Ok(key) = AccessKeyId::parse(word)
            {
                self.key(key);
                count += 1;
            }
        }
        count
    }

    fn skipped_note(&self) -> String {
        if self.skipped.is_empty() {
            return String::new();
        }
        let shown: Vec<&str> = self
            .skipped
            .iter()
            .take(SHOWN_REASONS)
            .map(String::as_str)
            .collect();
        let more = self.skipped.len().saturating_sub(SHOWN_REASONS);
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        format!(" ({}{more})", shown.join("; "))
    }
}

mod read;

use read::{
    Ctx, account, checked_id, detail, field, kind, object, plain, shown, text, user_arn, valid_id,
    valid_user_name,
};

#[cfg(test)]
mod tests;
