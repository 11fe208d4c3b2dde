//! `[pacing]`: client-side call rates per AWS service, so keyrotor stays under the
//! account's shared quotas.

use serde::{Deserialize, Serialize};

use super::source::{Field, PolicyError, Source};

/// Client-side pacing of one service: `per_second` calls started per second, after at most
/// `burst` started back to back. The default burst is 1: calls evenly spaced, which leaves
/// AWS's own burst capacity as headroom for jitter, retries and other callers in the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// `[pacing]`: per service, for each account (and, for ACM, each region). The defaults are
/// the published quotas (IAM publishes none: 10/s is the rate AWS support quotes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PacingPolicy {
    /// IAM: shared by every caller in the account, unpublished.
    pub iam: Rate,
    /// API Gateway management calls: 10/s per account, CreateApiKey 5/s; the stricter is kept.
    pub apigateway: Rate,
    /// Secrets Manager writes: 50/s (reads allow far more).
    pub secretsmanager: Rate,
    /// ACM DescribeCertificate / ListTagsForCertificate: 10/s per region.
    pub acm: Rate,
    /// STS AssumeRole: 600/s per account and region.
    pub sts: Rate,
    /// Organizations: unpublished; ListAccounts is paced like IAM.
    pub organizations: Rate,
}

impl PacingPolicy {
    pub const DEFAULT: PacingPolicy = PacingPolicy {
        iam: Rate {
            per_second: 10,
            burst: 1,
        },
        apigateway: Rate {
            per_second: 5,
            burst: 1,
        },
        secretsmanager: Rate {
            per_second: 50,
            burst: 1,
        },
        acm: Rate {
            per_second: 10,
            burst: 1,
        },
        sts: Rate {
            per_second: 600,
            burst: 1,
        },
        organizations: Rate {
            per_second: 10,
            burst: 1,
        },
    };
}

impl Default for PacingPolicy {
    fn default() -> Self {
        PacingPolicy::DEFAULT
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPacing {
    iam: Field<RawRate>,
    apigateway: Field<RawRate>,
    secretsmanager: Field<RawRate>,
    acm: Field<RawRate>,
    sts: Field<RawRate>,
    organizations: Field<RawRate>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRate {
    per_second: Field<i64>,
    burst: Field<i64>,
}

impl PacingPolicy {
    /// Checks `[pacing]`; a service not listed keeps its published quota.
    pub(super) fn decode(r: &RawPacing, src: &Source<'_>) -> Result<PacingPolicy, PolicyError> {
        let d = PacingPolicy::DEFAULT;
        Ok(PacingPolicy {
            iam: rate(src, &r.iam, "iam", d.iam)?,
            apigateway: rate(src, &r.apigateway, "apigateway", d.apigateway)?,
            secretsmanager: rate(src, &r.secretsmanager, "secretsmanager", d.secretsmanager)?,
            acm: rate(src, &r.acm, "acm", d.acm)?,
            sts: rate(src, &r.sts, "sts", d.sts)?,
            organizations: rate(src, &r.organizations, "organizations", d.organizations)?,
        })
    }
}

/// One service's rate; each number absent keeps `default`'s.
fn rate(
    src: &Source<'_>,
    field: &Field<RawRate>,
    service: &str,
    default: Rate,
) -> Result<Rate, PolicyError> {
    let Some(raw) = field else {
        return Ok(default);
    };
    let raw = raw.get_ref();
    let per_second = src.number(
        &raw.per_second,
        &format!("pacing.{service}.per_second"),
        default.per_second,
        1..=10_000,
        "calls per second",
    )?;
    let burst = src.number(
        &raw.burst,
        &format!("pacing.{service}.burst"),
        default.burst,
        1..=10_000,
        "calls",
    )?;
    Ok(Rate { per_second, burst })
}
