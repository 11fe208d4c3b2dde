//! The rotation of one API Gateway API key, as a state machine:
//!
//! ```text
//! Started -> ReplacementCreated -> Published -> Verified -> Promoted
//!         --(grace, or at once when compromised)--> Retired --(recovery)--> Deleted
//! ```
//!
//! The record of a rotation lives in the state table under the *old* key's id. It carries
//! a token chosen when the rotation starts: the replacement key is tagged with it and the
//! secret version is written with it as ClientRequestToken, so a step repeated after a
//! crash finds what the first attempt did instead of doing it twice. Pure: no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::policy::Policy;

/// Tag on a replacement key: the rotation token that created it.
pub const TAG_ROTATION: &str = "keyrotor:rotation";
/// Tag on a replacement key: the id of the key it replaces.
pub const TAG_REPLACES: &str = "keyrotor:replaces";

/// Where a rotation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationStage {
    /// Decided and recorded; nothing created yet.
    Started,
    /// The replacement exists, enabled, in every usage plan of the old key.
    ReplacementCreated,
    /// The replacement's value is the AWSPENDING version of the bound secret.
    Published,
    /// The replacement was checked: enabled, in every plan; the pending version names it.
    Verified,
    /// AWSCURRENT is the replacement; the old value is AWSPREVIOUS. Both keys work.
    Promoted,
    /// The old key is detached from its usage plans and disabled.
    Retired,
    /// The old key is deleted. The rotation is over.
    Deleted,
}

impl RotationStage {
    pub const ALL: [RotationStage; 7] = [
        RotationStage::Started,
        RotationStage::ReplacementCreated,
        RotationStage::Published,
        RotationStage::Verified,
        RotationStage::Promoted,
        RotationStage::Retired,
        RotationStage::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RotationStage::Started => "started",
            RotationStage::ReplacementCreated => "replacement-created",
            RotationStage::Published => "published",
            RotationStage::Verified => "verified",
            RotationStage::Promoted => "promoted",
            RotationStage::Retired => "retired",
            RotationStage::Deleted => "deleted",
        }
    }

    pub fn parse(text: &str) -> Option<RotationStage> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Why a rotation started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Older than `[api_keys] max_age_days`.
    Age,
    /// `keyrotor rotate api-key`.
    OnDemand,
    /// `keyrotor rotate api-key --reason compromised`: no grace period.
    Compromised,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Age => "age",
            Trigger::OnDemand => "on-demand",
            Trigger::Compromised => "compromised",
        }
    }

    pub fn parse(text: &str) -> Option<Trigger> {
        [Trigger::Age, Trigger::OnDemand, Trigger::Compromised]
            .into_iter()
            .find(|t| t.as_str() == text)
    }
}

/// The step that moves a rotation to its next stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationStep {
    CreateReplacement,
    Publish,
    Verify,
    Promote,
    Retire,
    Delete,
}

impl RotationStep {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStep::CreateReplacement => "create-replacement",
            RotationStep::Publish => "publish",
            RotationStep::Verify => "verify",
            RotationStep::Promote => "promote",
            RotationStep::Retire => "retire",
            RotationStep::Delete => "delete",
        }
    }

    /// The stage reached when the step succeeds.
    pub fn to(self) -> RotationStage {
        match self {
            RotationStep::CreateReplacement => RotationStage::ReplacementCreated,
            RotationStep::Publish => RotationStage::Published,
            RotationStep::Verify => RotationStage::Verified,
            RotationStep::Promote => RotationStage::Promoted,
            RotationStep::Retire => RotationStage::Retired,
            RotationStep::Delete => RotationStage::Deleted,
        }
    }
}

/// The record of one rotation (one state-table item, keyed by the old key's id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    pub old_key: String,
    /// The old key's name.
    pub name: String,
    /// The bound secret (`keyrotor:secret`).
    pub secret: String,
    /// The replacement's tag and the secret version id: 32 hex digits for a rotation the
    /// sweep or the CLI started, the ClientRequestToken for one the rotation hook started.
    pub token: String,
    pub trigger: Trigger,
    pub stage: RotationStage,
    /// When `stage` was reached.
    pub since: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    /// The usage plans of the old key when the rotation started.
    pub plans: Vec<String>,
    pub new_key: Option<String>,
    pub promoted_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// The state-table item version, for compare-and-set writes.
    pub version: u64,
}

impl Rotation {
    /// A rotation decided at `now`; nothing created yet.
    pub fn start(
        old_key: &str,
        name: &str,
        secret: &str,
        plans: &[String],
        token: String,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Rotation {
        Rotation {
            old_key: old_key.to_owned(),
            name: name.to_owned(),
            secret: secret.to_owned(),
            token,
            trigger,
            stage: RotationStage::Started,
            since: now,
            started_at: now,
            plans: plans.to_vec(),
            new_key: None,
            promoted_at: None,
            retired_at: None,
            version: 0,
        }
    }

    /// State-table partition of the rotations in one account and region.
    pub fn partition(account: &str, region: &str) -> String {
        format!("api-key#{account}#{region}")
    }

    /// The name of the replacement: the old name (without an earlier rotation suffix) and
    /// this rotation's suffix, so names do not grow with every rotation.
    pub fn replacement_name(&self) -> String {
        let base = super::binding::lineage_name(&self.name);
        format!("{base}-kr-{}", &self.token[..8.min(self.token.len())])
    }

    /// The next step and when it is due; `None` once the old key is deleted.
    pub fn next(&self, policy: &Policy) -> Option<(RotationStep, DateTime<Utc>)> {
        let p = &policy.api_keys;
        let days = |n: u32| Duration::days(i64::from(n));
        Some(match self.stage {
            RotationStage::Started => (RotationStep::CreateReplacement, self.since),
            RotationStage::ReplacementCreated => (RotationStep::Publish, self.since),
            RotationStage::Published => (RotationStep::Verify, self.since),
            RotationStage::Verified => (RotationStep::Promote, self.since),
            RotationStage::Promoted => {
                let promoted = self.promoted_at.unwrap_or(self.since);
                let grace = match self.trigger {
                    Trigger::Compromised => Duration::zero(),
                    _ => days(p.grace_days),
                };
                (RotationStep::Retire, promoted + grace)
            }
            RotationStage::Retired => {
                let retired = self.retired_at.unwrap_or(self.since);
                (RotationStep::Delete, retired + days(p.recovery_days))
            }
            RotationStage::Deleted => return None,
        })
    }

    /// The record after `step` succeeded at `now`.
    pub fn advanced(&self, step: RotationStep, now: DateTime<Utc>) -> Rotation {
        let mut next = self.clone();
        next.stage = step.to();
        next.since = now;
        match step {
            RotationStep::Promote => next.promoted_at = Some(now),
            RotationStep::Retire => next.retired_at = Some(now),
            _ => {}
        }
        next
    }

    /// The attributes stored for this record (the old key id is the sort key).
    pub fn attrs(&self) -> BTreeMap<String, String> {
        let mut attrs = BTreeMap::from([
            ("name".to_owned(), self.name.clone()),
            ("secret".to_owned(), self.secret.clone()),
            ("token".to_owned(), self.token.clone()),
            ("trigger".to_owned(), self.trigger.as_str().to_owned()),
            ("stage".to_owned(), self.stage.as_str().to_owned()),
            ("since".to_owned(), self.since.to_rfc3339()),
            ("started_at".to_owned(), self.started_at.to_rfc3339()),
            ("plans".to_owned(), self.plans.join(",")),
        ]);
        if let Some(k) = &self.new_key {
            attrs.insert("new_key".into(), k.clone());
        }
        if let Some(t) = self.promoted_at {
            attrs.insert("promoted_at".into(), t.to_rfc3339());
        }
        if let Some(t) = self.retired_at {
            attrs.insert("retired_at".into(), t.to_rfc3339());
        }
        attrs
    }

    /// Decodes a stored item; the error names the attribute that is wrong.
    pub fn from_item(
        sk: &str,
        version: u64,
        attrs: &BTreeMap<String, String>,
    ) -> Result<Rotation, String> {
        let get = |name: &str| {
            attrs
                .get(name)
                .cloned()
                .ok_or_else(|| format!("item {sk}: attribute {name} is missing"))
        };
        let time = |name: &str, text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("item {sk}: {name} {text:?}: {e}"))
        };
        let optional_time = |name: &str| match attrs.get(name) {
            Some(text) => time(name, text).map(Some),
            None => Ok(None),
        };
        let stage_text = get("stage")?;
        let trigger_text = get("trigger")?;
        let token = get("token")?;
        if !is_token(&token) {
            return Err(format!(
                "item {sk}: token {token:?} is not a rotation token"
            ));
        }
        Ok(Rotation {
            old_key: sk.to_owned(),
            name: get("name")?,
            secret: get("secret")?,
            token,
            trigger: Trigger::parse(&trigger_text)
                .ok_or_else(|| format!("item {sk}: trigger {trigger_text:?} is not known"))?,
            stage: RotationStage::parse(&stage_text)
                .ok_or_else(|| format!("item {sk}: stage {stage_text:?} is not known"))?,
            since: time("since", &get("since")?)?,
            started_at: time("started_at", &get("started_at")?)?,
            plans: get("plans")?
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            new_key: attrs.get("new_key").cloned(),
            promoted_at: optional_time("promoted_at")?,
            retired_at: optional_time("retired_at")?,
            version,
        })
    }
}

/// Whether `text` can be a rotation token: 8 to 64 ASCII letters, digits or dashes (the
/// sweep's 32 hex digits, or a Secrets Manager ClientRequestToken such as a UUID). The token
/// names a secret version and is a tag value and part of a key name, so nothing else is
/// accepted.
pub fn is_token(text: &str) -> bool {
    (8..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// The JSON a bound secret holds: `{"apiKeyId": ..., "value": ...}`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeySecret {
    #[serde(rename = "apiKeyId")]
    pub api_key_id: String,
    pub value: String,
}

impl std::fmt::Debug for ApiKeySecret {
    // Never print the value.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeySecret")
            .field("api_key_id", &self.api_key_id)
            .field("value", &"<redacted>")
            .finish()
    }
}

impl ApiKeySecret {
    /// Parses a secret string; the error describes the shape, never the content.
    pub fn parse(text: &str) -> Result<ApiKeySecret, String> {
        let parsed: ApiKeySecret = serde_json::from_str(text).map_err(|e| {
            format!(
                "is not the JSON object {{\"apiKeyId\": ..., \"value\": ...}} keyrotor expects (line {}, column {}: {})",
                e.line(),
                e.column(),
                match e.classify() {
                    serde_json::error::Category::Data => "missing or mistyped field",
                    serde_json::error::Category::Syntax => "not valid JSON",
                    serde_json::error::Category::Eof => "truncated",
                    serde_json::error::Category::Io => "unreadable",
                }
            )
        })?;
        if parsed.api_key_id.trim().is_empty() || parsed.value.is_empty() {
            return Err("has an empty apiKeyId or value".into());
        }
        Ok(parsed)
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({"apiKeyId": self.api_key_id, "value": self.value}).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    fn rotation(trigger: Trigger) -> Rotation {
        Rotation::start(
            "abc123",
            "orders-client",
            "orders/api-key",
            &["p1".into(), "p2".into()],
            "0123456789abcdef0123456789abcdef".into(),
            trigger,
            t(0),
        )
    }

    #[test]
    fn steps_follow_in_order_with_grace_and_recovery() {
        let p = Policy::default(); // grace 7, recovery 7
        let mut r = rotation(Trigger::Age);
        let mut seen = Vec::new();
        let mut now = t(0);
        while let Some((step, due)) = r.next(&p) {
            now = now.max(due);
            seen.push((step, (due - t(0)).num_days()));
            r = r.advanced(step, now);
        }
        assert_eq!(
            seen,
            vec![
                (RotationStep::CreateReplacement, 0),
                (RotationStep::Publish, 0),
                (RotationStep::Verify, 0),
                (RotationStep::Promote, 0),
                (RotationStep::Retire, 7),
                (RotationStep::Delete, 14),
            ]
        );
        assert_eq!(r.stage, RotationStage::Deleted);
    }

    #[test]
    fn a_compromised_key_is_retired_without_grace_but_keeps_its_recovery_window() {
        let p = Policy::default();
        let r = rotation(Trigger::Compromised).advanced(RotationStep::Promote, t(0));
        assert_eq!(r.next(&p), Some((RotationStep::Retire, t(0))));
        let r = r.advanced(RotationStep::Retire, t(0));
        assert_eq!(r.next(&p), Some((RotationStep::Delete, t(7))));
    }

    #[test]
    fn replacement_names_do_not_grow() {
        let r = rotation(Trigger::Age);
        assert_eq!(r.replacement_name(), "orders-client-kr-01234567");
        let mut again = r.clone();
        again.name = r.replacement_name();
        again.token = "fedcba9876543210fedcba9876543210".into();
        assert_eq!(again.replacement_name(), "orders-client-kr-fedcba98");
    }

    #[test]
    fn records_round_trip_and_bad_items_are_named() {
        let r = rotation(Trigger::OnDemand)
            .advanced(RotationStep::CreateReplacement, t(1))
            .advanced(RotationStep::Promote, t(2));
        let mut r = r;
        r.new_key = Some("def456".into());
        r.version = 3;
        let back = Rotation::from_item("abc123", 3, &r.attrs()).unwrap();
        assert_eq!(back, r);
        let mut bad = r.attrs();
        bad.insert("stage".into(), "halfway".into());
        let err = Rotation::from_item("abc123", 3, &bad).unwrap_err();
        assert!(err.contains("halfway"), "{err}");
        bad.remove("secret");
        assert!(Rotation::from_item("abc123", 3, &bad).is_err());
    }

    #[test]
    fn secret_shape_errors_never_echo_the_value() {
        let e = ApiKeySecret::parse("{\"apiKey\": \"s3cr3t-value\"}").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("apiKeyId"), "{e}");
        let e = ApiKeySecret::parse("s3cr3t-value").unwrap_err();
        assert!(!e.contains("s3cr3t"), "{e}");
        let ok = ApiKeySecret::parse("{\"apiKeyId\": \"k1\", \"value\": \"s3cr3t\"}").unwrap();
        assert_eq!(ok.api_key_id, "k1");
        assert!(!format!("{ok:?}").contains("s3cr3t"));
        assert_eq!(ApiKeySecret::parse(&ok.to_json()).unwrap(), ok);
    }
}
