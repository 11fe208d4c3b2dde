//! A function's configuration, read once at cold start: the policy from the environment,
//! the AWS configuration, and the policy time of each invocation.

use chrono::{DateTime, Utc};

use super::{Context, input};
use crate::aws::sts::StsIdentity;
use crate::aws::{Aws, Connection};
use crate::domain::policy::Policy;
use crate::ports::Identity;
use crate::steps::StepError;

/// The policy of a function: `KEYROTOR_POLICY` (the TOML text itself, as the template
/// passes it), else `KEYROTOR_CONFIG` (a file), else the defaults; table names from the
/// environment win.
pub fn policy_from_env() -> Result<Policy, StepError> {
    let inline = std::env::var("KEYROTOR_POLICY")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let mut policy = match std::env::var("KEYROTOR_CONFIG") {
        _ if inline.is_some() => {
            Policy::from_toml(inline.as_deref().unwrap_or_default(), "KEYROTOR_POLICY")
                .map_err(|e| StepError::InvalidInput(e.to_string()))?
        }
        Ok(path) if !path.trim().is_empty() => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                StepError::InvalidInput(format!("KEYROTOR_CONFIG = {path}: cannot read it: {e}"))
            })?;
            Policy::from_toml(&text, &path).map_err(|e| StepError::InvalidInput(e.to_string()))?
        }
        _ => Policy::default(),
    };
    if let Ok(t) = std::env::var("KEYROTOR_AUDIT_TABLE")
        && !t.trim().is_empty()
    {
        policy.audit.table = t;
    }
    if let Ok(t) = std::env::var("KEYROTOR_STATE_TABLE")
        && !t.trim().is_empty()
    {
        policy.audit.state_table = t;
    }
    // The stack's own bus, whose resource policy admits only keyrotor's roles: events go
    // there unless the policy names another bus.
    if let Ok(bus) = std::env::var("KEYROTOR_EVENT_BUS")
        && !bus.trim().is_empty()
        && policy.notifications.event_bus.is_none()
    {
        policy.notifications.event_bus = Some(bus.trim().to_owned());
    }
    Ok(policy)
}

impl Context {
    /// Loads configuration once, at cold start.
    pub async fn load() -> Result<Context, StepError> {
        let policy = policy_from_env()?;
        let aws = Aws::load(&Connection::default())
            .await
            .with_pacing(&policy.pacing);
        let region = aws
            .region()
            .ok_or_else(|| StepError::InvalidInput("no AWS region: set AWS_REGION".into()))?;
        let fixed_now = match std::env::var("KEYROTOR_NOW") {
            Ok(v) if !v.trim().is_empty() => Some(
                DateTime::parse_from_rfc3339(v.trim())
                    .map_err(|e| {
                        StepError::InvalidInput(format!(
                            "KEYROTOR_NOW = {v:?} is not an RFC 3339 time ({e})"
                        ))
                    })?
                    .with_timezone(&Utc),
            ),
            _ => None,
        };
        let inline_items = match std::env::var("KEYROTOR_INLINE_ITEMS") {
            Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| {
                StepError::InvalidInput(format!("KEYROTOR_INLINE_ITEMS = {v:?} is not a number"))
            })?,
            _ => 40,
        };
        // Best effort: a failure here is reported by the first invocation that needs it,
        // with its own error, rather than failing the start-up.
        let caller = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            StsIdentity::new(aws.sts()).caller(),
        )
        .await
        .ok()
        .and_then(Result::ok);
        Ok(Context {
            caller,
            aws,
            policy,
            region,
            fixed_now,
            items_bucket: std::env::var("KEYROTOR_PLAN_BUCKET")
                .ok()
                .filter(|b| !b.trim().is_empty()),
            inline_items,
        })
    }

    /// The policy time of one invocation: `KEYROTOR_NOW`, else the real time. With
    /// `KEYROTOR_EVENT_TIME=1` (local runs, where Wait states are shortened) an event field
    /// `"at"` may move it forward, never back.
    pub(super) fn now(&self, input: &input::JobInput) -> DateTime<Utc> {
        let base = self.fixed_now.unwrap_or_else(Utc::now);
        input.at.map_or(base, |at| at.max(base))
    }
}
