//! API key rotation as text: rotations advanced by a sweep or a single rotation, and the
//! Secrets Manager rotation steps.

use super::{clean, day, table};
use crate::steps::api_keys::{Advanced, ApiKeySweep};
use crate::steps::secret_rotation::StepResult;

fn rotation_rows(rotations: &[Advanced]) -> Vec<Vec<String>> {
    rotations
        .iter()
        .map(|r| {
            vec![
                r.status.to_string(),
                r.key.clone(),
                r.name.clone(),
                r.stage.map_or("-", |s| s.as_str()).to_owned(),
                r.new_key.clone().unwrap_or_else(|| "-".into()),
                if r.steps.is_empty() {
                    "-".to_owned()
                } else {
                    r.steps
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                },
                match (r.next, r.next_at) {
                    (Some(n), Some(at)) => format!("{} on {}", n.as_str(), day(Some(at))),
                    _ => "-".to_owned(),
                },
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect()
}

const ROTATION_HEADER: [&str; 8] = [
    "STATUS",
    "API KEY",
    "NAME",
    "STAGE",
    "REPLACEMENT",
    "STEPS DONE",
    "NEXT",
    "PROBLEM",
];

pub fn rotation_text(done: &Advanced) -> String {
    table(&ROTATION_HEADER, &rotation_rows(std::slice::from_ref(done)))
}

pub fn api_sweep_table(done: &ApiKeySweep) -> String {
    let mut out = format!(
        "API key sweep of account {} in {} at {} (run {}, mode: {})\n\n",
        clean(done.plan.account.as_str()),
        clean(&done.region),
        done.plan.generated_at.format("%Y-%m-%d %H:%M:%SZ"),
        done.run_id,
        done.mode
    );
    if done.rotations.is_empty() {
        out.push_str("Nothing was due.\n");
    } else {
        out.push_str(&table(&ROTATION_HEADER, &rotation_rows(&done.rotations)));
    }
    if !done.plan.skipped.is_empty() {
        out.push_str(&format!(
            "\n{} left alone (see `keyrotor plan --kind api-keys`).\n",
            done.plan.skipped.len()
        ));
    }
    if !done.plan.notices.is_empty() {
        out.push_str(&format!(
            "\n{} exemption tag(s) not honoured (see `keyrotor plan --kind api-keys`).\n",
            done.plan.notices.len()
        ));
    }
    if done.mode == crate::domain::policy::Mode::Plan {
        out.push_str("\nmode = \"plan\": nothing was changed; each due step was recorded as a dry-run decision. Set mode = \"enforce\" in the policy to carry them out.\n");
    }
    out
}

pub fn secret_steps_table(steps: &[StepResult]) -> String {
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|s| {
            vec![
                s.step.as_str().to_owned(),
                s.status.to_string(),
                s.detail.clone(),
            ]
        })
        .collect();
    let mut out = match steps.first() {
        Some(s) => format!(
            "Rotated secret {} (version {})\n\n",
            clean(&s.secret),
            clean(&s.token)
        ),
        None => String::new(),
    };
    out.push_str(&table(&["STEP", "STATUS", "DETAIL"], &rows));
    out
}
