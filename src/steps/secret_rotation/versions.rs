//! The secret's versions as the step sees them: values read by version id as staged when
//! the step began (a label moved meanwhile cannot swap what was checked for what is acted
//! on), and the staging-label changes the protocol makes.

use super::Hook;
use crate::ports::{PortError, SecretValue};
use crate::steps::api_keys::replacement::Stop;

impl Hook<'_> {
    /// This token's AWSPENDING value, if it has one.
    pub(super) async fn pending(&self) -> Result<Option<SecretValue>, PortError> {
        self.ports
            .secrets
            .value(
                &self.secret.name,
                Some(&self.request.token),
                Some("AWSPENDING"),
            )
            .await
    }

    /// The version that held `stage` when this step began (DescribeSecret at its start).
    /// Values are read by version id from then on: a version's value never changes, so a
    /// label moved during the step cannot swap what was checked for what is acted on.
    pub(super) fn staged(&self, stage: &str) -> Option<&str> {
        self.secret
            .versions
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.as_str())
    }

    /// The value of version `version`, `None` when it has none.
    pub(super) async fn version(&self, version: &str) -> Result<Option<SecretValue>, PortError> {
        self.ports
            .secrets
            .value(&self.secret.name, Some(version), None)
            .await
    }

    /// The AWSCURRENT value as the step began.
    pub(super) async fn current(&self) -> Result<SecretValue, Stop> {
        let missing = || {
            Stop::Blocked(format!(
                "secret {} has no AWSCURRENT value to rotate from",
                self.secret.name
            ))
        };
        let version = self.staged("AWSCURRENT").ok_or_else(missing)?;
        self.version(version).await?.ok_or_else(missing)
    }

    pub(super) fn shape<T>(&self, stage: &str, parsed: Result<T, String>) -> Result<T, Stop> {
        parsed.map_err(|why| {
            Stop::Blocked(format!(
                "the {stage} value of secret {} {why}; fix the secret",
                self.secret.name
            ))
        })
    }

    /// Versions other than the token's that still carry AWSPENDING: left by a rotation
    /// that failed. They would block every later rotation, so they are cleared.
    pub(super) async fn clear_stale_pending(&self) -> Result<Vec<String>, Stop> {
        let stale: Vec<String> = self
            .secret
            .versions
            .iter()
            .filter(|(v, s)| *v != &self.request.token && s.iter().any(|x| x == "AWSPENDING"))
            .map(|(v, _)| v.clone())
            .collect();
        for version in &stale {
            self.ports
                .secrets
                .move_stage(&self.secret.name, "AWSPENDING", None, Some(version))
                .await?;
        }
        Ok(stale)
    }

    /// Writes `value` as this token's version, staged AWSPENDING.
    pub(super) async fn write_pending(&self, value: &SecretValue) -> Result<(), PortError> {
        self.ports
            .secrets
            .put_pending(&self.secret.name, &self.request.token, value)
            .await
    }
}
