//! Unit tests of the renderers: alignment, and that nothing read from an account reaches
//! the terminal uncleaned.

use super::*;
use crate::domain::plan::Plan;
use crate::ports::TableStatus;
use crate::steps::iam_keys::Reactivated;

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
