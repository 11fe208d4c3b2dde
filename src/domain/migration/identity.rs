//! The workload identity named by the tag `keyrotor:migrate-to`: parsing the tag (every
//! wildcard that would widen the trust is refused here) and the client-side configuration
//! that fits it. Whom it may be trusted by lives in `trust`.

use serde::Serialize;

/// Who will assume the new role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum WorkloadIdentity {
    /// An IAM role (e.g. the workload's instance or task role).
    AwsRole { arn: String },
    /// An AWS service principal, e.g. `ec2.amazonaws.com`.
    Service { principal: String },
    /// An OIDC provider and the token subject, e.g. GitHub Actions.
    Oidc { provider: String, subject: String },
    /// IAM Roles Anywhere: the trust anchor and the profile the client uses.
    RolesAnywhere {
        trust_anchor: String,
        profile: String,
    },
}

/// The accepted forms of `keyrotor:migrate-to`, for error messages.
pub const IDENTITY_FORMS: &str = "arn:aws:iam::<account>:role/<name> | <service>.amazonaws.com | oidc:<provider host>:<subject> | rolesanywhere:<trust anchor ARN>,<profile ARN>";

impl WorkloadIdentity {
    /// Parses the tag value; the error says what is wrong and which forms are accepted.
    pub fn parse(value: &str) -> Result<WorkloadIdentity, String> {
        let v = value.trim();
        let bad = |why: &str| {
            Err(format!(
                "keyrotor:migrate-to = {v:?}: {why}; accepted forms: {IDENTITY_FORMS}"
            ))
        };
        if let Some(rest) = v.strip_prefix("arn:aws:iam::") {
            let Some((account, resource)) = rest.split_once(':') else {
                return bad("not an IAM ARN");
            };
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return bad("the account in the ARN is not 12 digits");
            }
            let Some(name) = resource.strip_prefix("role/") else {
                return bad("only role ARNs can assume a role here");
            };
            if name.is_empty() || name.len() > 512 || !name.chars().all(name_char) {
                return bad("the role name is empty or has characters IAM does not allow");
            }
            return Ok(WorkloadIdentity::AwsRole { arn: v.to_owned() });
        }
        if let Some(rest) = v.strip_prefix("oidc:") {
            let Some((provider, subject)) = rest.split_once(':') else {
                return bad("expected oidc:<provider host>:<subject>");
            };
            if !provider.contains('.') || provider.contains('/') {
                return bad(
                    "the provider must be a host name such as token.actions.githubusercontent.com",
                );
            }
            if subject.is_empty() || subject == "*" {
                return bad(
                    "the subject must name the workload (a bare * would trust every token of the provider)",
                );
            }
            return Ok(WorkloadIdentity::Oidc {
                provider: provider.to_owned(),
                subject: subject.to_owned(),
            });
        }
        if let Some(rest) = v.strip_prefix("rolesanywhere:") {
            let Some((anchor, profile)) = rest.split_once(',') else {
                return bad("expected rolesanywhere:<trust anchor ARN>,<profile ARN>");
            };
            let (anchor, profile) = (anchor.trim(), profile.trim());
            if !anchor.starts_with("arn:aws:rolesanywhere:") || !anchor.contains(":trust-anchor/") {
                return bad("the first ARN is not a Roles Anywhere trust anchor");
            }
            if !profile.starts_with("arn:aws:rolesanywhere:") || !profile.contains(":profile/") {
                return bad("the second ARN is not a Roles Anywhere profile");
            }
            // The trust matches the anchor with ArnEquals, where * and ? are wildcards: one
            // would trust every trust anchor (present and future) it matches.
            if anchor.contains(['*', '?']) || profile.contains(['*', '?']) {
                return bad(
                    "an ARN holds a wildcard (* or ?); name one trust anchor and one profile",
                );
            }
            if anchor.split(':').nth(3).is_none_or(str::is_empty)
                || anchor
                    .split(':')
                    .nth(4)
                    .is_none_or(|a| a.len() != 12 || !a.chars().all(|c| c.is_ascii_digit()))
            {
                return bad("the trust anchor ARN needs its region and 12-digit account");
            }
            return Ok(WorkloadIdentity::RolesAnywhere {
                trust_anchor: anchor.to_owned(),
                profile: profile.to_owned(),
            });
        }
        let service = v.strip_prefix("service:").unwrap_or(v);
        if let Some(name) = service.strip_suffix(".amazonaws.com")
            && !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        {
            return Ok(WorkloadIdentity::Service {
                principal: service.to_owned(),
            });
        }
        bad("not a role ARN, a service principal, an OIDC subject or a Roles Anywhere trust anchor")
    }

    /// The account the identity lives in, when it is not keyrotor's own by construction:
    /// the role's account, or the Roles Anywhere trust anchor's. A service principal and an
    /// OIDC provider are trusted through keyrotor's own account.
    pub fn account(&self) -> Option<&str> {
        match self {
            WorkloadIdentity::AwsRole { arn } => arn.split(':').nth(4),
            WorkloadIdentity::RolesAnywhere { trust_anchor, .. } => trust_anchor.split(':').nth(4),
            WorkloadIdentity::Service { .. } | WorkloadIdentity::Oidc { .. } => None,
        }
    }

    /// The client-side change: an AWS config profile that fits the identity.
    pub fn client_profile(&self, profile: &str, role_arn: &str, session_seconds: u32) -> String {
        let head = format!(
            "[profile {profile}]\nrole_arn = {role_arn}\nduration_seconds = {session_seconds}\n"
        );
        match self {
            WorkloadIdentity::AwsRole { .. } | WorkloadIdentity::Service { .. } => format!(
                "{head}# where the workload runs: Ec2InstanceMetadata, EcsContainer or Environment\ncredential_source = Ec2InstanceMetadata\n"
            ),
            WorkloadIdentity::Oidc { .. } => format!(
                "{head}# the path where the workload's OIDC token is written\nweb_identity_token_file = /var/run/secrets/oidc/token\n"
            ),
            WorkloadIdentity::RolesAnywhere {
                trust_anchor,
                profile: ra_profile,
            } => format!(
                "[profile {profile}]\ncredential_process = aws_signing_helper credential-process --certificate /path/to/cert.pem --private-key /path/to/key.pem --trust-anchor-arn {trust_anchor} --profile-arn {ra_profile} --role-arn {role_arn}\n"
            ),
        }
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c)
}
