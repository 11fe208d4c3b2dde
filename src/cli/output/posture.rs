//! `keyrotor report` as text: the compliance summary and the headline numbers.

use super::{Tone, clean, table_toned};
use crate::domain::posture::{ControlStatus, Posture};

/// The compliance summary and the headline numbers of `keyrotor report`.
pub fn posture_table(p: &Posture) -> String {
    let mut out = format!(
        "Credential posture of account {} ({}), {}\n\n",
        clean(&p.account),
        clean(&p.region),
        p.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    let status = |s: ControlStatus| match s {
        ControlStatus::Passed => ("passed", Tone::Good),
        ControlStatus::Failed => ("FAILED", Tone::Bad),
        ControlStatus::NotApplicable => ("n/a", Tone::Muted),
    };
    let rows: Vec<Vec<String>> = p
        .controls
        .iter()
        .map(|c| {
            vec![
                c.id.to_owned(),
                c.title.to_owned(),
                c.failing.to_string(),
                status(c.status).0.to_owned(),
            ]
        })
        .collect();
    out.push_str(&table_toned(
        &["CONTROL", "REQUIREMENT", "FAILING", "STATUS"],
        &rows,
        |i| p.controls.get(i).map(|c| status(c.status).1),
    ));
    let min_days = p.certificates.iter().filter_map(|c| c.days_left).min();
    out.push_str(&format!(
        "\nIAM keys: {} active, {} over {} days, {} root; API keys: {} ({}); certificates: {} (next expiry in {}); migration: {}; {} recent action(s) listed in --output json or --html\n",
        p.iam.active_keys,
        p.iam.over_rotation_line,
        crate::domain::posture::ROTATION_DAYS,
        p.iam.root_active_keys,
        p.api_keys.len(),
        p.api_key_status
            .iter()
            .map(|c| format!("{} {}", c.count, c.label))
            .collect::<Vec<_>>()
            .join(", "),
        p.certificates.len(),
        min_days.map_or("—".to_owned(), |d| format!("{d} days")),
        p.migration_funnel
            .iter()
            .map(|c| format!("{} {}", c.count, c.label))
            .collect::<Vec<_>>()
            .join(" → "),
        p.recent_actions.len(),
    ));
    out
}
