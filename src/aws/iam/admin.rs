//! [`IamKeyAdmin`] over IAM: the only key changes keyrotor makes (create, status, delete).

use async_trait::async_trait;
use aws_sdk_iam::types::StatusType;

use super::IamClient;
use crate::aws::classify;
use crate::domain::model::AccessKeyId;
use crate::ports::{IamKeyAdmin, PortError, PortResult, SecretValue};

#[async_trait]
impl IamKeyAdmin for IamClient {
    async fn create_key(&self, user: &str) -> PortResult<(AccessKeyId, SecretValue)> {
        const OP: &str = "iam:CreateAccessKey";
        self.pacer.wait().await;
        let out = self
            .client
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| classify(OP, e))?;
        let key = out.access_key().ok_or_else(|| PortError::InvalidResponse {
            operation: OP.into(),
            message: "no access key in the response".into(),
        })?;
        let id =
            AccessKeyId::parse(key.access_key_id()).map_err(|e| PortError::InvalidResponse {
                operation: OP.into(),
                message: e.to_string(),
            })?;
        Ok((id, SecretValue::new(key.secret_access_key().to_owned())))
    }

    async fn set_key_active(&self, user: &str, key: &AccessKeyId, active: bool) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .status(if active {
                StatusType::Active
            } else {
                StatusType::Inactive
            })
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:UpdateAccessKey", e))
    }

    async fn delete_key(&self, user: &str, key: &AccessKeyId) -> PortResult<()> {
        self.pacer.wait().await;
        self.client
            .delete_access_key()
            .user_name(user)
            .access_key_id(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("iam:DeleteAccessKey", e))
    }
}
