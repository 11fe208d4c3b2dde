//! Migrations in the posture: the funnel of users reaching each stage, and the setbacks.

use std::collections::BTreeMap;

use super::{Count, count};
use crate::domain::migration::MigrationStage;

/// Users reaching each stage (a user counts for every stage up to its own), and those
/// regressed or rolled back.
pub(super) fn funnel(counts: &BTreeMap<String, usize>) -> (Vec<Count>, Vec<Count>) {
    let order: Vec<&str> = std::iter::once("candidate")
        .chain(
            MigrationStage::ALL
                .iter()
                .filter(|s| !matches!(s, MigrationStage::Regressed | MigrationStage::RolledBack))
                .map(|s| s.as_str()),
        )
        .collect();
    let at = |stage: &str| counts.get(stage).copied().unwrap_or(0);
    let funnel = order
        .iter()
        .enumerate()
        .map(|(i, stage)| count(*stage, order[i..].iter().map(|s| at(s)).sum()))
        .collect();
    let setbacks = [MigrationStage::Regressed, MigrationStage::RolledBack]
        .iter()
        .map(|s| count(s.as_str(), at(s.as_str())))
        .collect();
    (funnel, setbacks)
}
