//! IAM access key hygiene as text: a sweep's transitions and a reactivation.

use super::{clean, day, table};
use crate::steps::iam_keys::{IamSweep, Reactivated};

pub fn iam_sweep_table(done: &IamSweep) -> String {
    let mut out = format!(
        "IAM key sweep of account {} at {} (run {}, mode: {})\n\n",
        clean(done.plan.account.as_str()),
        done.plan.generated_at.format("%Y-%m-%d %H:%M:%SZ"),
        done.run_id,
        done.mode
    );
    if done.applied.is_empty() {
        out.push_str("Nothing was due.\n");
    } else {
        let rows: Vec<Vec<String>> = done
            .applied
            .iter()
            .map(|a| {
                vec![
                    a.status.to_string(),
                    a.action.as_str().to_owned(),
                    a.reason.as_str().to_owned(),
                    a.key.clone(),
                    a.user.clone(),
                    a.stage.as_str().to_owned(),
                    match &a.error {
                        Some(e) => format!("{e}; {}", a.detail),
                        None => a.detail.clone(),
                    },
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "STATUS",
                "ACTION",
                "REASON",
                "ACCESS KEY",
                "USER",
                "STAGE",
                "DETAIL",
            ],
            &rows,
        ));
    }
    if !done.plan.skipped.is_empty() {
        out.push_str(&format!(
            "\n{} left alone (see `keyrotor plan --kind iam-keys`).\n",
            done.plan.skipped.len()
        ));
    }
    if !done.plan.notices.is_empty() {
        out.push_str(&format!(
            "\n{} exemption tag(s) not honoured (see `keyrotor plan --kind iam-keys`).\n",
            done.plan.notices.len()
        ));
    }
    if done.mode == crate::domain::policy::Mode::Plan {
        out.push_str("\nmode = \"plan\": nothing was changed or sent; each due action was recorded as a dry-run decision. Set mode = \"enforce\" in the policy to carry them out.\n");
    }
    out
}

pub fn reactivated_text(done: &Reactivated) -> String {
    format!(
        "Reactivated {} of {} (run {}).\nkeyrotor will reconsider it on {} if it stays unused.\n",
        clean(&done.key),
        clean(&done.user),
        done.run_id,
        day(done.reconsidered_at)
    )
}
