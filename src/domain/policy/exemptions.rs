//! `[exemptions]`: break-glass principals and how far ahead an exemption tag may reach.

use serde::{Deserialize, Serialize};

use super::source::{DAYS, Field, PolicyError, Source};

/// `[exemptions]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExemptionsPolicy {
    /// Principals never touched: IAM user names or ARNs.
    pub break_glass: Vec<String>,
    /// An exemption tag counts only when its expiry lies at most this many days ahead; a
    /// later one (or a value that is not a date) is not honoured and is reported.
    pub max_exemption_days: u32,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExemptions {
    break_glass: Field<Vec<String>>,
    max_exemption_days: Field<i64>,
}

impl ExemptionsPolicy {
    /// Checks `[exemptions]`: an empty break-glass entry would match nobody and hide a typo.
    pub(super) fn decode(
        r: &RawExemptions,
        src: &Source<'_>,
    ) -> Result<ExemptionsPolicy, PolicyError> {
        let break_glass = match &r.break_glass {
            None => Vec::new(),
            Some(list) => {
                if list.get_ref().iter().any(|p| p.trim().is_empty()) {
                    return Err(src.error(
                        list,
                        "exemptions.break_glass",
                        "contains an empty entry: list IAM user names or ARNs",
                    ));
                }
                list.get_ref().clone()
            }
        };
        Ok(ExemptionsPolicy {
            break_glass,
            max_exemption_days: src.number(
                &r.max_exemption_days,
                "exemptions.max_exemption_days",
                365,
                DAYS,
                "days",
            )?,
        })
    }
}
