//! AWS Organizations and member accounts: the organization's accounts (ListAccounts,
//! every page, paced), and an [`Aws`] for a member account whose credentials come from
//! assuming the member role (infra/member-role.yaml) with the central account's
//! credentials. The assumed credentials are cached until five minutes before they expire,
//! so a run assumes each member role once, however many clients and calls it makes there.
//!
//! The role's `sts:ExternalId` comes from `[accounts] external_id` (CLI use) or, kept out
//! of the policy text and every function's environment, from a Secrets Manager secret
//! (`[accounts] external_id_secret`, overridden by `KEYROTOR_EXTERNAL_ID_SECRET`), read
//! when a member role is first assumed and then kept for [`EXTERNAL_ID_TTL`].

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};

use super::{Aws, Pacer, Service, classify};
use crate::domain::model::AccountId;
use crate::domain::policy::{AccountsPolicy, EXTERNAL_ID_SECRET_ENV, ExternalId, ExternalIdSource};
use crate::ports::{AccountDirectory, MemberAccount, PortError, PortResult, SecretVersions};

/// Assumed credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// An external id read from Secrets Manager is kept this long: one read per run (a Lambda
/// invocation lasts at most 15 minutes), and a changed secret is picked up by the next run
/// of a warm function.
pub const EXTERNAL_ID_TTL: Duration = Duration::from_secs(900);

/// External ids read from Secrets Manager, by endpoint, region and secret, with when they
/// were read. Behind an async mutex so that accounts entered at once read the secret once.
static EXTERNAL_IDS: LazyLock<tokio::sync::Mutex<HashMap<String, (Instant, ExternalId)>>> =
    LazyLock::new(Default::default);

/// The external id to pass when assuming member roles from `home`, per `accounts` and the
/// environment ([`EXTERNAL_ID_SECRET_ENV`]): inline, from its secret (read once per
/// [`EXTERNAL_ID_TTL`]), or none. Every failure names the setting, the secret and the fix;
/// no message ever contains the value.
pub async fn external_id(home: &Aws, accounts: &AccountsPolicy) -> PortResult<Option<ExternalId>> {
    const OP: &str = "secretsmanager:GetSecretValue";
    let env = std::env::var(EXTERNAL_ID_SECRET_ENV).ok();
    let source = accounts
        .external_id_source(env.as_deref())
        .map_err(|message| PortError::Other {
            operation: "reading the member role's external id".into(),
            message,
        })?;
    let (secret, from) = match source {
        ExternalIdSource::None => return Ok(None),
        ExternalIdSource::Inline(id) => return Ok(Some(id)),
        ExternalIdSource::Secret { id, from } => (id, from),
    };
    let key = format!(
        "{}|{}|{secret}",
        home.config.endpoint_url().unwrap_or_default(),
        home.region().unwrap_or_default()
    );
    let mut cache = EXTERNAL_IDS.lock().await;
    if let Some((at, id)) = cache.get(&key)
        && at.elapsed() < EXTERNAL_ID_TTL
    {
        return Ok(Some(id.clone()));
    }
    let setting = format!("{from} = {secret}");
    let fix = "its SecretString must be the ExternalId of infra/member-role.yaml";
    let value = super::secretsmanager::SecretsManagerInventory::of(home)
        .value(&secret, None, Some("AWSCURRENT"))
        .await
        .map_err(|e| match e {
            PortError::AccessDenied { operation, message } => PortError::AccessDenied {
                operation,
                message: format!(
                    "{message}; {setting}: the role keyrotor runs as may not read that secret: allow secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
                ),
            },
            PortError::Other { operation, message } => PortError::Other {
                operation,
                message: format!("{message} ({setting})"),
            },
            e => e,
        })?;
    let Some(value) = value else {
        return Err(PortError::NotFound {
            operation: OP.into(),
            what: format!(
                "{setting}: the secret does not exist in the caller's account and region, or has no string value; create it (aws secretsmanager create-secret --name {secret} --secret-string <external id>) or fix the setting; {fix}"
            ),
        });
    };
    let Some(id) = ExternalId::parse(value.expose().trim()) else {
        return Err(PortError::InvalidResponse {
            operation: OP.into(),
            message: format!(
                "{setting}: the secret's value is not an external id (2 to 1224 letters, digits and +=,.@:/-); {fix}, nothing else (no JSON, no quotes)"
            ),
        });
    };
    cache.insert(key, (Instant::now(), id.clone()));
    Ok(Some(id))
}

/// Sessions last an hour: the member role's MaxSessionDuration in infra/member-role.yaml.
const SESSION_SECONDS: i32 = 3600;

/// [`AccountDirectory`] over Organizations ListAccounts.
pub struct OrganizationAccounts {
    client: aws_sdk_organizations::Client,
    pacer: Arc<Pacer>,
}

impl OrganizationAccounts {
    /// The caller's organization, paced by the caller's Organizations pacer.
    pub fn of(aws: &Aws) -> Self {
        Self {
            client: aws.organizations(),
            pacer: aws.pacer(Service::Organizations),
        }
    }
}

#[async_trait]
impl AccountDirectory for OrganizationAccounts {
    async fn accounts(&self) -> PortResult<Vec<MemberAccount>> {
        const OP: &str = "organizations:ListAccounts";
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .list_accounts()
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| match classify(OP, e) {
                    PortError::Other { operation, message }
                        if message.contains("AWSOrganizationsNotInUse") =>
                    {
                        PortError::Other {
                            operation,
                            message: format!(
                                "{message}; the caller's account is not in an organization: set [accounts] organization = false, or list the accounts in [accounts] ids"
                            ),
                        }
                    }
                    e => e,
                })?;
            for account in page.accounts() {
                let id = account.id().unwrap_or_default();
                let id = AccountId::parse(id).map_err(|e| PortError::InvalidResponse {
                    operation: OP.into(),
                    message: e.to_string(),
                })?;
                out.push(MemberAccount {
                    id,
                    name: account.name().unwrap_or_default().to_owned(),
                    status: account
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                });
            }
            token = page
                .next_token()
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    async fn organization_id(&self) -> PortResult<Option<String>> {
        self.pacer.wait().await;
        let out = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| classify("organizations:DescribeOrganization", e))?;
        Ok(out
            .organization()
            .and_then(|o| o.id())
            .filter(|id| !id.is_empty())
            .map(str::to_owned))
    }
}

/// Credentials of the member role, from STS AssumeRole in the central account, cached until
/// [`RENEW_BEFORE`] their expiry.
#[derive(Debug)]
pub struct MemberRoleCredentials {
    sts: aws_sdk_sts::Client,
    pacer: Arc<Pacer>,
    role_arn: String,
    external_id: Option<ExternalId>,
    session_name: String,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl MemberRoleCredentials {
    pub fn new(central: &Aws, role_arn: String, external_id: Option<ExternalId>) -> Self {
        Self {
            sts: central.sts(),
            pacer: central.pacer(Service::Sts),
            role_arn,
            external_id,
            session_name: "keyrotor".into(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The cached credentials, or new ones when there are none or they expire soon.
    pub async fn get(&self) -> PortResult<Credentials> {
        const OP: &str = "sts:AssumeRole";
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expiry()
                .is_some_and(|at| at > SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(c.clone());
        }
        self.pacer.wait().await;
        let out = self
            .sts
            .assume_role()
            .role_arn(&self.role_arn)
            .role_session_name(&self.session_name)
            .set_external_id(self.external_id.as_ref().map(|id| id.expose().to_owned()))
            .duration_seconds(SESSION_SECONDS)
            .send()
            .await
            .map_err(|e| match classify(OP, e) {
                PortError::AccessDenied { operation, message } => PortError::AccessDenied {
                    operation,
                    message: format!(
                        "cannot assume {}: {message}; deploy infra/member-role.yaml to that account (a StackSet reaches every member) and check [accounts] member_role_name, member_role_path and the external id (external_id_secret or external_id)",
                        self.role_arn
                    ),
                },
                e => e,
            })?;
        let Some(c) = out.credentials() else {
            return Err(PortError::InvalidResponse {
                operation: OP.into(),
                message: format!("no credentials for {}", self.role_arn),
            });
        };
        let expiry = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(c.expiration().secs()).unwrap_or(0));
        let creds = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            Some(expiry),
            "keyrotor-member-role",
        );
        *cached = Some(creds.clone());
        Ok(creds)
    }
}

impl ProvideCredentials for MemberRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.get()
                .await
                .map_err(|e| CredentialsError::provider_error(e.to_string()))
        })
    }
}

/// An [`Aws`] working in `account` as the member role, with pacers of its own. The role is
/// assumed here, once, so a member account keyrotor cannot enter fails with a clear error
/// before any work starts there.
pub async fn member(
    central: &Aws,
    role_arn: String,
    external_id: Option<ExternalId>,
) -> PortResult<Aws> {
    let credentials = MemberRoleCredentials::new(central, role_arn, external_id);
    credentials.get().await?;
    let config = central
        .config
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    Ok(central.for_account(config))
}

/// The member role's [`Aws`] to work in `account` with, or `None` for the caller's own
/// account (`is_home`), worked in with the caller's `home` configuration itself.
pub async fn enter(
    home: &Aws,
    accounts: &AccountsPolicy,
    partition: &str,
    account: &AccountId,
    is_home: bool,
) -> PortResult<Option<Aws>> {
    if is_home {
        return Ok(None);
    }
    let role = accounts.member_role_arn(partition, account);
    let external_id = external_id(home, accounts).await?;
    member(home, role, external_id).await.map(Some)
}
