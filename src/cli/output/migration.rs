//! STS migration as text: the per-user plan, the adoption funnel and a sweep's changes.

use super::{clean, clean_lines, day, table};
use crate::steps::migration::{Funnel, MigrationPlan, MigrationSweep};

pub fn migration_plan_text(plan: &MigrationPlan) -> String {
    let mut out = format!(
        "Migration of IAM user {} (account {})\n\n",
        clean(&plan.user),
        clean(plan.account.as_str())
    );
    out.push_str(&format!(
        "Workload identity ({}): {}\n",
        crate::domain::model::TAG_MIGRATE_TO,
        clean(plan.migrate_to.as_deref().unwrap_or("(not tagged)"))
    ));
    if let Some(r) = &plan.record {
        out.push_str(&format!(
            "In progress: {} since {} (role {})\n",
            r.stage.as_str(),
            day(Some(r.since)),
            clean(&r.role_arn)
        ));
    }
    out.push_str("\nKeys:\n");
    let rows: Vec<Vec<String>> = plan
        .keys
        .iter()
        .map(|k| {
            vec![
                k.key.clone(),
                k.status.to_string(),
                day(k.last_used),
                k.service.clone().unwrap_or_else(|| "-".into()),
                k.region.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    out.push_str(&table(
        &["ACCESS KEY", "STATUS", "LAST USED", "SERVICE", "REGION"],
        &rows,
    ));
    out.push_str("\nPermissions copied to the role:\n");
    for arn in &plan.permissions.managed {
        out.push_str(&format!("  managed: {}\n", clean(arn)));
    }
    for (source, name, _) in &plan.permissions.inline {
        out.push_str(&format!(
            "  inline:  {} (from {}), merged into one role policy\n",
            clean(name),
            clean(source)
        ));
    }
    if let Some(role) = &plan.role {
        out.push_str(&format!(
            "\nRole: {} (max session {}s)\nTrust policy:\n{}\n",
            clean(&role.arn),
            role.max_session_seconds,
            clean_lines(&serde_json::to_string_pretty(&role.trust_policy).unwrap_or_default())
        ));
        if let Some(doc) = &role.inline_policy {
            out.push_str(&format!(
                "Merged inline policy:\n{}\n",
                clean_lines(&serde_json::to_string_pretty(doc).unwrap_or_default())
            ));
        }
    }
    if let Some(profile) = &plan.client_profile {
        out.push_str(&format!(
            "\nClient-side change (~/.aws/config):\n{}\n",
            clean_lines(profile)
        ));
    }
    if let Some(why) = &plan.blocked {
        out.push_str(&format!("\nBLOCKED: {}\n", clean(why)));
    }
    out
}

pub fn funnel_table(funnel: &Funnel) -> String {
    let rows: Vec<Vec<String>> = funnel
        .users
        .iter()
        .map(|c| {
            vec![
                c.user.clone(),
                c.stage.clone(),
                day(c.since),
                c.migrate_to.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = table(&["USER", "STAGE", "SINCE", "MIGRATE TO"], &rows);
    out.push_str("\nFunnel: ");
    out.push_str(
        &funnel
            .counts
            .iter()
            .map(|(stage, n)| format!("{} {n}", clean(stage)))
            .collect::<Vec<_>>()
            .join(", "),
    );
    out.push('\n');
    out
}

pub fn migration_sweep_table(done: &MigrationSweep) -> String {
    let mut out = format!(
        "Migration sweep (run {}, mode: {})\n\n",
        clean(&done.run_id),
        done.mode
    );
    if done.transitions.is_empty() {
        out.push_str("Nothing was due.\n");
        return out;
    }
    let rows: Vec<Vec<String>> = done
        .transitions
        .iter()
        .map(|t| {
            vec![
                t.status.to_string(),
                t.user.clone(),
                t.from.as_str().to_owned(),
                t.to.as_str().to_owned(),
                t.detail.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["STATUS", "USER", "FROM", "TO", "DETAIL"], &rows));
    out
}
