//! Human-readable tables and JSON shapes for the CLI.
//!
//! Much of what is shown comes from the accounts keyrotor reads (API key and user names,
//! tags, certificate domains, error messages that quote them), so every table cell and
//! every such string put into free text goes through [`clean`] first: a name cannot move
//! the cursor, clear the screen, retitle the window or fake a line of output. JSON output
//! is escaped by serde and needs nothing more.

use std::borrow::Cow;

use serde::Serialize;

use crate::audit::VerifyReport;
use crate::domain::audit_record::AuditRecord;
use crate::domain::audit_record::StoredRecord;
use crate::domain::plan::{KeyView, Plan};
use crate::domain::posture::{ControlStatus, Posture};
use crate::ports::TableStatus;
use crate::steps::api_keys::{Advanced, ApiKeySweep};
use crate::steps::certs::{CertReport, CertSweep};
use crate::steps::iam_keys::{IamSweep, Reactivated};
use crate::steps::migration::{Funnel, MigrationPlan, MigrationSweep};
use crate::steps::secret_rotation::StepResult;

/// Whether output may be coloured: set once by the CLI when stdout is a terminal and
/// `NO_COLOR` is not set.
static COLOUR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn enable_colour(on: bool) {
    COLOUR.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// A tone for [`paint`].
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    Good,
    Bad,
    Muted,
}

/// `text` in the tone's colour on a terminal, unchanged otherwise. Only used for a table's
/// last column (which is not padded) or whole lines, so alignment is unaffected.
pub fn paint(text: &str, tone: Tone) -> String {
    if !COLOUR.load(std::sync::atomic::Ordering::Relaxed) {
        return text.to_owned();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Bad => "31",
        Tone::Muted => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Whether `c` is a C0 control (U+0000–U+001F), DEL (U+007F) or a C1 control
/// (U+0080–U+009F): the characters a terminal may act on rather than print.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// `text` fit for a terminal: every C0 and C1 control character and DEL removed (tab,
/// newline and carriage return become a space, so words stay apart). Escape sequences lose
/// their ESC/CSI introducer and are shown as the harmless text that remains.
pub fn clean(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter_map(|c| match c {
                '\t' | '\n' | '\r' => Some(' '),
                c if is_control(c) => None,
                c => Some(c),
            })
            .collect(),
    )
}

/// [`clean`] for a block of several lines (a policy document, a config snippet): each line
/// cleaned, the line breaks kept.
pub fn clean_lines(text: &str) -> String {
    text.lines()
        .map(|l| clean(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

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

/// Left-aligned columns, two spaces apart; the last column is not padded. Every cell is
/// [`clean`]ed: this is the one place table cells are rendered.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_toned(header, rows, |_| None)
}

/// [`table`], with row `i`'s last cell [`paint`]ed in `tone(i)` after it is cleaned (the
/// colour codes are keyrotor's own, never a cell's).
fn table_toned(
    header: &[&str],
    rows: &[Vec<String>],
    tone: impl Fn(usize) -> Option<Tone>,
) -> String {
    let rows: Vec<Vec<Cow<'_, str>>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| clean(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>, tone: Option<Tone>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                match tone {
                    Some(t) => out.push_str(&paint(cell, t)),
                    None => out.push_str(cell),
                }
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec(), None);
    for (i, row) in rows.iter().enumerate() {
        line(row.iter().map(|c| c.as_ref()).collect(), tone(i));
    }
    out
}

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

fn day(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d").to_string())
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
                    a.status.to_owned(),
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

pub fn certs_table(report: &CertReport, scope: &str) -> String {
    let mut out = format!(
        "Certificates of account {}{}, most urgent first ({} at {})\n\n",
        clean(report.account.as_str()),
        clean(scope),
        report.certificates.len(),
        report.generated_at.format("%Y-%m-%d %H:%M:%SZ")
    );
    if report.certificates.is_empty() {
        out.push_str("None.\n");
    } else {
        let rows: Vec<Vec<String>> = report
            .certificates
            .iter()
            .map(|c| {
                vec![
                    c.days_left
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.not_after
                        .map(|t| t.format("%Y-%m-%d").to_string())
                        .unwrap_or_else(|| "-".into()),
                    c.step.map(|s| s.label()).unwrap_or_default(),
                    c.domain.clone(),
                    c.region.clone(),
                    c.diagnosis.as_str().to_owned(),
                    c.owner.clone().unwrap_or_default(),
                    format!("{}; {}", c.explanation, c.action),
                ]
            })
            .collect();
        out.push_str(&table(
            &[
                "DAYS",
                "EXPIRES",
                "STEP",
                "DOMAIN",
                "REGION",
                "DIAGNOSIS",
                "OWNER",
                "WHY / WHAT TO DO",
            ],
            &rows,
        ));
    }
    for p in &report.problems {
        out.push_str(&format!(
            "\nregion {} could not be read: {}\n",
            clean(&p.region),
            clean(&p.message)
        ));
    }
    out
}

pub fn sweep_table(done: &CertSweep) -> String {
    let mut out = certs_table(&done.report, "");
    out.push_str(&format!("\nNotifications (run {}):\n", done.run_id));
    if done.notifications.is_empty() {
        out.push_str("None due.\n");
    } else {
        let rows: Vec<Vec<String>> = done
            .notifications
            .iter()
            .map(|n| {
                vec![
                    n.status.to_owned(),
                    n.step.label(),
                    n.domain.clone(),
                    n.error
                        .clone()
                        .or_else(|| n.message_id.clone())
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["STATUS", "STEP", "DOMAIN", "MESSAGE / ERROR"],
            &rows,
        ));
    }
    out
}

#[derive(Serialize)]
pub struct InitRow<'a> {
    table: &'a str,
    status: &'static str,
}

fn status(s: TableStatus) -> &'static str {
    match s {
        TableStatus::Created => "created",
        TableStatus::AlreadyExists => "exists",
    }
}

pub fn init_json(done: &[(String, TableStatus)]) -> Vec<InitRow<'_>> {
    done.iter()
        .map(|(t, s)| InitRow {
            table: t,
            status: status(*s),
        })
        .collect()
}

pub fn init_table(done: &[(String, TableStatus)], region: &str) -> String {
    let rows: Vec<Vec<String>> = done
        .iter()
        .map(|(t, s)| vec![t.clone(), status(*s).to_owned()])
        .collect();
    format!(
        "Tables in {}:\n{}",
        clean(region),
        table(&["TABLE", "STATUS"], &rows)
    )
}

/// One listed item: a record, or an item that could not be read.
#[derive(Serialize)]
#[serde(untagged)]
pub enum ListedRecord<'a> {
    Record(&'a AuditRecord),
    Unreadable {
        resource: &'a str,
        seq: Option<u64>,
        unreadable: &'a str,
    },
}

pub fn records_json(records: &[StoredRecord]) -> Vec<ListedRecord<'_>> {
    records
        .iter()
        .map(|r| match r {
            Ok(r) => ListedRecord::Record(r),
            Err(u) => ListedRecord::Unreadable {
                resource: &u.resource,
                seq: u.seq,
                unreadable: &u.message,
            },
        })
        .collect()
}

pub fn records_table(records: &[StoredRecord]) -> String {
    if records.is_empty() {
        return "No audit records match.\n".into();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| match r {
            Ok(r) => vec![
                r.recorded_at
                    .get(..19)
                    .unwrap_or(&r.recorded_at)
                    .replace('T', " "),
                r.run_id.clone(),
                r.kind.to_string(),
                r.resource_id.clone(),
                r.seq.to_string(),
                format!(
                    "{}{}",
                    r.phase.as_str(),
                    r.outcome
                        .map(|o| format!("/{}", o.as_str()))
                        .unwrap_or_default()
                ),
                r.action.clone(),
                format!("{}{}", r.reason, if r.dry_run { " (dry run)" } else { "" }),
            ],
            Err(u) => vec![
                String::new(),
                String::new(),
                String::new(),
                u.resource.clone(),
                u.seq.map(|s| s.to_string()).unwrap_or_default(),
                "UNREADABLE".into(),
                String::new(),
                u.message.clone(),
            ],
        })
        .collect();
    format!(
        "{} record(s):\n{}",
        records.len(),
        table(
            &[
                "RECORDED", "RUN", "KIND", "RESOURCE", "SEQ", "PHASE", "ACTION", "REASON"
            ],
            &rows
        )
    )
}

pub fn verify_text(report: &VerifyReport, table_name: &str) -> String {
    if report.ok() {
        return format!(
            "audit table {}: OK — {} record(s) in {} chain(s), every hash and link verified\n",
            clean(table_name),
            report.records,
            report.chains
        );
    }
    let mut out = format!(
        "audit table {}: TAMPERED — {} problem(s) in {} record(s):\n",
        clean(table_name),
        report.findings.len(),
        report.records
    );
    for f in &report.findings {
        out.push_str(&format!("  - {}\n", clean(&f.to_string())));
    }
    out
}

fn rotation_rows(rotations: &[Advanced]) -> Vec<Vec<String>> {
    rotations
        .iter()
        .map(|r| {
            vec![
                r.status.to_owned(),
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
                s.status.to_owned(),
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
                k.status.to_owned(),
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
                t.status.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_by_width() {
        let t = table(
            &["A", "B", "C"],
            &[vec!["long".into(), "x".into(), "end".into()]],
        );
        assert_eq!(t, "A     B  C\nlong  x  end\n");
    }

    const EVIL: &str = "evil\x1b]0;pwned\x07\x1b[2J";

    fn assert_inert(text: &str) {
        for c in text.chars() {
            assert!(
                c == '\n' || !is_control(c),
                "control character U+{:04X} in {text:?}",
                c as u32
            );
        }
    }

    #[test]
    fn clean_removes_c0_c1_and_del_and_keeps_everything_else() {
        assert_eq!(clean(EVIL), "evil]0;pwned[2J");
        assert_eq!(clean("a\u{9b}31mb\u{7f}c\u{85}d"), "a31mbcd");
        assert_eq!(clean("two\nlines\tand\rcr"), "two lines and cr");
        assert_eq!(clean("köln — ✓ 東京"), "köln — ✓ 東京");
        assert!(matches!(clean("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn table_cells_are_cleaned_and_stay_aligned() {
        let t = table(
            &["NAME", "X"],
            &[
                vec![EVIL.to_owned(), "1".into()],
                vec!["ok".into(), "2\x1b[1A".into()],
            ],
        );
        assert_inert(&t);
        assert_eq!(
            t,
            "NAME             X\nevil]0;pwned[2J  1\nok               2[1A\n"
        );
    }

    #[test]
    fn a_plan_naming_an_api_key_with_escapes_renders_without_them() {
        use crate::domain::action::{Action, ActionType, Reason};
        use crate::domain::model::{AccountId, Kind};
        use crate::domain::plan::Skipped;
        use chrono::TimeZone;
        let at = chrono::Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        let account = AccountId::parse("123456789012").unwrap();
        let skipped = Skipped {
            kind: Kind::ApiKeys,
            resource: "k2".into(),
            principal: Some(EVIL.into()),
            account: account.clone(),
            region: "us-east-1".into(),
            reason: "unmanaged".into(),
            detail: format!("not managed: {EVIL}"),
        };
        let plan = Plan {
            generated_at: at,
            mode: crate::domain::policy::Mode::Plan,
            account: account.clone(),
            actions: vec![Action {
                kind: Kind::ApiKeys,
                resource: "k1".into(),
                principal: Some(EVIL.into()),
                account,
                region: "us-east-1".into(),
                action: ActionType::Rotate,
                reason: Reason::MaxAgeExceeded,
                detail: format!("publish it to {EVIL}"),
                due_at: at,
                owner: Some(EVIL.into()),
                blocked: Some(EVIL.into()),
            }],
            skipped: vec![skipped.clone()],
            notices: vec![Skipped {
                reason: "exemption-unreadable".into(),
                detail: format!("tag keyrotor:exempt = '{EVIL}' is not a date"),
                ..skipped
            }],
            keys: vec![],
        };
        let text = plan_table(&plan);
        assert_inert(&text);
        assert!(text.contains("evil]0;pwned[2J"), "{text}");
        assert!(text.contains("1 notice(s)"), "{text}");
    }

    #[test]
    fn free_text_renderers_clean_what_they_interpolate() {
        let done = Reactivated {
            key: "AKIA\x1b[2J".into(),
            user: EVIL.into(),
            run_id: "r1".into(),
            reconsidered_at: None,
        };
        assert_inert(&reactivated_text(&done));
        assert_inert(&init_table(
            &[(EVIL.to_owned(), TableStatus::Created)],
            EVIL,
        ));
    }
}
