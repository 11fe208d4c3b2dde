//! Who keyrotor runs as (STS) and the accounts of its AWS Organization.

use async_trait::async_trait;

use super::PortResult;
use crate::domain::model::AccountId;

/// Who keyrotor is running as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: AccountId,
    pub arn: String,
}

impl Caller {
    /// The caller's partition (`aws`, `aws-cn`, `aws-us-gov`), from its ARN.
    pub fn partition(&self) -> &str {
        self.arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws")
    }
}

/// An account of an AWS Organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAccount {
    pub id: AccountId,
    pub name: String,
    /// `ACTIVE`, `SUSPENDED`, `PENDING_CLOSURE`: only active accounts are worked in.
    pub status: String,
}

/// The accounts of the caller's AWS Organization.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// Every account of the organization, every page, in any status.
    async fn accounts(&self) -> PortResult<Vec<MemberAccount>>;
    /// The organization's id (`o-…`, DescribeOrganization); `None` when the directory
    /// cannot tell.
    async fn organization_id(&self) -> PortResult<Option<String>> {
        Ok(None)
    }
}

#[async_trait]
pub trait Identity: Send + Sync {
    /// STS GetCallerIdentity.
    async fn caller(&self) -> PortResult<Caller>;
}
