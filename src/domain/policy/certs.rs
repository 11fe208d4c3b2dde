//! `[certs]`: the escalation ladder before a certificate expires, and the regions checked.

use serde::{Deserialize, Serialize};

use super::source::{Field, PolicyError, Source};
use super::validate::is_region;

/// `[certs]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertsPolicy {
    /// Escalation ladder, days before expiry, sorted from the farthest to the nearest.
    pub ladder_days: Vec<u32>,
    /// Regions to check (empty: the region keyrotor runs in). CloudFront uses us-east-1.
    pub regions: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCerts {
    ladder_days: Field<Vec<i64>>,
    regions: Field<Vec<String>>,
}

impl CertsPolicy {
    /// Checks `[certs]`; the ladder comes out sorted from the farthest step to the nearest.
    pub(super) fn decode(r: &RawCerts, src: &Source<'_>) -> Result<CertsPolicy, PolicyError> {
        let ladder_days = match &r.ladder_days {
            None => vec![45, 30, 14, 7],
            Some(list) => {
                let mut out = Vec::new();
                if list.get_ref().is_empty() {
                    return Err(src.error(
                        list,
                        "certs.ladder_days",
                        "must list at least one step, e.g. [45, 30, 14, 7]",
                    ));
                }
                for &n in list.get_ref() {
                    match u32::try_from(n) {
                        Ok(v) if (1..=365).contains(&v) && !out.contains(&v) => out.push(v),
                        Ok(v) if out.contains(&v) => {
                            return Err(src.error(
                                list,
                                "certs.ladder_days",
                                format!("{v} is listed twice: each step must be distinct"),
                            ));
                        }
                        _ => {
                            return Err(src.error(
                                list,
                                "certs.ladder_days",
                                format!("{n} is out of range: allowed values are 1 to 365 days"),
                            ));
                        }
                    }
                }
                out.sort_unstable_by(|a, b| b.cmp(a));
                out
            }
        };
        let regions = match &r.regions {
            None => Vec::new(),
            Some(list) => {
                for region in list.get_ref() {
                    if !is_region(region) {
                        return Err(src.error(
                            list,
                            "certs.regions",
                            format!("{region:?} is not an AWS region name such as \"us-east-1\""),
                        ));
                    }
                }
                list.get_ref().clone()
            }
        };
        Ok(CertsPolicy {
            ladder_days,
            regions,
        })
    }
}
