//! What one createSecret (one secret, one token) noted about its attempts at creating an
//! IAM key, so a repeated attempt can tell a key an earlier one made but never handed out
//! (its answer lost) from a key a person made: only the former may be removed to make room
//! (safety invariant 2). Noted in the state table right before each CreateAccessKey.

use chrono::{DateTime, Utc};

use super::Hook;
use crate::domain::model::AccessKeyId;
use crate::ports::PortError;
use crate::steps::api_keys::replacement::Stop;

/// The attempts of one createSecret (one secret, one token) at creating an IAM key, noted
/// right before each CreateAccessKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Attempt {
    /// The user's keys before the first attempt.
    pub(super) before: Vec<String>,
    /// When each attempt whose CreateAccessKey answer never came back called it (the
    /// latest few): the key it may have created is known only by its creation time.
    pub(super) times: Vec<DateTime<Utc>>,
    /// Keys these attempts created, as CreateAccessKey answered.
    pub(super) created: Vec<String>,
}

impl Attempt {
    /// Attempt times kept.
    pub(super) const KEPT: usize = 20;

    pub(super) fn attrs(&self) -> std::collections::BTreeMap<String, String> {
        let times: Vec<String> = self.times.iter().map(|t| t.to_rfc3339()).collect();
        std::collections::BTreeMap::from([
            ("before".to_owned(), self.before.join(",")),
            ("times".to_owned(), times.join(",")),
            ("created".to_owned(), self.created.join(",")),
        ])
    }

    pub(super) fn from_attrs(
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> Option<Attempt> {
        let list = |name: &str| {
            attrs.get(name).map(|v| {
                v.split(',')
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        };
        let times = list("times")?
            .iter()
            .map(|t| {
                DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Attempt {
            before: list("before")?,
            times,
            created: list("created").unwrap_or_default(),
        })
    }

    /// These attempts with only the keys CreateAccessKey named (no creation-time match).
    pub(super) fn without_times(self) -> Attempt {
        Attempt {
            times: Vec::new(),
            ..self
        }
    }

    /// Whether `key` was created by one of these attempts: CreateAccessKey named it, or —
    /// for an attempt whose answer was lost — it was not among the keys before and AWS
    /// created it within moments of that attempt's call.
    pub(super) fn created(&self, key: &crate::domain::model::AccessKey) -> bool {
        let id = key.id.to_string();
        if self.created.contains(&id) {
            return true;
        }
        !self.before.contains(&id)
            && self.times.iter().any(|t| {
                key.created >= *t - chrono::Duration::seconds(30)
                    && key.created <= *t + chrono::Duration::seconds(90)
            })
    }
}

impl Hook<'_> {
    /// Where this step's attempts at creating a key are noted (state table).
    fn attempt_item(&self) -> (String, String) {
        (
            format!("hook-attempt#{}", self.account),
            format!("{}#{}", self.secret.arn, self.request.token),
        )
    }

    /// What an earlier attempt of this very createSecret (same secret, same token) noted
    /// before it created a key: it may have stopped after CreateAccessKey (its answer lost,
    /// or a later call failed), leaving a key nobody was given.
    pub(super) async fn earlier_attempt(&self) -> Result<Option<Attempt>, Stop> {
        let (pk, sk) = self.attempt_item();
        let Some(attrs) = self.ports.state.get(&pk, &sk).await? else {
            return Ok(None);
        };
        Ok(Attempt::from_attrs(&attrs))
    }

    /// Notes, right before CreateAccessKey, which keys the user had (the first attempt's
    /// list is kept) and when this attempt ran.
    pub(super) async fn note_attempt(&self, before: &[String]) -> Result<(), Stop> {
        self.update_attempt(|earlier| match earlier {
            Some(mut a) => {
                a.times.push(self.now);
                let over = a.times.len().saturating_sub(Attempt::KEPT);
                a.times.drain(..over);
                a
            }
            None => Attempt {
                before: before.to_vec(),
                times: vec![self.now],
                created: Vec::new(),
            },
        })
        .await
    }

    /// Notes the key CreateAccessKey answered with: this attempt's outcome is known, so it
    /// no longer needs the creation-time match.
    pub(super) async fn note_created(&self, key: &AccessKeyId) -> Result<(), Stop> {
        self.update_attempt(|earlier| {
            let mut a = earlier.unwrap_or(Attempt {
                before: Vec::new(),
                times: Vec::new(),
                created: Vec::new(),
            });
            a.times.retain(|t| *t != self.now);
            a.created.push(key.to_string());
            a
        })
        .await
    }

    /// Removes this attempt's time: its CreateAccessKey was answered with an error.
    pub(super) async fn forget_attempt_time(&self) -> Result<(), Stop> {
        self.update_attempt(|earlier| {
            let mut a = earlier.unwrap_or(Attempt {
                before: Vec::new(),
                times: Vec::new(),
                created: Vec::new(),
            });
            a.times.retain(|t| *t != self.now);
            a
        })
        .await
    }

    /// Rewrites this step's attempt item with `update` of what is stored (compare-and-set
    /// on a count that only grows: of two attempts racing, one writes, the other stops).
    async fn update_attempt(
        &self,
        update: impl FnOnce(Option<Attempt>) -> Attempt,
    ) -> Result<(), Stop> {
        let (pk, sk) = self.attempt_item();
        let stored = self.ports.state.get(&pk, &sk).await?;
        let count: u64 = stored
            .as_ref()
            .and_then(|a| a.get("count"))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let attempt = update(stored.as_ref().and_then(Attempt::from_attrs));
        let mut attrs = attempt.attrs();
        attrs.insert("count".to_owned(), (count + 1).to_string());
        if !self
            .ports
            .state
            .advance(&pk, &sk, count + 1, &attrs)
            .await?
        {
            return Err(Stop::Port(PortError::Conflict {
                operation: "createSecret".into(),
                message: format!(
                    "another attempt of the rotation of secret {} is creating a key; Secrets Manager retries this step",
                    self.secret.name
                ),
            }));
        }
        Ok(())
    }
}

/// Whether `e` is an answer from AWS (the call was refused), as opposed to a call whose
/// outcome is unknown (timeout, transport, server error): only the latter may have made a
/// key.
pub(super) fn answered(e: &PortError) -> bool {
    matches!(
        e,
        PortError::NoCredentials { .. }
            | PortError::AccessDenied { .. }
            | PortError::InvalidCredentials { .. }
            | PortError::Throttled { .. }
            | PortError::NotFound { .. }
            | PortError::Limit { .. }
            | PortError::Conflict { .. }
    )
}
