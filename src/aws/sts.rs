//! STS: who keyrotor is running as, and whether a new access key works.

use async_trait::async_trait;

use super::classify;
use crate::domain::model::{AccessKeyId, AccountId};
use crate::ports::{Caller, Identity, KeyTester, PortError, PortResult, SecretValue};

/// [`Identity`] over STS GetCallerIdentity.
pub struct StsIdentity {
    client: aws_sdk_sts::Client,
}

impl StsIdentity {
    pub fn new(client: aws_sdk_sts::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Identity for StsIdentity {
    async fn caller(&self) -> PortResult<Caller> {
        const OP: &str = "sts:GetCallerIdentity";
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let account = out.account().unwrap_or_default();
        let account = AccountId::parse(account).map_err(|e| PortError::InvalidResponse {
            operation: OP.into(),
            message: e.to_string(),
        })?;
        Ok(Caller {
            account,
            arn: out.arn().unwrap_or("unknown").to_owned(),
        })
    }
}

/// [`Identity`] already known (read once when a function starts): no call.
pub struct KnownIdentity(pub Caller);

#[async_trait]
impl Identity for KnownIdentity {
    async fn caller(&self) -> PortResult<Caller> {
        Ok(self.0.clone())
    }
}

/// [`KeyTester`]: STS GetCallerIdentity signed with the key under test, through the same
/// endpoint and region as every other call, with no retries (the caller decides).
pub struct StsKeyTester {
    config: aws_config::SdkConfig,
}

impl StsKeyTester {
    pub fn new(config: aws_config::SdkConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl KeyTester for StsKeyTester {
    async fn works(&self, key: &AccessKeyId, secret: &SecretValue) -> PortResult<bool> {
        const OP: &str = "sts:GetCallerIdentity";
        let config = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(aws_credential_types::Credentials::new(
                key.as_str(),
                secret.expose(),
                None,
                None,
                "keyrotor-key-test",
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
            .build();
        match aws_sdk_sts::Client::from_conf(config)
            .get_caller_identity()
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => match classify(OP, e) {
                PortError::InvalidCredentials { .. } | PortError::AccessDenied { .. } => Ok(false),
                e => Err(e),
            },
        }
    }
}
