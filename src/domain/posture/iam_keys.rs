//! IAM access keys in the posture: counts, age buckets, keyrotor's lifecycle stages, and
//! the active keys the controls are checked against (from the credential report).

use serde::Serialize;

use super::{Count, PostureInput, ROTATION_DAYS, count, days};
use crate::domain::credential_report::ReportRow;
use crate::domain::lifecycle::{KeyRecord, Stage};

/// IAM key ages are counted into these buckets (lower bound inclusive, in days).
pub const AGE_BUCKETS: [(i64, Option<i64>); 6] = [
    (0, Some(30)),
    (30, Some(60)),
    (60, Some(90)),
    (90, Some(180)),
    (180, Some(365)),
    (365, None),
];

#[derive(Debug, Clone, Serialize)]
pub struct IamPosture {
    /// Keys in the account (active and inactive, root excluded).
    pub keys: usize,
    pub active_keys: usize,
    /// Active keys per age bucket ([`AGE_BUCKETS`]).
    pub age_buckets: Vec<Count>,
    /// Active keys older than [`ROTATION_DAYS`].
    pub over_rotation_line: usize,
    /// Keys by keyrotor lifecycle stage; `active` covers active keys with none in progress.
    pub by_stage: Vec<Count>,
    pub root_active_keys: usize,
    pub oldest_active_days: Option<i64>,
}

/// An active key of the report, with its user, for the controls.
pub(super) struct ActiveKey<'a> {
    pub(super) user: &'a str,
    pub(super) slot: usize,
    pub(super) age: i64,
    pub(super) idle: i64,
}

/// The IAM section, and the active keys (root excluded) for the controls.
pub(super) fn iam_posture<'a>(input: &PostureInput<'a>) -> (IamPosture, Vec<ActiveKey<'a>>) {
    let now = input.now;
    let users: Vec<&ReportRow> = input.report.iter().filter(|r| !r.is_root()).collect();
    let root_active_keys = input
        .report
        .iter()
        .filter(|r| r.is_root())
        .flat_map(|r| r.keys.iter())
        .filter(|k| k.active)
        .count();
    let active: Vec<ActiveKey> = users
        .iter()
        .flat_map(|r| {
            r.keys
                .iter()
                .enumerate()
                .filter(|(_, k)| k.active)
                .map(|(slot, k)| ActiveKey {
                    user: r.user.as_str(),
                    slot: slot + 1,
                    age: days(k.last_rotated, now),
                    idle: days(k.last_used.as_ref().map_or(k.last_rotated, |u| u.at), now),
                })
        })
        .collect();
    let inactive = users
        .iter()
        .flat_map(|r| r.keys.iter())
        .filter(|k| !k.active)
        .count();
    let iam = IamPosture {
        keys: active.len() + inactive,
        active_keys: active.len(),
        age_buckets: AGE_BUCKETS
            .iter()
            .map(|&(lo, hi)| {
                let n = active
                    .iter()
                    .filter(|k| k.age >= lo && hi.is_none_or(|hi| k.age < hi))
                    .count();
                count(
                    match hi {
                        Some(hi) => format!("{lo}–{hi} d"),
                        None => format!("{lo}+ d"),
                    },
                    n,
                )
            })
            .collect(),
        over_rotation_line: active.iter().filter(|k| k.age > ROTATION_DAYS).count(),
        by_stage: by_stage(input.key_records, active.len(), inactive),
        root_active_keys,
        oldest_active_days: active.iter().map(|k| k.age).max(),
    };
    (iam, active)
}

/// Key counts per lifecycle stage. Records describe keys keyrotor acts on; the remaining
/// active keys are `active`, the remaining inactive ones `inactive (not by keyrotor)`.
fn by_stage(records: &[KeyRecord], active: usize, inactive: usize) -> Vec<Count> {
    let live: Vec<&KeyRecord> = records
        .iter()
        .filter(|r| !matches!(r.stage, Stage::Deleted | Stage::Active))
        .collect();
    let with = |stage: Stage| live.iter().filter(|r| r.stage == stage).count();
    let deactivated = with(Stage::Deactivated) + with(Stage::Contained);
    let in_lifecycle_active = live.len() - deactivated;
    let mut out = vec![count("active", active.saturating_sub(in_lifecycle_active))];
    for stage in [
        Stage::Warned,
        Stage::Escalated,
        Stage::Superseded,
        Stage::Reactivated,
        Stage::Deactivated,
        Stage::Contained,
    ] {
        out.push(count(stage.as_str(), with(stage)));
    }
    out.push(count(
        "inactive (not by keyrotor)",
        inactive.saturating_sub(deactivated),
    ));
    out
}
