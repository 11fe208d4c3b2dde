//! Unit tests of the policy file: defaults, every error message and its location.

use super::validate::is_region;
use super::*;

fn parse(text: &str) -> Result<Policy, PolicyError> {
    Policy::from_toml(text, "keyrotor.toml")
}

#[test]
fn empty_file_takes_the_audited_standards_as_defaults() {
    let p = parse("").unwrap();
    assert_eq!(p.mode, Mode::Plan);
    assert_eq!(p.iam_keys.max_age_days, 90);
    assert_eq!(p.iam_keys.unused_days, 45);
    assert_eq!(p.certs.ladder_days, vec![45, 30, 14, 7]);
    assert_eq!(p.audit.table, "keyrotor-audit");
    assert_eq!(p, Policy::default());
}

#[test]
fn example_policy_file_is_valid() {
    let text = include_str!("../../../examples/keyrotor.toml");
    let p = parse(text).unwrap();
    assert_eq!(p.mode, Mode::Plan);
}

#[test]
fn unknown_key_is_rejected_with_line_and_allowed_keys() {
    let err = parse("mode = \"plan\"\n[iam_keys]\nmax_age = 30\n").unwrap_err();
    assert_eq!(err.line, 3);
    assert_eq!(err.key, "max_age");
    assert!(err.message.contains("unknown field"), "{err}");
    assert!(err.message.contains("max_age_days"), "{err}");
}

#[test]
fn wrong_type_is_rejected_with_line() {
    let err = parse("[iam_keys]\nmax_age_days = \"ninety\"\n").unwrap_err();
    assert_eq!(err.line, 2);
    assert_eq!(err.key, "max_age_days");
    assert!(err.to_string().starts_with("keyrotor.toml:2:"), "{err}");
}

#[test]
fn event_bus_takes_a_name_or_an_arn_and_rejects_anything_else() {
    for bus in [
        "default",
        "keyrotor-events",
        "arn:aws:events:eu-west-1:123456789012:event-bus/keyrotor",
    ] {
        let p = parse(&format!("[notifications]\nevent_bus = \"{bus}\"\n")).unwrap();
        assert_eq!(p.notifications.event_bus.as_deref(), Some(bus));
    }
    assert_eq!(
        parse("[notifications]\nevent_bus = \"\"\n")
            .unwrap()
            .notifications
            .event_bus,
        None
    );
    for bad in [
        "has space",
        "arn:aws:sns:eu-west-1:123456789012:event-bus/x",
        "arn:aws:events:eu-west-1:123:event-bus/x",
    ] {
        let err = parse(&format!("[notifications]\nevent_bus = \"{bad}\"\n")).unwrap_err();
        assert_eq!(
            (err.line, err.key.as_str()),
            (2, "notifications.event_bus"),
            "{err}"
        );
        assert!(err.message.contains("event bus"), "{err}");
    }
}

#[test]
fn unknown_mode_lists_allowed_values() {
    let err = parse("mode = \"yolo\"\n").unwrap_err();
    assert!(
        err.message.contains("plan") && err.message.contains("enforce"),
        "{err}"
    );
}

#[test]
fn negative_days_are_rejected_with_the_allowed_range() {
    let err = parse("\n[iam_keys]\nunused_days = -5\n").unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (3, "iam_keys.unused_days"));
    assert!(err.message.contains("1 to 3650"), "{err}");
}

#[test]
fn grace_not_shorter_than_max_age_is_rejected() {
    let err = parse("[api_keys]\nmax_age_days = 30\ngrace_days = 45\n").unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (3, "api_keys.grace_days"));
    assert!(err.message.contains("0 to 29"), "{err}");
}

#[test]
fn unused_days_longer_than_max_age_is_rejected() {
    let err = parse("[iam_keys]\nmax_age_days = 30\nunused_days = 60\n").unwrap_err();
    assert_eq!(err.key, "iam_keys.unused_days");
}

#[test]
fn ladder_is_sorted_and_duplicates_rejected() {
    let p = parse("[certs]\nladder_days = [7, 45, 14]\n").unwrap();
    assert_eq!(p.certs.ladder_days, vec![45, 14, 7]);
    let err = parse("[certs]\nladder_days = [7, 7]\n").unwrap_err();
    assert!(err.message.contains("twice"), "{err}");
    let err = parse("[certs]\nladder_days = [0]\n").unwrap_err();
    assert!(err.message.contains("1 to 365"), "{err}");
}

#[test]
fn bad_region_path_table_and_account_are_rejected() {
    for (doc, key) in [
        ("[certs]\nregions = [\"mars-1\"]\n", "certs.regions"),
        (
            "[iam_keys]\npath_prefixes = [\"apps\"]\n",
            "iam_keys.path_prefixes",
        ),
        ("[audit]\ntable = \"a b\"\n", "audit.table"),
        (
            "[audit]\nstate_table = \"keyrotor-audit\"\n",
            "audit.state_table",
        ),
        ("[accounts]\nids = [\"12\"]\n", "accounts.ids"),
        (
            "[accounts]\nmember_role_name = \"a/b\"\n",
            "accounts.member_role_name",
        ),
        (
            "[accounts]\nmember_role_path = \"keyrotor\"\n",
            "accounts.member_role_path",
        ),
        (
            "[accounts]\nexternal_id = \"has space\"\n",
            "accounts.external_id",
        ),
    ] {
        let err = parse(doc).unwrap_err();
        assert_eq!(err.key, key, "{doc}: {err}");
        assert_eq!(err.line, 2, "{doc}: {err}");
    }
}

#[test]
fn pacing_defaults_to_the_published_quotas_evenly_spaced() {
    let p = parse("").unwrap().pacing;
    assert_eq!(p, PacingPolicy::DEFAULT);
    assert_eq!((p.iam.per_second, p.iam.burst), (10, 1));
    assert_eq!(p.apigateway.per_second, 5);
    assert_eq!(p.secretsmanager.per_second, 50);
    let p = parse("[pacing]\niam = { per_second = 4, burst = 2 }\nacm = { per_second = 3 }\n")
        .unwrap()
        .pacing;
    assert_eq!((p.iam.per_second, p.iam.burst), (4, 2));
    assert_eq!((p.acm.per_second, p.acm.burst), (3, 1));
    assert_eq!(p.sts, PacingPolicy::DEFAULT.sts);
}

#[test]
fn bad_pacing_names_the_service_and_the_allowed_values() {
    let err = parse("[pacing]\niam = { per_second = 0 }\n").unwrap_err();
    assert_eq!(err.key, "pacing.iam.per_second", "{err}");
    assert!(err.message.contains("1 to 10000"), "{err}");
    let err = parse("[pacing]\napigateway = { per_second = 5, burst = -1 }\n").unwrap_err();
    assert_eq!(err.key, "pacing.apigateway.burst", "{err}");
    let err = parse("[pacing]\nlambda = { per_second = 5 }\n").unwrap_err();
    assert_eq!(err.line, 2, "{err}");
    assert!(err.message.contains("lambda"), "{err}");
}

#[test]
fn member_role_arn_follows_the_template_path() {
    let accounts = parse("[accounts]\nids = [\"222233334444\"]\nexternal_id = \"abc-123\"\n")
        .unwrap()
        .accounts;
    assert!(accounts.is_multi_account());
    assert_eq!(
        accounts.external_id.as_ref().map(ExternalId::expose),
        Some("abc-123")
    );
    assert_eq!(
        accounts.member_role_arn("aws", &accounts.ids[0]),
        "arn:aws:iam::222233334444:role/keyrotor/KeyRotorMember"
    );
    assert!(!parse("").unwrap().accounts.is_multi_account());
}

#[test]
fn the_external_id_is_never_printed_by_debug_display_toml_or_json() {
    let p =
        parse("[accounts]\nids = [\"222233334444\"]\nexternal_id = \"s3cr3t-ext-id\"\n").unwrap();
    let shown = [
        format!("{p:?}"),
        format!("{}", p.accounts.external_id.as_ref().unwrap()),
        toml::to_string_pretty(&p).unwrap(),
        serde_json::to_string(&p).unwrap(),
    ];
    for text in &shown {
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("<redacted, 13 chars>"), "{text}");
    }
    let err = parse("[accounts]\nexternal_id = \"s3cr3t with space\"\n").unwrap_err();
    assert_eq!((err.line, err.key.as_str()), (2, "accounts.external_id"));
    assert!(!err.to_string().contains("s3cr3t"), "{err}");
}

#[test]
fn external_id_secret_names_a_secret_and_excludes_an_inline_external_id() {
    let a =
        parse("[accounts]\norganization = true\nexternal_id_secret = \"keyrotor/external-id\"\n")
            .unwrap()
            .accounts;
    assert_eq!(
        a.external_id_secret.as_deref(),
        Some("keyrotor/external-id")
    );
    let arn = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:keyrotor/ext-AbCdEf";
    let a = parse(&format!("[accounts]\nexternal_id_secret = \"{arn}\"\n"))
        .unwrap()
        .accounts;
    assert_eq!(a.external_id_secret.as_deref(), Some(arn));

    let err = parse("[accounts]\nexternal_id_secret = \"has space\"\n").unwrap_err();
    assert_eq!(
        (err.line, err.key.as_str()),
        (2, "accounts.external_id_secret")
    );
    let err = parse(
        "[accounts]\nexternal_id = \"abc-123\"\nexternal_id_secret = \"keyrotor/external-id\"\n",
    )
    .unwrap_err();
    assert_eq!(
        (err.line, err.key.as_str()),
        (3, "accounts.external_id_secret")
    );
    assert!(
        err.message
            .contains("accounts.external_id and accounts.external_id_secret"),
        "{err}"
    );
}

#[test]
fn the_environment_names_the_external_id_secret_over_the_policy() {
    let from_policy = parse("[accounts]\nexternal_id_secret = \"from-policy\"\n")
        .unwrap()
        .accounts;
    assert_eq!(
        from_policy.external_id_source(None),
        Ok(ExternalIdSource::Secret {
            id: "from-policy".into(),
            from: "[accounts] external_id_secret"
        })
    );
    assert_eq!(
        from_policy.external_id_source(Some(" from-env ")),
        Ok(ExternalIdSource::Secret {
            id: "from-env".into(),
            from: EXTERNAL_ID_SECRET_ENV
        })
    );
    // Blank counts as unset.
    assert!(matches!(
        from_policy.external_id_source(Some("  ")),
        Ok(ExternalIdSource::Secret {
            from: "[accounts] external_id_secret",
            ..
        })
    ));
    let e = from_policy
        .external_id_source(Some("bad name"))
        .unwrap_err();
    assert!(e.contains(EXTERNAL_ID_SECRET_ENV), "{e}");

    let inline = parse("[accounts]\nexternal_id = \"abc-123\"\n")
        .unwrap()
        .accounts;
    assert!(matches!(
        inline.external_id_source(None),
        Ok(ExternalIdSource::Inline(id)) if id.expose() == "abc-123"
    ));
    let e = inline.external_id_source(Some("from-env")).unwrap_err();
    assert!(
        e.contains(EXTERNAL_ID_SECRET_ENV) && e.contains("[accounts] external_id"),
        "{e}"
    );
    assert!(!e.contains("abc-123"), "{e}");
    assert_eq!(
        parse("").unwrap().accounts.external_id_source(None),
        Ok(ExternalIdSource::None)
    );
}

#[test]
fn regions_accept_real_region_names() {
    for region in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "ap-southeast-4",
    ] {
        assert!(is_region(region), "{region}");
    }
    for region in ["us-east", "US-EAST-1", "useast1", "us-east-0"] {
        assert!(!is_region(region), "{region}");
    }
}

#[test]
fn error_display_shows_file_line_key_and_source() {
    let err = parse("[iam_keys]\nwarn_days = 999\n").unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.starts_with("keyrotor.toml:2:13: iam_keys.warn_days: 999 is out of range"),
        "{shown}"
    );
    assert!(shown.contains("warn_days = 999"), "{shown}");
}

#[test]
fn malformed_toml_is_rejected_not_panicked() {
    for doc in [
        "[iam_keys",
        "mode = ",
        "= 3",
        "[iam_keys]\n[iam_keys]\n",
        "\u{0}",
    ] {
        assert!(parse(doc).is_err(), "{doc:?}");
    }
}
