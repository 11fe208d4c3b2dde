//! STS: who keyrotor is running as.

use async_trait::async_trait;

use super::classify;
use crate::domain::model::AccountId;
use crate::ports::{Caller, Identity, PortError, PortResult};

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
