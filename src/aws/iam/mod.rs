//! IAM: the credential report, access keys, user tags and key last-use, the two key
//! changes keyrotor makes (status, deletion), and what a migration to a role reads and
//! changes (the user's permissions, the role, the guard's managed policy). Every call is
//! paced client-side: IAM's control plane allows few calls per second and publishes no
//! exact rate.
//!
//! One client, three ports, one file each: `inventory` reads (report, keys, tags, last
//! use), `admin` changes keys, `roles` reads and changes what a migration to a role
//! needs.

mod admin;
mod inventory;
mod roles;

use std::sync::Arc;

use crate::aws::Pacer;

/// [`IamInventory`](crate::ports::IamInventory), [`IamKeyAdmin`](crate::ports::IamKeyAdmin)
/// and [`IamRoles`](crate::ports::IamRoles) over the IAM API.
pub struct IamClient {
    client: aws_sdk_iam::Client,
    pacer: Arc<Pacer>,
}

impl IamClient {
    /// An adapter over `client` whose calls wait for `pacer` (the account's IAM budget).
    pub fn new(client: aws_sdk_iam::Client, pacer: Arc<Pacer>) -> Self {
        Self { client, pacer }
    }

    /// The account's IAM adapter, paced by the account's IAM pacer.
    pub fn of(aws: &super::Aws) -> Self {
        Self::new(aws.iam(), aws.pacer(super::Service::Iam))
    }
}
