//! [`IamInventory`] over IAM: the credential report first, per-user calls only where the
//! report cannot answer.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::types::StatusType;
use chrono::{DateTime, Utc};

use super::IamClient;
use crate::aws::{classify, to_utc};
use crate::domain::credential_report::{self, ReportRow};
use crate::domain::model::{AccessKey, AccessKeyId, IamUser, KeyStatus, LastUsed, Tags};
use crate::ports::{IamInventory, PortError, PortResult};

/// How long to wait for AWS to finish generating a credential report.
const REPORT_WAIT: Duration = Duration::from_secs(120);

impl IamClient {
    /// GetCredentialReport: `Ok(None)` when there is none, it expired, or it is still being
    /// generated.
    async fn get_report(&self) -> PortResult<Option<(Option<DateTime<Utc>>, Vec<u8>)>> {
        const OP: &str = "iam:GetCredentialReport";
        self.pacer.wait().await;
        match self.client.get_credential_report().send().await {
            Ok(out) => {
                let content = out
                    .content()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                Ok(Some((out.generated_time().and_then(to_utc), content)))
            }
            Err(e) => match e.as_service_error() {
                Some(
                    GetCredentialReportError::CredentialReportNotPresentException(_)
                    | GetCredentialReportError::CredentialReportExpiredException(_)
                    | GetCredentialReportError::CredentialReportNotReadyException(_),
                ) => Ok(None),
                _ => Err(classify(OP, e)),
            },
        }
    }
}

/// One ListAccessKeys entry as a domain key (last use is filled in later).
fn access_key(user: &str, meta: &aws_sdk_iam::types::AccessKeyMetadata) -> PortResult<AccessKey> {
    const OP: &str = "iam:ListAccessKeys";
    let invalid = |message: String| PortError::InvalidResponse {
        operation: OP.into(),
        message,
    };
    let id = AccessKeyId::parse(meta.access_key_id().unwrap_or_default())
        .map_err(|e| invalid(e.to_string()))?;
    let created = meta
        .create_date()
        .and_then(to_utc)
        .ok_or_else(|| invalid(format!("key {id} of {user} has no CreateDate")))?;
    let status = match meta.status() {
        Some(StatusType::Active) => KeyStatus::Active,
        // Anything not plainly active is treated as inactive: never a reason to delete
        // (deletion also needs the quiet period), and never mistaken for a live key.
        _ => KeyStatus::Inactive,
    };
    Ok(AccessKey {
        id,
        status,
        created,
        last_used: None,
    })
}

fn parse_report(content: &[u8]) -> PortResult<Vec<ReportRow>> {
    credential_report::parse(content).map_err(|e| PortError::InvalidResponse {
        operation: "iam:GetCredentialReport".into(),
        message: e.to_string(),
    })
}

#[async_trait]
impl IamInventory for IamClient {
    async fn credential_report(
        &self,
        now: DateTime<Utc>,
        max_age_hours: u32,
    ) -> PortResult<Vec<ReportRow>> {
        if let Some((generated, content)) = self.get_report().await?
            && generated
                .is_some_and(|g| now - g <= chrono::Duration::hours(i64::from(max_age_hours)))
        {
            return parse_report(&content);
        }
        self.pacer.wait().await;
        self.client
            .generate_credential_report()
            .send()
            .await
            .map_err(|e| classify("iam:GenerateCredentialReport", e))?;
        // AWS generates the report asynchronously; GetCredentialReport answers
        // ReportInProgress until it is ready. AWS regenerates at most every 4 hours, so the
        // report obtained after generating is used whatever its age.
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            if let Some((_, content)) = self.get_report().await? {
                return parse_report(&content);
            }
            if started.elapsed() > REPORT_WAIT {
                return Err(PortError::Other {
                    operation: "iam:GetCredentialReport".into(),
                    message: format!(
                        "the credential report was still being generated after {}s; run again in a minute",
                        REPORT_WAIT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn access_keys(&self, user: &str) -> PortResult<Vec<AccessKey>> {
        const OP: &str = "iam:ListAccessKeys";
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let out = self
                .client
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for meta in out.access_key_metadata() {
                keys.push(access_key(user, meta)?);
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(keys),
            }
        }
    }

    async fn user_tags(&self, user: &str) -> PortResult<Tags> {
        const OP: &str = "iam:ListUserTags";
        let mut tags = Tags::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let out = self
                .client
                .list_user_tags()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify(OP, e))?;
            for tag in out.tags() {
                tags.insert(tag.key().to_owned(), tag.value().to_owned());
            }
            match (out.is_truncated(), out.marker()) {
                (true, Some(m)) => marker = Some(m.to_owned()),
                _ => return Ok(tags),
            }
        }
    }

    async fn user(&self, name: &str) -> PortResult<Option<IamUser>> {
        const OP: &str = "iam:GetUser";
        self.pacer.wait().await;
        let out = match self.client.get_user().user_name(name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match classify(OP, e) {
                    PortError::NotFound { .. } => Ok(None),
                    e => Err(e),
                };
            }
        };
        let Some(user) = out.user() else {
            return Err(PortError::InvalidResponse {
                operation: OP.into(),
                message: format!("no user in the answer for {name}"),
            });
        };
        let tags = match self.user_tags(name).await {
            Ok(tags) => tags,
            Err(PortError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(IamUser {
            name: user.user_name().to_owned(),
            arn: user.arn().to_owned(),
            path: user.path().to_owned(),
            created: to_utc(user.create_date()).unwrap_or(DateTime::<Utc>::MIN_UTC),
            tags,
            keys: Vec::new(),
            is_root: false,
        }))
    }

    async fn key_owner(&self, key: &AccessKeyId) -> PortResult<Option<String>> {
        const OP: &str = "iam:GetAccessKeyLastUsed";
        self.pacer.wait().await;
        match self
            .client
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(out.user_name().filter(|u| !u.is_empty()).map(str::to_owned)),
            Err(e) => match classify(OP, e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn key_last_used(&self, key: &AccessKeyId) -> PortResult<Option<LastUsed>> {
        const OP: &str = "iam:GetAccessKeyLastUsed";
        self.pacer.wait().await;
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(key.as_str())
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let Some(used) = out.access_key_last_used() else {
            return Ok(None);
        };
        let known = |s: &str| (!s.is_empty() && s != "N/A").then(|| s.to_owned());
        Ok(used.last_used_date().and_then(to_utc).map(|at| LastUsed {
            at,
            service: known(used.service_name()),
            region: known(used.region()),
        }))
    }
}
