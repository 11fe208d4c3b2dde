//! Whom a migrated role may trust ([`TrustScope`]): the trust policy built for each kind of
//! workload identity, bounded to the accounts it may come from, and the allow-lists of
//! `[migration]` that decide what needs `--allow-external`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::WorkloadIdentity;
use crate::domain::policy::Policy;

impl WorkloadIdentity {
    /// The role's trust policy for this identity, bounded to the accounts it may come from.
    ///
    /// - An IAM role: `aws:PrincipalAccount` is pinned to the role's account, and when that
    ///   is another account of the organization whose id is known, `aws:PrincipalOrgID` too.
    ///   The ARN principal already names the account, so the account pin only keeps the
    ///   statement bounded should the principal ever be widened by hand; the organization id
    ///   adds what the ARN cannot say: the account must still belong to the organization
    ///   when the role is assumed (an account that leaves it loses the role). The
    ///   organization condition is never put on an account outside the organization
    ///   (`--allow-external`): it could never be met there. The caller's own account needs
    ///   none: the pin to it is tighter than the organization.
    /// - A service principal: `aws:SourceAccount` = keyrotor's account, so the service can
    ///   assume the role only on behalf of this account's resources (confused deputy). A
    ///   service that does not send the key cannot assume the role: the migration then
    ///   never reaches `adopted` and nothing is retired.
    /// - OIDC: the provider of this account, the subject and the audience.
    /// - Roles Anywhere: the trust anchor (`aws:SourceArn`).
    pub fn trust_policy(&self, scope: &TrustScope) -> Value {
        let statement = match self {
            WorkloadIdentity::AwsRole { arn } => {
                let account = self.account().unwrap_or_default();
                let mut bound = serde_json::Map::new();
                bound.insert("aws:PrincipalAccount".into(), json!(account));
                if account != scope.home
                    && let Some(org) = scope.organization_id_of(account)
                {
                    bound.insert("aws:PrincipalOrgID".into(), json!(org));
                }
                json!({
                    "Effect": "Allow",
                    "Principal": {"AWS": arn},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": bound}
                })
            }
            WorkloadIdentity::Service { principal } => json!({
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": scope.home}}
            }),
            WorkloadIdentity::Oidc { provider, subject } => json!({
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:{}:iam::{}:oidc-provider/{provider}", scope.partition, scope.home)},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    format!("{provider}:sub"): subject,
                    format!("{provider}:aud"): "sts.amazonaws.com"
                }}
            }),
            WorkloadIdentity::RolesAnywhere { trust_anchor, .. } => json!({
                "Effect": "Allow",
                "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"ArnEquals": {"aws:SourceArn": trust_anchor}}
            }),
        };
        json!({"Version": "2012-10-17", "Statement": [statement]})
    }

    /// Why this identity is outside what keyrotor trusts without being told
    /// (`--allow-external`): an account that is neither keyrotor's, nor the organization's,
    /// nor in `[migration] allowed_accounts`; an OIDC subject no entry of
    /// `[migration] allowed_oidc_subjects` matches. `None` when it is trusted.
    pub fn outside(&self, scope: &TrustScope, policy: &Policy) -> Option<String> {
        let m = &policy.migration;
        match self {
            WorkloadIdentity::Oidc { provider, subject } => {
                (!m.allowed_oidc_subjects.iter().any(|p| oidc_subject_matches(p, subject))).then(|| {
                    format!(
                        "the OIDC subject {subject:?} of {provider} matches no entry of [migration] allowed_oidc_subjects ({}); add it (exact, or a prefix ending in *) if that workload is yours",
                        if m.allowed_oidc_subjects.is_empty() {
                            "empty: no OIDC subject is trusted".to_owned()
                        } else {
                            m.allowed_oidc_subjects.join(", ")
                        }
                    )
                })
            }
            WorkloadIdentity::AwsRole { .. } | WorkloadIdentity::RolesAnywhere { .. } => {
                let account = self.account().unwrap_or_default();
                let allowed = account == scope.home
                    || scope.in_organization(account)
                    || m.allowed_accounts.iter().any(|a| a.as_str() == account);
                (!allowed).then(|| {
                    let what = match self {
                        WorkloadIdentity::AwsRole { arn } => format!("the role {arn}"),
                        _ => "the Roles Anywhere trust anchor".to_owned(),
                    };
                    let trusted = if scope.organization_accounts.is_some() {
                        "the organization".to_owned()
                    } else {
                        format!("keyrotor's account {}", scope.home)
                    };
                    format!(
                        "{what} is in account {account}, outside {trusted} and [migration] allowed_accounts: whoever controls that account would get the user's permissions; add the account to [migration] allowed_accounts if it is trusted"
                    )
                })
            }
            WorkloadIdentity::Service { .. } => None,
        }
    }
}

/// Whether an entry of `[migration] allowed_oidc_subjects` admits `subject`: an entry ending
/// in `*` admits every subject that starts with the text before it (`repo:acme/*`), any
/// other entry only the subject spelled exactly so.
pub fn oidc_subject_matches(entry: &str, subject: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => subject.starts_with(prefix),
        None => subject == entry,
    }
}

/// The organization as far as a run knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustScope {
    /// The caller's partition (`aws`, `aws-cn`, `aws-us-gov`).
    pub partition: String,
    /// keyrotor's account: the user's and the role's.
    pub home: String,
    /// The organization's accounts, listed once per run when `[accounts] organization =
    /// true`; `None` otherwise.
    pub organization_accounts: Option<BTreeSet<String>>,
    /// The organization's id (`o-…`), when it could be read.
    pub organization_id: Option<String>,
}

impl TrustScope {
    /// A run outside any organization (or one that does not use it).
    pub fn account(partition: &str, home: &str) -> TrustScope {
        TrustScope {
            partition: partition.to_owned(),
            home: home.to_owned(),
            organization_accounts: None,
            organization_id: None,
        }
    }

    /// Whether `account` is one of the organization's (keyrotor's own included).
    pub fn in_organization(&self, account: &str) -> bool {
        self.organization_accounts
            .as_ref()
            .is_some_and(|a| a.contains(account) || account == self.home)
    }

    /// The organization's id, when `account` belongs to it and the id is known.
    fn organization_id_of(&self, account: &str) -> Option<&str> {
        self.organization_id
            .as_deref()
            .filter(|_| self.in_organization(account))
    }
}
