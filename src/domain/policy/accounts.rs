//! `[accounts]`: the accounts keyrotor works in, the member role it assumes there, and the
//! role's external id (a shared secret that is never printed).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::source::{Field, PolicyError, Source};
use super::validate::{is_external_id, is_iam_path, is_role_name, is_secret_id};
use crate::domain::model::AccountId;

/// `[accounts]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountsPolicy {
    /// List the accounts of the AWS Organization and work in each.
    pub organization: bool,
    /// Explicit member accounts (empty: the caller's account only).
    pub ids: Vec<AccountId>,
    /// Role assumed in each member account.
    pub member_role_name: String,
    /// IAM path of that role (`/keyrotor/` in infra/member-role.yaml).
    pub member_role_path: String,
    /// The `sts:ExternalId` the member role's trust policy requires, written in the policy
    /// (for CLI use; never printed). None: not passed, or read from `external_id_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<ExternalId>,
    /// A Secrets Manager secret (name or ARN, in the caller's account) whose SecretString
    /// is the external id: keeps it out of the policy text, hence out of every function's
    /// environment. `KEYROTOR_EXTERNAL_ID_SECRET` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_secret: Option<String>,
    /// Accounts processed at once.
    pub concurrency: u32,
}

/// The member role's `sts:ExternalId`: a shared secret between the central account and
/// the member role's trust policy. It has no printable form: `Debug`, `Display` and
/// `Serialize` (hence `keyrotor policy check`, text and JSON) show `<redacted, N chars>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    /// STS's ExternalId pattern `[\w+=,.@:/-]{2,1224}`, or `None`.
    pub fn parse(value: &str) -> Option<ExternalId> {
        is_external_id(value).then(|| ExternalId(value.to_owned()))
    }

    /// The value, for the one call that must send it to AWS (sts:AssumeRole).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is shown instead of the value.
    pub fn redacted(&self) -> String {
        format!("<redacted, {} chars>", self.0.chars().count())
    }
}

impl fmt::Debug for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExternalId({})", self.redacted())
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ExternalId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Where the member role's external id comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalIdSource {
    /// No external id is passed.
    None,
    /// `[accounts] external_id`.
    Inline(ExternalId),
    /// A Secrets Manager secret; `from` names the setting that chose it, for messages
    /// (`[accounts] external_id_secret` or `KEYROTOR_EXTERNAL_ID_SECRET`).
    Secret { id: String, from: &'static str },
}

/// The environment variable that overrides `[accounts] external_id_secret`.
pub const EXTERNAL_ID_SECRET_ENV: &str = "KEYROTOR_EXTERNAL_ID_SECRET";

impl AccountsPolicy {
    /// Where the external id comes from: `env_secret` (the value of
    /// [`EXTERNAL_ID_SECRET_ENV`], blank counts as unset) wins over `external_id_secret`;
    /// either, together with an inline `external_id`, is an error naming both.
    pub fn external_id_source(&self, env_secret: Option<&str>) -> Result<ExternalIdSource, String> {
        let env_secret = env_secret.map(str::trim).filter(|s| !s.is_empty());
        let secret = match env_secret {
            Some(id) if !is_secret_id(id) => {
                return Err(format!(
                    "{EXTERNAL_ID_SECRET_ENV} = {id:?} is not a Secrets Manager secret name or ARN: 1 to 2048 letters, digits and /_+=.@:-"
                ));
            }
            Some(id) => Some((id.to_owned(), EXTERNAL_ID_SECRET_ENV)),
            None => self
                .external_id_secret
                .clone()
                .map(|id| (id, "[accounts] external_id_secret")),
        };
        match (secret, &self.external_id) {
            (Some((_, from)), Some(_)) => Err(format!(
                "{from} and [accounts] external_id are both set: keep the external id in the secret and remove [accounts] external_id from the policy"
            )),
            (Some((id, from)), None) => Ok(ExternalIdSource::Secret { id, from }),
            (None, Some(inline)) => Ok(ExternalIdSource::Inline(inline.clone())),
            (None, None) => Ok(ExternalIdSource::None),
        }
    }

    /// Whether keyrotor works in other accounts than the caller's.
    pub fn is_multi_account(&self) -> bool {
        self.organization || !self.ids.is_empty()
    }

    /// The member role's ARN in `account` (partition `aws` unless given).
    pub fn member_role_arn(&self, partition: &str, account: &AccountId) -> String {
        format!(
            "arn:{partition}:iam::{}:role{}{}",
            account.as_str(),
            self.member_role_path,
            self.member_role_name
        )
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    organization: Field<bool>,
    ids: Field<Vec<String>>,
    member_role_name: Field<String>,
    member_role_path: Field<String>,
    external_id: Field<String>,
    external_id_secret: Field<String>,
    concurrency: Field<i64>,
}

impl AccountsPolicy {
    /// Checks `[accounts]`. The external id is never quoted back, even when malformed.
    pub(super) fn decode(r: &RawAccounts, src: &Source<'_>) -> Result<AccountsPolicy, PolicyError> {
        let mut ids = Vec::new();
        if let Some(list) = &r.ids {
            for id in list.get_ref() {
                ids.push(AccountId::parse(id).map_err(|e| {
                    src.error(
                        list,
                        "accounts.ids",
                        format!("{e}: list 12-digit account ids"),
                    )
                })?);
            }
        }
        let member_role_name = match &r.member_role_name {
            None => "KeyRotorMember".to_owned(),
            Some(name) if is_role_name(name.get_ref()) => name.get_ref().clone(),
            Some(name) => {
                return Err(src.error(
                    name,
                    "accounts.member_role_name",
                    format!(
                        "{:?} is not an IAM role name: 1 to 64 letters, digits and +=,.@_-",
                        name.get_ref()
                    ),
                ));
            }
        };
        let member_role_path = match &r.member_role_path {
            None => "/keyrotor/".to_owned(),
            Some(path) if is_iam_path(path.get_ref()) => path.get_ref().clone(),
            Some(path) => {
                return Err(src.error(
                path,
                "accounts.member_role_path",
                format!(
                    "{:?} is not an IAM path: it starts and ends with '/', e.g. \"/keyrotor/\" or \"/\"",
                    path.get_ref()
                ),
            ));
            }
        };
        let external_id = match &r.external_id {
        None => None,
        Some(id) => Some(ExternalId::parse(id.get_ref()).ok_or_else(|| {
            // Neither the message nor the quoted line shows the value: even a
            // malformed one may be a near miss of the shared secret.
            let mut err = src.error(
                id,
                "accounts.external_id",
                "must be 2 to 1224 letters, digits and +=,.@:/- (the ExternalId parameter of infra/member-role.yaml)",
            );
            err.source_line = "external_id = <redacted>".into();
            err
        })?),
    };
        let external_id_secret = match &r.external_id_secret {
            None => None,
            Some(id) if !is_secret_id(id.get_ref()) => {
                return Err(src.error(
                id,
                "accounts.external_id_secret",
                format!(
                    "{:?} is not a Secrets Manager secret name or ARN: 1 to 2048 letters, digits and /_+=.@:-",
                    id.get_ref()
                ),
            ));
            }
            Some(id) if external_id.is_some() => {
                return Err(src.error(
                id,
                "accounts.external_id_secret",
                "accounts.external_id and accounts.external_id_secret are both set: keep the external id in the secret and remove accounts.external_id",
            ));
            }
            Some(id) => Some(id.get_ref().clone()),
        };
        Ok(AccountsPolicy {
            organization: r.organization.as_ref().is_some_and(|b| *b.get_ref()),
            ids,
            member_role_name,
            member_role_path,
            external_id,
            external_id_secret,
            concurrency: src.number(
                &r.concurrency,
                "accounts.concurrency",
                4,
                1..=64,
                "accounts",
            )?,
        })
    }
}
