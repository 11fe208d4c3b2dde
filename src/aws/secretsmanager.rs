//! Secrets Manager: secret metadata (ListSecrets, every page). Values are never read here.

use async_trait::async_trait;

use super::{classify, to_utc};
use crate::domain::model::{Secret, Tags};
use crate::ports::{PortResult, SecretInventory};

/// [`SecretInventory`] over Secrets Manager.
pub struct SecretsManagerInventory {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerInventory {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretInventory for SecretsManagerInventory {
    async fn secrets(&self) -> PortResult<Vec<Secret>> {
        let mut pages = self
            .client
            .list_secrets()
            .max_results(100)
            .into_paginator()
            .send();
        let mut entries = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("secretsmanager:ListSecrets", e))?;
            entries.extend(page.secret_list.unwrap_or_default());
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
