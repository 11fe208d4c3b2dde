//! How the CLI builds the adapters each step needs: the account a command works in
//! ([`Scope`]) and the port bundles built from it.

use crate::aws::Aws;
use crate::aws::acm::AcmInventory;
use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::dynamodb::{DynamoAuditStore, DynamoStateStore};
use crate::aws::iam::IamClient;
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sts::StsIdentity;
use crate::domain::policy::Policy;
use crate::steps::{self, discover::DiscoveryPorts};

use super::CliError;

/// Where a command works: `work` is the account whose credentials keyrotor manages (the
/// caller's, or a member account entered through its role); `home` holds keyrotor's own
/// tables and notification channels (the caller's account), and `audit` is its audit table.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub(super) work: &'a Aws,
    pub(super) home: &'a Aws,
    pub(super) audit: &'a DynamoAuditStore,
}

impl<'a> Scope<'a> {
    /// The caller's own account.
    pub(super) fn home(aws: &'a Aws, audit: &'a DynamoAuditStore) -> Scope<'a> {
        Scope {
            work: aws,
            home: aws,
            audit,
        }
    }

    pub(super) fn state(&self, policy: &Policy) -> DynamoStateStore {
        DynamoStateStore::new(self.home.dynamodb(), policy.audit.state_table.clone())
    }

    pub(super) fn notifier(&self, policy: &Policy) -> Box<dyn crate::ports::Notifier> {
        crate::aws::sns::notifier_for(self.home, &policy.notifications)
    }
}

/// Runs `f` with the ports of a migration.
pub(super) async fn with_migration_ports<F, T>(
    scope: Scope<'_>,
    policy: &Policy,
    f: F,
) -> Result<T, CliError>
where
    F: AsyncFnOnce(&steps::migration::MigrationPorts<'_>) -> Result<T, CliError>,
{
    let iam = IamClient::of(scope.work);
    let identity = StsIdentity::new(scope.work.sts());
    let state = scope.state(policy);
    let notifier = scope.notifier(policy);
    // The organization is listed from keyrotor's own account, and only when a role in
    // another account is to be trusted.
    let organization = crate::aws::organizations::OrganizationAccounts::of(scope.home);
    let ports = steps::migration::MigrationPorts {
        identity: &identity,
        iam: &iam,
        keys: &iam,
        roles: &iam,
        state: &state,
        notifier: &*notifier,
        audit: scope.audit,
        directory: policy
            .accounts
            .organization
            .then_some(&organization as &dyn crate::ports::AccountDirectory),
    };
    f(&ports).await
}

/// The read-only adapters discovery uses.
pub(super) struct Readers {
    iam: IamClient,
    api_keys: ApiGatewayClient,
    certs: AcmInventory,
    secrets: SecretsManagerInventory,
}

impl Readers {
    pub(super) fn new(aws: &Aws) -> Readers {
        Readers {
            iam: IamClient::of(aws),
            api_keys: ApiGatewayClient::of(aws),
            certs: AcmInventory::new(aws.clone()),
            secrets: SecretsManagerInventory::of(aws),
        }
    }

    pub(super) fn ports(&self) -> DiscoveryPorts<'_> {
        DiscoveryPorts {
            iam: &self.iam,
            api_keys: &self.api_keys,
            certs: &self.certs,
            secrets: &self.secrets,
        }
    }
}

/// Runs `f` with the ports of API key rotation.
pub(super) async fn with_api_key_ports<F, T>(
    scope: Scope<'_>,
    policy: &Policy,
    f: F,
) -> Result<T, CliError>
where
    F: AsyncFnOnce(&steps::api_keys::ApiKeyPorts<'_>) -> Result<T, CliError>,
{
    let gateway = ApiGatewayClient::of(scope.work);
    let secrets = SecretsManagerInventory::of(scope.work);
    let identity = StsIdentity::new(scope.work.sts());
    let state = scope.state(policy);
    let notifier = scope.notifier(policy);
    let ports = steps::api_keys::ApiKeyPorts {
        identity: &identity,
        keys: &gateway,
        secret_list: &secrets,
        admin: &gateway,
        secrets: &secrets,
        state: &state,
        audit: scope.audit,
        notifier: &*notifier,
    };
    f(&ports).await
}
