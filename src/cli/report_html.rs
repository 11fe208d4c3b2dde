//! `keyrotor report --html`: one self-contained page (no script, no external asset), with
//! the charts drawn as inline SVG. Every text that comes from the account is escaped.

use std::fmt::Write;

use crate::domain::posture::{Control, ControlStatus, Count, Posture, ROTATION_DAYS};

/// The page's sections, in order: `(id, heading)`. The browser test checks each is shown.
pub const SECTIONS: [(&str, &str); 8] = [
    ("summary", "Summary"),
    ("compliance", "Compliance"),
    ("iam-key-age", "IAM access key age"),
    ("iam-key-states", "IAM keys by lifecycle state"),
    ("api-keys", "API key rotation"),
    ("certificates", "Certificate expiry"),
    ("migration", "Migration to roles"),
    ("recent-actions", "Recent audited actions"),
];

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const OK: &str = "#2e7d32";
const BAD: &str = "#c62828";
const WARN: &str = "#ef6c00";
const INFO: &str = "#1565c0";
const MUTED: &str = "#757575";

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#212121;background:#fafafa}\
header{background:#263238;color:#fff;padding:16px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#cfd8dc}\
main{padding:8px 32px 32px;max-width:1100px}section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 20px;margin:16px 0}\
h2{font-size:17px;margin:4px 0 12px}table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}\
th{color:#616161;font-weight:600}.badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px}\
.passed{background:#2e7d32}.failed{background:#c62828}.not-applicable{background:#9e9e9e}.tiles{display:flex;gap:12px;flex-wrap:wrap}\
.tile{border:1px solid #e0e0e0;border-radius:6px;padding:8px 14px;min-width:140px}.tile b{display:block;font-size:24px}.note{color:#616161;font-size:12px}\
svg text{font-size:11px;fill:#424242}";

/// Horizontal bars, one per count.
fn bars(counts: &[Count], color: impl Fn(&Count) -> &'static str, title: &str) -> String {
    let max = counts.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let (label_w, bar_w, row_h) = (190.0, 520.0, 24.0);
    let height = row_h * counts.len().max(1) as f64 + 8.0;
    let mut svg = format!(
        r#"<svg role="img" width="{w}" height="{height}" viewBox="0 0 {w} {height}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        w = label_w + bar_w + 60.0,
        t = esc(title)
    );
    for (i, c) in counts.iter().enumerate() {
        let y = 4.0 + row_h * i as f64;
        let w = bar_w * c.count as f64 / max as f64;
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="{ty}" text-anchor="end">{label}</text><rect x="{label_w}" y="{y}" width="{w:.1}" height="{h}" fill="{fill}"><title>{label}: {n}</title></rect><text x="{nx:.1}" y="{ty}">{n}</text>"#,
            lx = label_w - 8.0,
            ty = y + 14.0,
            label = esc(&c.label),
            h = row_h - 6.0,
            fill = color(c),
            n = c.count,
            nx = label_w + w + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical histogram of key ages with the 90-day line between its buckets.
fn age_histogram(buckets: &[Count]) -> String {
    let max = buckets.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let (left, bottom, col_w, plot_h) = (40.0, 200.0, 90.0, 170.0);
    let width = left + col_w * buckets.len() as f64 + 20.0;
    let mut svg = format!(
        r#"<svg role="img" width="{width}" height="230" viewBox="0 0 {width} 230" xmlns="http://www.w3.org/2000/svg"><title>Active IAM access keys by age, against the {ROTATION_DAYS}-day rotation line</title><line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="{MUTED}"/>"#,
        right = width - 10.0,
    );
    for (i, b) in buckets.iter().enumerate() {
        let h = plot_h * b.count as f64 / max as f64;
        let x = left + col_w * i as f64 + 8.0;
        // Buckets are [0,30), [30,60), [60,90): the first three are within the line.
        let fill = if i < 3 { OK } else { BAD };
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{y:.1}" width="{w}" height="{h:.1}" fill="{fill}"><title>{label}: {n}</title></rect><text x="{cx}" y="{ly}" text-anchor="middle">{label}</text><text x="{cx}" y="{ny:.1}" text-anchor="middle">{n}</text>"#,
            y = bottom - h,
            w = col_w - 16.0,
            label = esc(&b.label),
            n = b.count,
            cx = x + (col_w - 16.0) / 2.0,
            ly = bottom + 16.0,
            ny = bottom - h - 4.0,
        );
    }
    let line_x = left + col_w * 3.0;
    let _ = write!(
        svg,
        r#"<line x1="{line_x}" y1="12" x2="{line_x}" y2="{bottom}" stroke="{BAD}" stroke-dasharray="5,4" stroke-width="2"/><text x="{tx}" y="14">{ROTATION_DAYS}-day line (CIS 1.14, IAM.3)</text></svg>"#,
        tx = line_x + 6.0,
    );
    svg
}

/// Certificates on a days-left axis, with the notification ladder as vertical lines.
fn cert_timeline(p: &Posture) -> String {
    let dated: Vec<_> = p
        .certificates
        .iter()
        .filter_map(|c| c.days_left.map(|d| (c, d)))
        .collect();
    let ladder_max = p.ladder_days.iter().copied().max().unwrap_or(45) as i64;
    let lo = dated.iter().map(|(_, d)| *d).min().unwrap_or(0).min(0) - 5;
    let hi = dated
        .iter()
        .map(|(_, d)| *d)
        .max()
        .unwrap_or(0)
        .max(ladder_max + 15);
    let (left, plot_w, row_h, top) = (220.0, 600.0, 20.0, 24.0);
    let x = |d: i64| left + plot_w * (d - lo) as f64 / (hi - lo).max(1) as f64;
    let height = top + row_h * dated.len().max(1) as f64 + 24.0;
    let mut svg = format!(
        r#"<svg role="img" width="{w}" height="{height}" viewBox="0 0 {w} {height}" xmlns="http://www.w3.org/2000/svg"><title>Certificates by days until expiry, with the notification ladder</title>"#,
        w = left + plot_w + 40.0,
    );
    let bottom = height - 20.0;
    let _ = write!(
        svg,
        r#"<line x1="{x0:.1}" y1="{top}" x2="{x0:.1}" y2="{bottom}" stroke="{BAD}" stroke-width="2"/><text x="{x0:.1}" y="{ly}" text-anchor="middle">expiry</text>"#,
        x0 = x(0),
        ly = top - 8.0,
    );
    for d in &p.ladder_days {
        let _ = write!(
            svg,
            r#"<line x1="{lx:.1}" y1="{top}" x2="{lx:.1}" y2="{bottom}" stroke="{WARN}" stroke-dasharray="3,3"/><text x="{lx:.1}" y="{ty}" text-anchor="middle">{d}d</text>"#,
            lx = x(i64::from(*d)),
            ty = bottom + 14.0,
        );
    }
    for (i, (c, d)) in dated.iter().enumerate() {
        let y = top + row_h * i as f64 + row_h / 2.0;
        let fill = if *d <= 0 {
            BAD
        } else if c.step.is_some() {
            WARN
        } else {
            OK
        };
        let _ = write!(
            svg,
            r#"<text x="{lx}" y="{ty:.1}" text-anchor="end">{name}</text><circle cx="{cx:.1}" cy="{y:.1}" r="6" fill="{fill}"><title>{name}: {d} days left ({why})</title></circle>"#,
            lx = left - 10.0,
            ty = y + 4.0,
            name = esc(&c.domain),
            cx = x(*d),
            why = esc(c.diagnosis.as_str()),
        );
    }
    svg.push_str("</svg>");
    svg
}

fn badge(status: ControlStatus) -> String {
    let (class, text) = match status {
        ControlStatus::Passed => ("passed", "passed"),
        ControlStatus::Failed => ("failed", "failed"),
        ControlStatus::NotApplicable => ("not-applicable", "n/a"),
    };
    format!(r#"<span class="badge {class}">{text}</span>"#)
}

fn control_row(c: &Control) -> String {
    let resources = if c.resources.is_empty() {
        String::new()
    } else {
        let more = c.failing.saturating_sub(c.resources.len());
        format!(
            "<br><span class=\"note\">{}{}</span>",
            esc(&c.resources.join(", ")),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )
    };
    format!(
        "<tr><td>{}</td><td>{}{resources}</td><td>{}</td><td>{}</td><td class=\"note\">{}</td></tr>",
        esc(c.id),
        esc(c.title),
        badge(c.status),
        c.failing,
        esc(c.remedy)
    )
}

fn section(out: &mut String, id: &str, body: &str) {
    let heading = SECTIONS
        .iter()
        .find(|(s, _)| *s == id)
        .map_or(id, |(_, h)| h);
    let _ = write!(
        out,
        "<section id=\"{id}\"><h2>{}</h2>{body}</section>",
        esc(heading)
    );
}

fn tile(label: &str, value: impl std::fmt::Display) -> String {
    format!(
        "<div class=\"tile\"><b>{}</b>{}</div>",
        esc(&value.to_string()),
        esc(label)
    )
}

/// The whole page.
pub fn render(p: &Posture) -> String {
    let mut body = String::new();
    let min_days = p.certificates.iter().filter_map(|c| c.days_left).min();
    section(
        &mut body,
        "summary",
        &format!(
            "<div class=\"tiles\">{}{}{}{}{}{}</div>",
            tile("controls failed", p.failed_controls()),
            tile("active IAM keys", p.iam.active_keys),
            tile(
                &format!("keys over {ROTATION_DAYS} days"),
                p.iam.over_rotation_line
            ),
            tile("root access keys", p.iam.root_active_keys),
            tile("API keys", p.api_keys.len()),
            tile(
                "days to the next certificate expiry",
                min_days.map_or("none".to_owned(), |d| d.to_string())
            ),
        ),
    );
    section(
        &mut body,
        "compliance",
        &format!(
            "<table><tr><th>Control</th><th>Requirement</th><th>Status</th><th>Failing</th><th>What keyrotor does</th></tr>{}</table><p class=\"note\">From keyrotor's inventory of account {} only (access keys; console passwords are not checked).</p>",
            p.controls.iter().map(control_row).collect::<String>(),
            esc(&p.account)
        ),
    );
    section(
        &mut body,
        "iam-key-age",
        &format!(
            "{}<p class=\"note\">{} active keys; oldest {} days.</p>",
            age_histogram(&p.iam.age_buckets),
            p.iam.active_keys,
            p.iam
                .oldest_active_days
                .map_or("—".to_owned(), |d| d.to_string())
        ),
    );
    section(
        &mut body,
        "iam-key-states",
        &bars(
            &p.iam.by_stage,
            |c| match c.label.as_str() {
                "active" => OK,
                "warned" | "escalated" | "superseded" => WARN,
                "deactivated" => BAD,
                _ => MUTED,
            },
            "IAM access keys by lifecycle state",
        ),
    );
    let api_rows: String = p
        .api_keys
        .iter()
        .take(50)
        .map(|k| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&k.name),
                esc(&k.id),
                k.age_days,
                esc(&k.status)
            )
        })
        .collect();
    section(
        &mut body,
        "api-keys",
        &format!(
            "{}<table><tr><th>Name</th><th>Id</th><th>Age (days)</th><th>Status</th></tr>{api_rows}</table>{}",
            bars(
                &p.api_key_status,
                |c| match c.label.as_str() {
                    "current" => OK,
                    "due" => BAD,
                    "rotating" | "replacement" => INFO,
                    _ => MUTED,
                },
                "API keys by rotation status"
            ),
            if p.api_keys.len() > 50 {
                format!(
                    "<p class=\"note\">The 50 oldest of {} keys.</p>",
                    p.api_keys.len()
                )
            } else {
                String::new()
            }
        ),
    );
    let cert_rows: String = p
        .certificates
        .iter()
        .map(|c| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.domain),
                esc(&c.region),
                c.days_left.map_or("—".into(), |d| d.to_string()),
                esc(c.step.as_deref().unwrap_or("")),
                esc(&c.explanation),
                esc(c.owner.as_deref().unwrap_or("")),
            )
        })
        .collect();
    section(
        &mut body,
        "certificates",
        &format!(
            "{}<table><tr><th>Domain</th><th>Region</th><th>Days left</th><th>Ladder step</th><th>Renewal</th><th>Owner</th></tr>{cert_rows}</table>",
            cert_timeline(p)
        ),
    );
    section(
        &mut body,
        "migration",
        &format!(
            "{}<p class=\"note\">{}</p>",
            bars(
                &p.migration_funnel,
                |c| if c.label == "migrated" { OK } else { INFO },
                "IAM users reaching each migration stage"
            ),
            esc(&p
                .migration_setbacks
                .iter()
                .map(|c| format!("{}: {}", c.label, c.count))
                .collect::<Vec<_>>()
                .join(", "))
        ),
    );
    let actions: String = p
        .recent_actions
        .iter()
        .map(|a| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.recorded_at),
                esc(a.kind.as_str()),
                esc(&a.resource_id),
                esc(&a.action),
                esc(a.outcome.as_deref().unwrap_or("intent")),
                esc(&a.reason),
            )
        })
        .collect();
    section(
        &mut body,
        "recent-actions",
        &format!(
            "<table><tr><th>Recorded</th><th>Kind</th><th>Resource</th><th>Action</th><th>Outcome</th><th>Reason</th></tr>{actions}</table>{}",
            if p.recent_actions.is_empty() {
                "<p class=\"note\">No action audited in the last 30 days.</p>"
            } else {
                ""
            }
        ),
    );
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>keyrotor posture — {account}</title><style>{STYLE}</style></head><body><header><h1>Credential posture of account {account}</h1><p>Region {region} · generated {at} by keyrotor {version}</p></header><main>{body}</main></body></html>\n",
        account = esc(&p.account),
        region = esc(&p.region),
        at = p.generated_at.format("%Y-%m-%d %H:%M UTC"),
        version = env!("CARGO_PKG_VERSION"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn bars_scale_to_the_largest_count_and_escape_labels() {
        let svg = bars(
            &[
                Count {
                    label: "<b>".into(),
                    count: 2,
                },
                Count {
                    label: "half".into(),
                    count: 1,
                },
            ],
            |_| OK,
            "t",
        );
        assert!(svg.contains(r#"width="520.0""#), "{svg}");
        assert!(svg.contains(r#"width="260.0""#), "{svg}");
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
    }
}
