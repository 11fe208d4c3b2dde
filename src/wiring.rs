//! The one place that builds adapters and hands each job its ports: the CLI and the Lambda
//! entry points both get a job's port bundle from a [`Wiring`], so a port added to a job is
//! wired once, and every entry point runs the job over the same adapters.
//!
//! A wiring has two halves. The *home* half is keyrotor's own account: its state and audit
//! tables, its notification channels, the caller's identity and the organization listing;
//! it is built once (per process, or per Lambda container) and shared. The *work* half is
//! the account whose credentials are managed: the caller's own, or a member account entered
//! through its role ([`Wiring::member`]); it holds the IAM, API Gateway, Secrets Manager,
//! ACM and STS adapters of that account. Safety invariant 4 (audit first) depends on every
//! account's work being audited in the home table, whichever account it touches: so the
//! audit store is in the home half only, and a member wiring cannot have another.

use std::sync::Arc;

use async_trait::async_trait;
use tracing::Instrument;

use crate::aws::Aws;
use crate::aws::acm::AcmInventory;
use crate::aws::apigateway::ApiGatewayClient;
use crate::aws::cloudtrail::CloudTrailActivity;
use crate::aws::dynamodb::{DynamoAuditStore, DynamoStateStore};
use crate::aws::iam::IamClient;
use crate::aws::organizations::{self, OrganizationAccounts};
use crate::aws::secretsmanager::SecretsManagerInventory;
use crate::aws::sts::{KnownIdentity, StsIdentity, StsKeyTester};
use crate::domain::policy::{AccountsPolicy, Policy};
use crate::ports::{
    AccountDirectory, Caller, Identity, MemberAccount, Notifier, PortError, PortResult,
};
use crate::steps::StepError;
use crate::steps::accounts::{self, AccountRun};
use crate::steps::api_keys::ApiKeyPorts;
use crate::steps::certs::SweepPorts;
use crate::steps::discover::DiscoveryPorts;
use crate::steps::iam_keys::IamKeyPorts;
use crate::steps::migration::MigrationPorts;
use crate::steps::respond::RespondPorts;
use crate::steps::secret_rotation::HookPorts;

/// The adapters of keyrotor's own account, shared by every account a run works in.
struct Home {
    aws: Aws,
    /// Who keyrotor runs as.
    identity: Box<dyn Identity>,
    state: DynamoStateStore,
    audit: DynamoAuditStore,
    notifier: Box<dyn Notifier>,
    /// Listed only when the policy says `[accounts] organization = true`.
    organization: Option<OrganizationAccounts>,
    accounts: AccountsPolicy,
}

/// The adapters of the account whose credentials are managed.
struct Work {
    aws: Aws,
    /// A member account's identity; `None`: the home account's.
    identity: Option<StsIdentity>,
    iam: IamClient,
    gateway: ApiGatewayClient,
    secrets: SecretsManagerInventory,
    certs: AcmInventory,
    tester: StsKeyTester,
    /// CloudTrail's event history (a leaked key's investigation).
    activity: CloudTrailActivity,
}

impl Work {
    fn of(aws: &Aws, identity: Option<StsIdentity>) -> Work {
        Work {
            identity,
            iam: IamClient::of(aws),
            gateway: ApiGatewayClient::of(aws),
            secrets: SecretsManagerInventory::of(aws),
            certs: AcmInventory::new(aws.clone()),
            tester: StsKeyTester::new(aws.config.clone()),
            activity: CloudTrailActivity::new(aws.clone()),
            aws: aws.clone(),
        }
    }
}

/// Every adapter a job needs, built once; one method per job returns its ports.
pub struct Wiring {
    home: Arc<Home>,
    work: Work,
}

impl Wiring {
    /// Works in the caller's own account (`aws`), with `policy`'s tables and channels.
    pub fn new(aws: &Aws, policy: &Policy) -> Wiring {
        Wiring::knowing(aws, policy, None)
    }

    /// [`Wiring::new`], with the caller's identity when it is already known (a Lambda
    /// reads it once at start-up): no GetCallerIdentity per invocation.
    pub fn knowing(aws: &Aws, policy: &Policy, caller: Option<Caller>) -> Wiring {
        let identity: Box<dyn Identity> = match caller {
            Some(c) => Box::new(KnownIdentity(c)),
            None => Box::new(StsIdentity::new(aws.sts())),
        };
        let home = Home {
            identity,
            state: DynamoStateStore::new(aws.dynamodb(), policy.audit.state_table.clone()),
            audit: DynamoAuditStore::new(aws.dynamodb(), policy.audit.table.clone()),
            notifier: crate::aws::sns::notifier_for(aws, &policy.notifications),
            organization: policy
                .accounts
                .organization
                .then(|| OrganizationAccounts::of(aws)),
            accounts: policy.accounts.clone(),
            aws: aws.clone(),
        };
        Wiring {
            work: Work::of(aws, None),
            home: Arc::new(home),
        }
    }

    /// The same home (tables, channels, organization), working in a member account
    /// entered as `member` (its role's configuration).
    pub fn member(&self, member: &Aws) -> Wiring {
        Wiring {
            home: Arc::clone(&self.home),
            work: Work::of(member, Some(StsIdentity::new(member.sts()))),
        }
    }

    /// The configuration of the account worked in.
    pub fn aws(&self) -> &Aws {
        &self.work.aws
    }

    /// The configuration of keyrotor's own account.
    pub fn home_aws(&self) -> &Aws {
        &self.home.aws
    }

    /// Who keyrotor is in the account worked in.
    pub fn identity(&self) -> &dyn Identity {
        match &self.work.identity {
            Some(member) => member,
            None => &*self.home.identity,
        }
    }

    /// Who keyrotor runs as in its own account.
    pub fn home_identity(&self) -> &dyn Identity {
        &*self.home.identity
    }

    pub fn audit(&self) -> &DynamoAuditStore {
        &self.home.audit
    }

    pub fn state(&self) -> &DynamoStateStore {
        &self.home.state
    }

    pub fn notifier(&self) -> &dyn Notifier {
        &*self.home.notifier
    }

    pub fn secrets(&self) -> &SecretsManagerInventory {
        &self.work.secrets
    }

    pub fn certs(&self) -> &AcmInventory {
        &self.work.certs
    }

    /// The organization, when the policy lists it.
    pub fn directory(&self) -> Option<&dyn AccountDirectory> {
        self.home
            .organization
            .as_ref()
            .map(|o| o as &dyn AccountDirectory)
    }

    /// The read-only ports of discovery (plan, report).
    pub fn discovery(&self) -> DiscoveryPorts<'_> {
        DiscoveryPorts {
            iam: &self.work.iam,
            api_keys: &self.work.gateway,
            certs: &self.work.certs,
            secrets: &self.work.secrets,
        }
    }

    /// The IAM key sweep and reactivation.
    pub fn iam_keys(&self) -> IamKeyPorts<'_> {
        IamKeyPorts {
            identity: self.identity(),
            iam: &self.work.iam,
            secrets: &self.work.secrets,
            admin: &self.work.iam,
            state: self.state(),
            notifier: self.notifier(),
            audit: self.audit(),
        }
    }

    /// API key rotation.
    pub fn api_keys(&self) -> ApiKeyPorts<'_> {
        ApiKeyPorts {
            identity: self.identity(),
            keys: &self.work.gateway,
            secret_list: &self.work.secrets,
            admin: &self.work.gateway,
            secrets: &self.work.secrets,
            state: self.state(),
            audit: self.audit(),
            notifier: self.notifier(),
        }
    }

    /// Migrations; the organization (listed from keyrotor's own account) is there only
    /// when a role in another of its accounts may be trusted.
    pub fn migration(&self) -> MigrationPorts<'_> {
        MigrationPorts {
            identity: self.identity(),
            iam: &self.work.iam,
            keys: &self.work.iam,
            roles: &self.work.iam,
            state: self.state(),
            notifier: self.notifier(),
            audit: self.audit(),
            directory: self.directory(),
        }
    }

    /// The certificate sweep.
    pub fn cert_sweep(&self) -> SweepPorts<'_> {
        SweepPorts {
            identity: self.identity(),
            certs: &self.work.certs,
            state: self.state(),
            notifier: self.notifier(),
            audit: self.audit(),
        }
    }

    /// The Secrets Manager rotation protocol.
    pub fn secret_rotation(&self) -> HookPorts<'_> {
        HookPorts {
            identity: self.identity(),
            secrets: &self.work.secrets,
            iam: &self.work.iam,
            iam_admin: &self.work.iam,
            tester: &self.work.tester,
            api_keys: &self.work.gateway,
            api_admin: &self.work.gateway,
            state: self.state(),
            audit: self.audit(),
            notifier: self.notifier(),
        }
    }

    /// The response to a leaked key: the rotation protocol's ports (the replacement),
    /// IAM's inline policies (session revocation) and CloudTrail (the investigation).
    pub fn respond(&self) -> RespondPorts<'_> {
        RespondPorts {
            hook: self.secret_rotation(),
            roles: &self.work.iam,
            activity: &self.work.activity,
        }
    }

    /// Where [`accounts::targets`] lists the organization's accounts: nowhere unless the
    /// policy says `[accounts] organization = true`.
    pub fn listing(&self) -> &dyn AccountDirectory {
        self.directory().unwrap_or(&Unlisted)
    }

    /// The accounts `[accounts]` covers ([`accounts::targets`]) and the caller's
    /// partition, where the member roles are.
    pub async fn targets(&self) -> Result<(Vec<accounts::Target>, String), StepError> {
        accounts::resolve(&self.home.accounts, self.home_identity(), self.listing()).await
    }

    /// The one per-account fan-out of the CLI and the Lambdas: runs `work` with the wiring
    /// of every account of `[accounts]`, at most `concurrency` at once; the caller's own
    /// account with this wiring, the others as the member role. An account that cannot be
    /// entered or whose work fails is reported as failed; the others go on.
    pub async fn in_each_account<T, E, F>(&self, work: F) -> Result<Vec<AccountRun<T, E>>, E>
    where
        E: From<StepError> + From<PortError>,
        F: AsyncFn(&Wiring) -> Result<T, E>,
    {
        let (targets, partition) = self.targets().await?;
        let home = &self.home;
        let (work, partition) = (&work, &partition);
        Ok(
            accounts::across(&targets, home.accounts.concurrency, |target| {
                let span = tracing::info_span!("account", account = %target.account.as_str());
                async move {
                    let member = organizations::enter(
                        &home.aws,
                        &home.accounts,
                        partition,
                        &target.account,
                        target.home,
                    )
                    .await?;
                    match member {
                        Some(aws) => work(&self.member(&aws)).await,
                        None => work(self).await,
                    }
                }
                .instrument(span)
            })
            .await,
        )
    }
}

/// No organization is listed: `[accounts] organization` is off, so
/// [`accounts::targets`] never asks.
struct Unlisted;

#[async_trait]
impl AccountDirectory for Unlisted {
    async fn accounts(&self) -> PortResult<Vec<MemberAccount>> {
        Ok(Vec::new())
    }
}

// The ports are trait objects over the adapters above; these keep the compiler checking
// that a wiring can be shared by concurrent invocations of a Lambda container.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Wiring>();
};
