use chrono::{TimeZone, Utc};

use super::charts::Px;
use super::*;
use crate::domain::audit_record::Phase;
use crate::domain::cert::Diagnosis;
use crate::domain::model::Kind;
use crate::domain::posture::{AuditLine, CertLine, Control, Count, IamPosture};

fn count(label: &str, count: usize) -> Count {
    Count {
        label: label.into(),
        count,
    }
}

/// A posture whose every account-provided text is `text(field)`.
fn posture(text: impl Fn(&str) -> String) -> Posture {
    Posture {
        generated_at: Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap(),
        account: text("account"),
        region: text("region"),
        iam: IamPosture {
            keys: 3,
            active_keys: 2,
            age_buckets: vec![count(&text("age bucket"), 1), count("90-180", 1)],
            over_rotation_line: 1,
            by_stage: vec![count(&text("stage"), 2)],
            root_active_keys: 0,
            oldest_active_days: Some(120),
        },
        api_keys: vec![ApiKeyLine {
            id: text("api key id"),
            name: text("api key name"),
            age_days: 7,
            status: text("api key status"),
        }],
        api_key_status: vec![count(&text("api key status count"), 1)],
        certificates: vec![CertLine {
            domain: text("certificate domain"),
            arn: text("certificate arn"),
            region: text("certificate region"),
            not_after: None,
            days_left: Some(12),
            step: Some(text("ladder step")),
            diagnosis: Diagnosis::Imported,
            explanation: text("certificate explanation"),
            owner: Some(text("certificate owner")),
        }],
        ladder_days: vec![45, 30, 14, 7],
        migration_funnel: vec![count(&text("migration stage"), 1)],
        migration_setbacks: vec![count(&text("migration setback"), 1)],
        recent_actions: vec![AuditLine {
            recorded_at: text("recorded at"),
            kind: Kind::ApiKeys,
            resource_id: text("resource id"),
            action: text("action"),
            phase: Phase::Outcome,
            outcome: Some(text("outcome")),
            reason: text("reason"),
        }],
        controls: vec![Control {
            id: "CIS 1.14",
            title: "Access keys are rotated every 90 days or less",
            status: ControlStatus::Failed,
            failing: 3,
            resources: vec![text("failing user"), text("second failing user")],
            remedy: "rotates them",
        }],
    }
}

/// The escaped form, written out independently of [`NamedEntities`].
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The bar charts' macro alone, to look at its geometry.
#[derive(Template)]
#[template(
    source = r#"{% import "report/charts.html" as charts %}{% call charts::bars(chart) %}{% endcall %}"#,
    ext = "html",
    config = "templates/askama.toml"
)]
struct Bars<'a> {
    chart: BarChart<'a>,
}

#[test]
fn escaping_covers_markup_and_quotes() {
    let mut out = String::new();
    NamedEntities
        .write_escaped_str(&mut out, r#"<script>alert("x")</script>&'"#)
        .unwrap();
    assert_eq!(
        out,
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
    );
}

#[test]
fn escaping_keeps_text_around_the_entities_and_non_ascii() {
    let mut out = String::new();
    NamedEntities
        .write_escaped_str(&mut out, "é<ü>ñ — a&b")
        .unwrap();
    assert_eq!(out, "é&lt;ü&gt;ñ — a&amp;b");
}

#[test]
fn bars_scale_to_the_largest_count_and_escape_labels() {
    let counts = [count("<b>", 2), count("half", 1)];
    let svg = Bars {
        chart: BarChart::new("t", &counts, |_| OK),
    }
    .render()
    .unwrap();
    assert!(svg.contains(r#"width="520.0""#), "{svg}");
    assert!(svg.contains(r#"width="260.0""#), "{svg}");
    assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"), "{svg}");
}

#[test]
fn a_hostile_name_in_any_account_field_is_escaped() {
    // GIVEN a posture whose every text from the account is markup that would run script,
    // break out of an attribute (both quotes) and start an entity, tagged with its field
    let hostile = |field: &str| format!(r#"<script>alert('{field}')</script>"&<img src=x>"#);
    let p = posture(hostile);

    // WHEN the page is rendered
    let html = render(&p);

    // THEN no markup from the account survives: the page has no script and no image at all
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(!html.contains("alert('"), "a quote went through: {html}");
    // AND every field is on the page, in its escaped form
    for field in [
        "account",
        "region",
        "age bucket",
        "stage",
        "api key id",
        "api key name",
        "api key status",
        "api key status count",
        "certificate domain",
        "certificate region",
        "ladder step",
        "certificate explanation",
        "certificate owner",
        "migration stage",
        "migration setback",
        "recorded at",
        "resource id",
        "action",
        "outcome",
        "reason",
        "failing user",
        "second failing user",
    ] {
        assert!(
            html.contains(&escaped(&hostile(field))),
            "{field} is missing or not escaped: {html}"
        );
    }
}

#[test]
fn the_page_has_every_section_in_order_with_its_heading() {
    let html = render(&posture(|field| field.to_owned()));
    let mut from = 0;
    for (id, heading) in SECTIONS {
        let tag = format!(r#"<section id="{id}"><h2>{heading}</h2>"#);
        let at = html[from..]
            .find(&tag)
            .unwrap_or_else(|| panic!("{tag} missing or out of order: {html}"));
        from += at + tag.len();
    }
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_eq!(html.matches("<svg").count(), 5, "{html}");
}

#[test]
fn the_page_keeps_its_counts_badges_and_notes() {
    let html = render(&posture(|field| field.to_owned()));
    for part in [
        "<title>keyrotor posture — account</title>",
        "Region region · generated 2026-11-25 00:00 UTC by keyrotor",
        r#"<div class="tile"><b>1</b>controls failed</div>"#,
        r#"<div class="tile"><b>12</b>days to the next certificate expiry</div>"#,
        "keys over 90 days",
        r#"<span class="badge failed">failed</span>"#,
        r#"<span class="note">failing user, second failing user and 1 more</span>"#,
        "2 active keys; oldest 120 days.",
        "<p class=\"note\">migration setback: 1</p>",
        "<title>certificate domain: 12 days left (imported)</title>",
        "90-day line (CIS 1.14, IAM.3)",
        "<td>api-keys</td>",
    ] {
        assert!(html.contains(part), "{part} missing: {html}");
    }
    assert!(!html.contains("oldest of"), "{html}");
    assert!(!html.contains("No action audited"), "{html}");
}

#[test]
fn only_the_50_oldest_api_keys_are_listed() {
    let mut p = posture(|field| field.to_owned());
    p.api_keys = (0..51)
        .map(|i| ApiKeyLine {
            id: format!("key-{i}"),
            name: format!("name-{i}"),
            age_days: 100 - i,
            status: "current".into(),
        })
        .collect();
    p.recent_actions.clear();
    let html = render(&p);
    assert!(html.contains("<td>key-49</td>") && !html.contains("<td>key-50</td>"));
    assert!(html.contains("The 50 oldest of 51 keys."), "{html}");
    assert!(html.contains("No action audited in the last 30 days."));
}

#[test]
fn svg_lengths_are_written_with_one_decimal() {
    assert_eq!(Px(260.0).to_string(), "260.0");
    assert_eq!(Px(1.0 / 3.0).to_string(), "0.3");
}
