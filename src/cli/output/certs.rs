//! ACM expiry as text: the certificate report and a sweep's notices.

use super::{clean, table};
use crate::steps::certs::{CertReport, CertSweep};

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
                    n.status.to_string(),
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
