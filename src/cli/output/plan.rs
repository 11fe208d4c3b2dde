//! `keyrotor plan` as text: the actions, the keys and what the plan left alone.

use super::{clean, day, table};
use crate::domain::plan::{KeyView, Plan};

/// Resources the plan left alone, or reported for a tag to fix: one row each.
fn skipped_table(list: &[crate::domain::plan::Skipped]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.kind.to_string(),
                s.reason.clone(),
                s.resource.clone(),
                s.principal.clone().unwrap_or_default(),
                s.detail.clone(),
            ]
        })
        .collect();
    table(
        &["KIND", "REASON", "RESOURCE", "PRINCIPAL", "DETAIL"],
        &rows,
    )
}

pub fn plan_table(plan: &Plan) -> String {
    let mut out = format!(
        "Plan for account {} at {} (mode: {})\n\n",
        clean(plan.account.as_str()),
        plan.generated_at.format("%Y-%m-%d %H:%M:%SZ"),
        plan.mode
    );
    if plan.actions.is_empty() {
        out.push_str("Nothing is due.\n");
    } else {
        let rows: Vec<Vec<String>> = plan
            .actions
            .iter()
            .map(|a| {
                let mut detail = a.detail.clone();
                if let Some(b) = &a.blocked {
                    detail = format!("BLOCKED: {b}; {detail}");
                }
                vec![
                    a.due_at.format("%Y-%m-%d").to_string(),
                    a.kind.to_string(),
                    a.action.as_str().to_owned(),
                    a.reason.as_str().to_owned(),
                    a.resource.clone(),
                    a.principal.clone().unwrap_or_default(),
                    detail,
                ]
            })
            .collect();
        out.push_str(&format!("{} action(s) due:\n", plan.actions.len()));
        out.push_str(&table(
            &[
                "DUE",
                "KIND",
                "ACTION",
                "REASON",
                "RESOURCE",
                "PRINCIPAL",
                "DETAIL",
            ],
            &rows,
        ));
    }
    for (list, heading) in [
        (&plan.skipped, "left alone"),
        (&plan.notices, "notice(s) (in scope; fix these tags)"),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("\n{} {heading}:\n", list.len()));
            out.push_str(&skipped_table(list));
        }
    }
    if !plan.keys.is_empty() {
        out.push_str(&format!(
            "\nIAM access keys examined ({}; keys with nothing due are not examined):\n",
            plan.keys.len()
        ));
        out.push_str(&keys_table(&plan.keys));
    }
    if plan.mode == crate::domain::policy::Mode::Plan {
        out.push_str("\nmode = \"plan\": nothing is changed. Set mode = \"enforce\" in the policy to carry out actions.\n");
    }
    out
}

fn keys_table(keys: &[KeyView]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.user.clone(),
                k.key.clone(),
                k.status.to_owned(),
                k.age_days.to_string(),
                match (k.last_used, &k.last_used_service) {
                    (None, _) => "never".to_owned(),
                    (Some(t), Some(s)) => format!("{} ({s})", day(Some(t))),
                    (Some(t), None) => day(Some(t)),
                },
                k.stage.as_str().to_owned(),
                match (&k.excluded, k.next_action) {
                    (Some(why), _) => format!("none ({why})"),
                    (None, Some(a)) => a.as_str().to_owned(),
                    (None, None) => "none".to_owned(),
                },
                day(k.next_at),
            ]
        })
        .collect();
    table(
        &[
            "USER",
            "ACCESS KEY",
            "STATUS",
            "AGE",
            "LAST USED",
            "STAGE",
            "NEXT",
            "ON",
        ],
        &rows,
    )
}
