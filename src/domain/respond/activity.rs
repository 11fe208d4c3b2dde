//! What an exposed key did: its CloudTrail events ([`ActivityEvent`]) and the investigation
//! summary made of them ([`summarize`]): how much, from where, which changes — the calls a
//! responder must check first listed before the rest. Every list is bounded, so a key used
//! a million times still yields a summary that fits a notification and a Step Functions
//! payload. Identifiers and metadata only: CloudTrail's lookup fields carry no secret.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One CloudTrail management event made with an access key. Identifiers and metadata only:
/// never a request body or a credential value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityEvent {
    /// CloudTrail's EventId.
    pub id: String,
    /// The API call, e.g. `CreateUser`.
    pub name: String,
    /// The service, e.g. `iam.amazonaws.com`.
    pub source: String,
    pub time: DateTime<Utc>,
    /// The region the call was made in (`awsRegion`).
    pub region: String,
    /// CloudTrail's `readOnly`, when it says.
    pub read_only: Option<bool>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The call's error code when it failed (`AccessDenied`, ...).
    pub error_code: Option<String>,
    /// The IAM user name CloudTrail records.
    pub user: Option<String>,
}

/// How many source IPs and user agents a summary names; the rest are counted.
pub const TOP_VALUES: usize = 20;
/// How many changes a summary lists; the rest are counted.
pub const MAX_CHANGES: usize = 100;

/// The calls a responder checks first, each for the reason given. They are listed among the
/// changes even when CloudTrail marks them read-only (the session and secret reads).
pub const CHECK_FIRST: &[&str] = &[
    // A new identity or credential: persistence that outlives the exposed key.
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "UpdateAccessKey",
    "CreateServiceSpecificCredential",
    "CreateVirtualMFADevice",
    "EnableMFADevice",
    "DeactivateMFADevice",
    // More permissions: privilege escalation.
    "AttachUserPolicy",
    "PutUserPolicy",
    "AttachGroupPolicy",
    "PutGroupPolicy",
    "AttachRolePolicy",
    "PutRolePolicy",
    "AddUserToGroup",
    "CreatePolicyVersion",
    "SetDefaultPolicyVersion",
    "DeleteUserPermissionsBoundary",
    "DeleteRolePermissionsBoundary",
    // A way back in through a role or a federation trust.
    "CreateRole",
    "UpdateAssumeRolePolicy",
    "CreateSAMLProvider",
    "CreateOpenIDConnectProvider",
    // Sessions made from the key keep working after it is deactivated.
    "GetSessionToken",
    "GetFederationToken",
    // Secret values read: what else must be rotated.
    "GetSecretValue",
    // Compute started or code planted: cost, mining, a foothold.
    "RunInstances",
    "CreateFunction",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "AddPermission",
    "ImportKeyPair",
    "CreateKeyPair",
    "AuthorizeSecurityGroupIngress",
    // Data opened up or shared out of the account.
    "PutBucketPolicy",
    "PutBucketAcl",
    "DeleteBucketPolicy",
    "DeletePublicAccessBlock",
    "PutBucketPublicAccessBlock",
    "ModifySnapshotAttribute",
    "ModifyImageAttribute",
    "PutKeyPolicy",
    "ScheduleKeyDeletion",
    // Evidence and detection switched off.
    "StopLogging",
    "DeleteTrail",
    "UpdateTrail",
    "PutEventSelectors",
    "DeleteFlowLogs",
    "DeleteDetector",
    "StopConfigurationRecorder",
    "DeleteConfigurationRecorder",
    "LeaveOrganization",
];

/// `name` without the API version some services append in CloudTrail
/// (`UpdateFunctionCode20150331v2` is Lambda's `UpdateFunctionCode`).
pub fn base_name(name: &str) -> &str {
    let trimmed = match name.rfind('v') {
        Some(v) if v + 1 < name.len() && name[v + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &name[..v]
        }
        _ => name,
    };
    let digits = trimmed.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 8 && trimmed.len() > 8 {
        &trimmed[..trimmed.len() - 8]
    } else {
        name
    }
}

/// Whether a call named `name` is one a responder checks first ([`CHECK_FIRST`]).
pub fn is_check_first(name: &str) -> bool {
    CHECK_FIRST.contains(&base_name(name))
}

/// A value and how many events had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    pub value: String,
    pub count: usize,
}

/// The most frequent values of one field: `top` (at most [`TOP_VALUES`], most frequent
/// first), `others` events with a value not in `top`, `unknown` events without one. So
/// `top` counts + `others` + `unknown` = the summary's event count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TopValues {
    /// How many distinct values there were.
    pub distinct: usize,
    pub top: Vec<Counted>,
    pub others: usize,
    pub unknown: usize,
}

impl TopValues {
    fn of<'a>(values: impl Iterator<Item = Option<&'a str>>) -> TopValues {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        let mut unknown = 0;
        for v in values {
            match v {
                Some(v) => *counts.entry(v).or_default() += 1,
                None => unknown += 1,
            }
        }
        let mut all: Vec<(&str, usize)> = counts.into_iter().collect();
        // Most frequent first; ties by value, so the summary does not depend on hashing.
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let distinct = all.len();
        let others = all.iter().skip(TOP_VALUES).map(|(_, n)| n).sum();
        let top = all
            .into_iter()
            .take(TOP_VALUES)
            .map(|(value, count)| Counted {
                value: value.to_owned(),
                count,
            })
            .collect();
        TopValues {
            distinct,
            top,
            others,
            unknown,
        }
    }
}

/// A call that changed something (or may have: CloudTrail did not say it was read-only),
/// or one of the [`CHECK_FIRST`] calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub name: String,
    pub source: String,
    pub time: DateTime<Utc>,
    pub region: String,
    pub source_ip: Option<String>,
    /// Set when the call failed: it was tried, and did not happen.
    pub error_code: Option<String>,
    /// One of the [`CHECK_FIRST`] calls.
    pub check_first: bool,
}

/// The investigation summary of one key's activity between `since` and `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySummary {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Events read (every region).
    pub event_count: usize,
    /// More events existed than were read: every count is a lower bound.
    pub limit_reached: bool,
    pub first_use: Option<DateTime<Utc>>,
    pub last_use: Option<DateTime<Utc>>,
    /// Calls per region.
    pub regions: BTreeMap<String, usize>,
    pub source_ips: TopValues,
    pub user_agents: TopValues,
    /// Calls that returned an error code.
    pub failed_calls: usize,
    /// Calls that were not read-only (or not known to be), plus the check-first calls.
    pub change_count: usize,
    /// How many of those are check-first calls.
    pub check_first_count: usize,
    /// The changes, check-first calls first (those that succeeded before those that
    /// failed), then the rest, each group oldest first; at most [`MAX_CHANGES`].
    pub changes: Vec<Change>,
    /// Changes not listed in `changes`.
    pub changes_omitted: usize,
}

/// Summarises `events` (any order) seen between `since` and `until`; `limit_reached` when
/// the look-up stopped before reading every event.
pub fn summarize(
    events: &[ActivityEvent],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit_reached: bool,
) -> ActivitySummary {
    let mut regions = BTreeMap::new();
    for e in events {
        *regions.entry(e.region.clone()).or_default() += 1;
    }
    let mut changes: Vec<Change> = events
        .iter()
        .filter(|e| e.read_only != Some(true) || is_check_first(&e.name))
        .map(|e| Change {
            name: e.name.clone(),
            source: e.source.clone(),
            time: e.time,
            region: e.region.clone(),
            source_ip: e.source_ip.clone(),
            error_code: e.error_code.clone(),
            check_first: is_check_first(&e.name),
        })
        .collect();
    changes.sort_by(|a, b| {
        (!a.check_first, a.error_code.is_some(), a.time, &a.name).cmp(&(
            !b.check_first,
            b.error_code.is_some(),
            b.time,
            &b.name,
        ))
    });
    let change_count = changes.len();
    let check_first_count = changes.iter().filter(|c| c.check_first).count();
    let changes_omitted = change_count.saturating_sub(MAX_CHANGES);
    changes.truncate(MAX_CHANGES);
    ActivitySummary {
        since,
        until,
        event_count: events.len(),
        limit_reached,
        first_use: events.iter().map(|e| e.time).min(),
        last_use: events.iter().map(|e| e.time).max(),
        regions,
        source_ips: TopValues::of(events.iter().map(|e| e.source_ip.as_deref())),
        user_agents: TopValues::of(events.iter().map(|e| e.user_agent.as_deref())),
        failed_calls: events.iter().filter(|e| e.error_code.is_some()).count(),
        change_count,
        check_first_count,
        changes,
        changes_omitted,
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `text` on one line, without control characters, at most `max` characters: user agents
/// are chosen by whoever holds the key.
fn one_line(text: &str, max: usize) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if cleaned.chars().count() > max {
        let cut: String = cleaned.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        cleaned
    }
}

impl ActivitySummary {
    /// The distinct check-first call names, in listed order, at most `n`.
    fn check_first_names(&self, n: usize) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for c in self.changes.iter().filter(|c| c.check_first) {
            let name = base_name(&c.name);
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names.truncate(n);
        names
    }

    /// One line for a notification, e.g. `42 calls from 3 IPs in 2 regions, 5 changes
    /// including CreateUser; first 2026-11-20 08:15 UTC, last 2026-11-25 10:02 UTC`.
    pub fn headline(&self) -> String {
        let (Some(first), Some(last)) = (self.first_use, self.last_use) else {
            return format!(
                "no calls between {} and {}",
                when(self.since),
                when(self.until)
            );
        };
        let at_least = if self.limit_reached { "at least " } else { "" };
        let ips = match self.source_ips.distinct {
            0 => "unknown IPs".to_owned(),
            n => plural(n, "IP", "IPs"),
        };
        let mut line = format!(
            "{at_least}{} from {ips} in {}, {}",
            plural(self.event_count, "call", "calls"),
            plural(self.regions.len(), "region", "regions"),
            plural(self.change_count, "change", "changes"),
        );
        let names = self.check_first_names(2);
        if !names.is_empty() {
            line.push_str(&format!(" including {}", names.join(", ")));
        }
        line.push_str(&format!("; first {}, last {}", when(first), when(last)));
        line
    }

    /// A few lines for a person: the headline, regions, top IPs and user agents, failures
    /// and the first changes to check.
    pub fn describe(&self) -> String {
        let mut out = vec![self.headline()];
        if self.event_count == 0 {
            return out.join("\n");
        }
        let regions: Vec<String> = self
            .regions
            .iter()
            .map(|(r, n)| format!("{r} ({n})"))
            .collect();
        out.push(format!("Regions: {}", regions.join(", ")));
        let top = |t: &TopValues, width: usize| {
            let mut parts: Vec<String> = t
                .top
                .iter()
                .take(5)
                .map(|c| format!("{} ({})", one_line(&c.value, width), c.count))
                .collect();
            let rest = t.distinct.saturating_sub(parts.len());
            if rest > 0 {
                parts.push(format!("{rest} more"));
            }
            if parts.is_empty() {
                "unknown".to_owned()
            } else {
                parts.join(", ")
            }
        };
        out.push(format!("Source IPs: {}", top(&self.source_ips, 45)));
        out.push(format!("User agents: {}", top(&self.user_agents, 60)));
        out.push(format!(
            "Failed calls: {} of {}",
            self.failed_calls, self.event_count
        ));
        if self.change_count > 0 {
            out.push(format!(
                "Changes to check ({} of {}, {} check-first):",
                self.changes.len().min(10),
                self.change_count,
                self.check_first_count
            ));
            for c in self.changes.iter().take(10) {
                let failed = c
                    .error_code
                    .as_deref()
                    .map(|e| format!(" failed: {}", one_line(e, 40)))
                    .unwrap_or_default();
                out.push(format!(
                    "  {} {} {} in {} from {}{failed}",
                    when(c.time),
                    one_line(&c.name, 60),
                    one_line(&c.source, 40),
                    one_line(&c.region, 20),
                    c.source_ip
                        .as_deref()
                        .map(|ip| one_line(ip, 45))
                        .unwrap_or_else(|| "unknown IP".to_owned()),
                ));
            }
        }
        out.join("\n")
    }
}

#[cfg(test)]
mod tests;
