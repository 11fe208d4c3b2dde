//! Secrets Manager: secret metadata (ListSecrets, every page) for planning, and the version
//! reads and writes of a rotation. Values pass through as [`SecretValue`], which has no
//! printable form. Every call waits for the account's Secrets Manager pacer (writes are
//! limited to 50 per second).

use async_trait::async_trait;

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Pacer, classify, to_utc};
use crate::domain::model::{Secret, Tags};
use crate::ports::{
    PortError, PortResult, SecretDescription, SecretInventory, SecretValue, SecretVersions,
};

/// [`SecretInventory`] over Secrets Manager.
pub struct SecretsManagerInventory {
    client: aws_sdk_secretsmanager::Client,
    pacer: Arc<Pacer>,
}

impl SecretsManagerInventory {
    /// An adapter over `client` whose calls wait for `pacer` (the account's budget).
    pub fn new(client: aws_sdk_secretsmanager::Client, pacer: Arc<Pacer>) -> Self {
        Self { client, pacer }
    }

    /// The account's Secrets Manager adapter, paced by the account's pacer.
    pub fn of(aws: &super::Aws) -> Self {
        Self::new(
            aws.secretsmanager(),
            aws.pacer(super::Service::SecretsManager),
        )
    }
}

#[async_trait]
impl SecretInventory for SecretsManagerInventory {
    async fn secrets(&self) -> PortResult<Vec<Secret>> {
        let mut entries = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .list_secrets()
                .max_results(100)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| classify("secretsmanager:ListSecrets", e))?;
            token = page.next_token.clone().filter(|t| !t.is_empty());
            let empty = page.secret_list().is_empty();
            entries.extend(page.secret_list.unwrap_or_default());
            if token.is_none() || empty {
                break;
            }
        }
        let mut out = Vec::new();
        for entry in entries {
            let tags: Tags = entry
                .tags()
                .iter()
                .filter_map(|t| {
                    Some((
                        t.key()?.to_owned(),
                        t.value().unwrap_or_default().to_owned(),
                    ))
                })
                .collect();
            out.push(Secret {
                arn: entry.arn().unwrap_or_default().to_owned(),
                name: entry.name().unwrap_or_default().to_owned(),
                tags,
                rotation_enabled: entry.rotation_enabled().unwrap_or(false),
                last_rotated: entry.last_rotated_date().and_then(to_utc),
            });
        }
        Ok(out)
    }
}

#[async_trait]
impl SecretVersions for SecretsManagerInventory {
    async fn rotate_now(&self, secret: &str) -> PortResult<String> {
        const OP: &str = "secretsmanager:RotateSecret";
        self.pacer.wait().await;
        let out = self
            .client
            .rotate_secret()
            .secret_id(secret)
            .rotate_immediately(true)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        Ok(out.version_id().unwrap_or_default().to_owned())
    }

    async fn describe(&self, secret: &str) -> PortResult<Option<SecretDescription>> {
        self.pacer.wait().await;
        match self.client.describe_secret().secret_id(secret).send().await {
            Ok(out) => Ok(Some(SecretDescription {
                arn: out.arn().unwrap_or_default().to_owned(),
                name: out.name().unwrap_or_default().to_owned(),
                rotation_enabled: out.rotation_enabled().unwrap_or(false),
                tags: out
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        ))
                    })
                    .collect(),
                versions: out
                    .version_ids_to_stages()
                    .map(|m| m.iter().map(|(v, s)| (v.clone(), s.clone())).collect())
                    .unwrap_or_default(),
            })),
            Err(e) => match classify("secretsmanager:DescribeSecret", e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn stages(&self, secret: &str) -> PortResult<Option<BTreeMap<String, Vec<String>>>> {
        self.pacer.wait().await;
        match self.client.describe_secret().secret_id(secret).send().await {
            Ok(out) => Ok(Some(
                out.version_ids_to_stages()
                    .map(|m| {
                        m.iter()
                            .map(|(version, stages)| (version.clone(), stages.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            Err(e) => match classify("secretsmanager:DescribeSecret", e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn value(
        &self,
        secret: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> PortResult<Option<SecretValue>> {
        self.pacer.wait().await;
        match self
            .client
            .get_secret_value()
            .secret_id(secret)
            .set_version_id(version_id.map(str::to_owned))
            .set_version_stage(stage.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => Ok(out.secret_string.map(SecretValue::new)),
            Err(e) => match classify("secretsmanager:GetSecretValue", e) {
                PortError::NotFound { .. } => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn put_pending(&self, secret: &str, token: &str, value: &SecretValue) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .put_secret_value()
            .secret_id(secret)
            .client_request_token(token)
            .secret_string(value.expose())
            .version_stages("AWSPENDING")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("secretsmanager:PutSecretValue", e))
    }

    async fn move_stage(
        &self,
        secret: &str,
        stage: &str,
        to: Option<&str>,
        from: Option<&str>,
    ) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .update_secret_version_stage()
            .secret_id(secret)
            .version_stage(stage)
            .set_move_to_version_id(to.map(str::to_owned))
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("secretsmanager:UpdateSecretVersionStage", e))
    }
}
