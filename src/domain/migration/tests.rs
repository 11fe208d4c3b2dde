//! Unit tests of migrations: identities, trust, role plans, records and stages.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::domain::policy::Policy;

fn t(d: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(d)
}

#[test]
fn identities_parse_and_bad_values_name_the_accepted_forms() {
    assert!(matches!(
        WorkloadIdentity::parse("arn:aws:iam::123456789012:role/app-runner"),
        Ok(WorkloadIdentity::AwsRole { .. })
    ));
    assert!(matches!(
        WorkloadIdentity::parse("ec2.amazonaws.com"),
        Ok(WorkloadIdentity::Service { .. })
    ));
    assert!(matches!(
        WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app:ref:refs/heads/main"),
        Ok(WorkloadIdentity::Oidc { ref subject, .. }) if subject == "repo:acme/app:ref:refs/heads/main"
    ));
    assert!(matches!(
        WorkloadIdentity::parse(
            "rolesanywhere:arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a1,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1"
        ),
        Ok(WorkloadIdentity::RolesAnywhere { .. })
    ));
    for bad in [
        "",
        "bob",
        "arn:aws:iam::123:role/x",
        "arn:aws:iam::123456789012:user/bob",
        "oidc:token.actions.githubusercontent.com:*",
        "rolesanywhere:arn:aws:iam::123456789012:role/x",
        "rolesanywhere:arn:aws:rolesanywhere:*:123456789012:trust-anchor/*,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
        "rolesanywhere:arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/a?,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
        "rolesanywhere:arn:aws:rolesanywhere::123456789012:trust-anchor/a1,arn:aws:rolesanywhere:us-east-1:123456789012:profile/p1",
        "EC2.amazonaws.com",
    ] {
        let e = WorkloadIdentity::parse(bad).unwrap_err();
        assert!(e.contains("accepted forms"), "{bad}: {e}");
    }
}

#[test]
fn trust_policies_fit_each_identity() {
    let oidc = WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app:*")
        .unwrap();
    let doc = oidc.trust_policy(&TrustScope::account("aws", "123456789012"));
    let st = &doc["Statement"][0];
    assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        st["Principal"]["Federated"],
        "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    );
    assert_eq!(
        st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        "repo:acme/app:*"
    );
    let profile = oidc.client_profile(
        "app",
        "arn:aws:iam::123456789012:role/migrated/migrated-app",
        3600,
    );
    assert!(profile.contains("web_identity_token_file"), "{profile}");
}

#[test]
fn long_user_names_get_distinct_role_names() {
    let a = format!("{}-a", "x".repeat(60));
    let b = format!("{}-b", "x".repeat(60));
    assert_ne!(role_name(&a), role_name(&b));
    assert!(role_name(&a).len() <= 64);
    assert_eq!(role_name("app"), "migrated-app");
    assert_eq!(role_name(&a).len(), 64);
    assert!(role_name(&a).starts_with("migrated-xxx"));
}

#[test]
fn limits_are_checked_before_anything_is_created() {
    let identity = WorkloadIdentity::parse("ec2.amazonaws.com").unwrap();
    let permissions = Permissions {
        managed: (0..11)
            .map(|i| format!("arn:aws:iam::aws:policy/P{i}"))
            .collect(),
        inline: vec![(
            "user".into(),
            "big".into(),
            json!({"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "x".repeat(11_000)}]}),
        )],
    };
    let plan = role_plan(
        "app",
        &TrustScope::account("aws", "123456789012"),
        &identity,
        &permissions,
        &Policy::default(),
        false,
    );
    assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
    assert!(plan.problems[0].contains("quota of 10"));
    assert!(plan.problems[1].contains("10240"));
}

#[test]
fn a_migration_walks_to_migrated_and_a_key_used_again_regresses_it() {
    let p = Policy::default(); // idle 30, guard 7, delete_after 30
    let mut r = MigrationRecord {
        user: "app".into(),
        role_arn: "arn".into(),
        stage: MigrationStage::RoleProvisioned,
        since: t(0),
        provisioned_at: t(0),
        adopted_at: None,
        deactivated: Vec::new(),
        migrate_to: None,
        version: 1,
    };
    let mut f = MigrationFacts {
        role_last_used: None,
        keys_last_used: Some(t(-1)),
        active_keys: 1,
        keys: 1,
    };
    assert_eq!(next(&r, &f, &p), None, "waits for the role's first use");
    f.role_last_used = Some(t(2));
    let n = next(&r, &f, &p).unwrap();
    assert_eq!((n.to, n.at), (MigrationStage::Adopted, t(2)));
    r.stage = MigrationStage::Adopted;
    r.since = t(3);
    r.adopted_at = Some(t(3));
    assert_eq!(next(&r, &f, &p).unwrap().at, t(33));
    r.stage = MigrationStage::KeysIdle;
    r.since = t(33);
    assert_eq!(
        next(&r, &f, &p).unwrap().change,
        MigrationChange::AttachGuard
    );
    r.stage = MigrationStage::Guarded;
    let n = next(&r, &f, &p).unwrap();
    assert_eq!((n.change, n.at), (MigrationChange::DeactivateKeys, t(40)));
    f.keys_last_used = Some(t(35));
    let n = next(&r, &f, &p).unwrap();
    assert_eq!(n.to, MigrationStage::Regressed);
}

const HOME: &str = "111111111111";
const MEMBER: &str = "222222222222";
const OUTSIDE: &str = "999999999999";

fn policy(toml: &str) -> Policy {
    Policy::from_toml(toml, "keyrotor.toml").unwrap()
}

fn org_scope(id: Option<&str>) -> TrustScope {
    TrustScope {
        organization_accounts: Some(BTreeSet::from([HOME.to_owned(), MEMBER.to_owned()])),
        organization_id: id.map(str::to_owned),
        ..TrustScope::account("aws", HOME)
    }
}

fn role(account: &str) -> WorkloadIdentity {
    WorkloadIdentity::parse(&format!("arn:aws:iam::{account}:role/runner")).unwrap()
}

fn some_permissions() -> Permissions {
    Permissions {
        managed: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        inline: Vec::new(),
    }
}

#[test]
fn a_role_trust_pins_the_principal_account_and_the_organization_of_a_member() {
    let conditions = |scope: &TrustScope, account: &str| {
        role(account).trust_policy(scope)["Statement"][0]["Condition"]["StringEquals"].clone()
    };
    assert_eq!(
        conditions(&org_scope(Some("o-abc123")), MEMBER),
        json!({"aws:PrincipalAccount": MEMBER, "aws:PrincipalOrgID": "o-abc123"})
    );
    // keyrotor's own account: the account pin is tighter than the organization.
    assert_eq!(
        conditions(&org_scope(Some("o-abc123")), HOME),
        json!({"aws:PrincipalAccount": HOME})
    );
    // An id that could not be read, or an account outside the organization: the pin.
    assert_eq!(
        conditions(&org_scope(None), MEMBER),
        json!({"aws:PrincipalAccount": MEMBER})
    );
    assert_eq!(
        conditions(&org_scope(Some("o-abc123")), OUTSIDE),
        json!({"aws:PrincipalAccount": OUTSIDE})
    );
}

#[test]
fn a_service_principal_may_assume_the_role_only_for_the_users_account() {
    let service = WorkloadIdentity::parse("ec2.amazonaws.com").unwrap();
    let doc = service.trust_policy(&TrustScope::account("aws", HOME));
    assert_eq!(
        doc["Statement"][0]["Condition"],
        json!({"StringEquals": {"aws:SourceAccount": HOME}})
    );
}

#[test]
fn a_role_outside_the_organization_and_the_allow_list_is_a_problem_unless_allowed() {
    let p = policy("");
    let plan = |scope: &TrustScope, account: &str, allow: bool, p: &Policy| {
        role_plan("app", scope, &role(account), &some_permissions(), p, allow)
    };
    let refused = plan(&org_scope(None), OUTSIDE, false, &p);
    assert_eq!(refused.problems.len(), 1, "{:?}", refused.problems);
    assert!(
        refused.problems[0].contains(OUTSIDE)
            && refused.problems[0].contains("allowed_accounts")
            && refused.problems[0].contains("--allow-external"),
        "{}",
        refused.problems[0]
    );
    assert_eq!(refused.external, None);
    // Without an organization, only keyrotor's own account is trusted.
    let single = TrustScope::account("aws", HOME);
    assert!(plan(&single, HOME, false, &p).problems.is_empty());
    assert_eq!(plan(&single, MEMBER, false, &p).problems.len(), 1);
    // The organization's accounts and the listed ones are.
    assert!(
        plan(&org_scope(None), MEMBER, false, &p)
            .problems
            .is_empty()
    );
    let listed = policy(&format!(
        "[migration]\nallowed_accounts = [\"{OUTSIDE}\"]\n"
    ));
    assert!(plan(&single, OUTSIDE, false, &listed).problems.is_empty());
    // --allow-external: no problem, but the reason is kept to be shown and audited.
    let allowed = plan(&org_scope(None), OUTSIDE, true, &p);
    assert!(allowed.problems.is_empty(), "{:?}", allowed.problems);
    assert!(allowed.external.as_deref().unwrap().contains(OUTSIDE));
}

#[test]
fn an_oidc_subject_must_match_an_allow_list_entry() {
    assert!(oidc_subject_matches(
        "repo:acme/*",
        "repo:acme/app:ref:refs/heads/main"
    ));
    assert!(!oidc_subject_matches("repo:acme/*", "repo:acmeevil/app"));
    assert!(oidc_subject_matches("repo:acme/app", "repo:acme/app"));
    assert!(!oidc_subject_matches("repo:acme/app", "repo:acme/app2"));
    let identity =
        WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:evil/x").unwrap();
    let scope = TrustScope::account("aws", HOME);
    let none = role_plan(
        "app",
        &scope,
        &identity,
        &some_permissions(),
        &policy(""),
        false,
    );
    assert!(
        none.problems[0].contains("allowed_oidc_subjects")
            && none.problems[0].contains("no OIDC subject is trusted"),
        "{:?}",
        none.problems
    );
    let listed = policy("[migration]\nallowed_oidc_subjects = [\"repo:acme/*\"]\n");
    let other = role_plan(
        "app",
        &scope,
        &identity,
        &some_permissions(),
        &listed,
        false,
    );
    assert!(
        other.problems[0].contains("repo:acme/*"),
        "{:?}",
        other.problems
    );
    let ours =
        WorkloadIdentity::parse("oidc:token.actions.githubusercontent.com:repo:acme/app").unwrap();
    assert!(
        role_plan("app", &scope, &ours, &some_permissions(), &listed, false)
            .problems
            .is_empty()
    );
}

#[test]
fn migration_policy_keys_parse_and_bad_values_name_the_key_and_the_fix() {
    let p = policy(
        "[migration]\nallowed_accounts = [\"222222222222\"]\nallowed_oidc_subjects = [\"repo:acme/*\", \"repo:acme/app:ref:refs/heads/main\"]\npermissions_boundary = \"arn:aws:iam::111111111111:policy/boundaries/workloads\"\n",
    );
    assert_eq!(p.migration.allowed_accounts[0].as_str(), "222222222222");
    assert_eq!(p.migration.allowed_oidc_subjects.len(), 2);
    assert_eq!(
        p.migration.permissions_boundary.as_deref(),
        Some("arn:aws:iam::111111111111:policy/boundaries/workloads")
    );
    for (text, key, fix) in [
        (
            "allowed_accounts = [\"12345\"]",
            "migration.allowed_accounts",
            "12-digit",
        ),
        (
            "allowed_oidc_subjects = [\"*\"]",
            "migration.allowed_oidc_subjects",
            "prefix ending in *",
        ),
        (
            "allowed_oidc_subjects = [\"repo:*/app\"]",
            "migration.allowed_oidc_subjects",
            "only at the end",
        ),
        (
            "permissions_boundary = \"arn:aws:iam::111111111111:role/x\"",
            "migration.permissions_boundary",
            "policy/<name>",
        ),
    ] {
        let e = Policy::from_toml(&format!("[migration]\n{text}\n"), "keyrotor.toml").unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.message.contains(fix), "{text}: {e}");
        assert_eq!(e.line, 2, "{text}: {e}");
    }
}

#[test]
fn policy_documents_compare_as_sets_whatever_the_order() {
    let a = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Principal": {"AWS": "x"}},
        {"Effect": "Deny", "Action": "*", "Resource": "*"}
    ]});
    let b = json!({"Statement": [
        {"Resource": ["*"], "Action": "*", "Effect": "Deny"},
        {"Principal": {"AWS": ["x"]}, "Action": ["sts:TagSession", "sts:AssumeRole"], "Effect": "Allow"}
    ], "Version": "2012-10-17"});
    assert!(same_document(&a, &b));
    let c = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Principal": {"AWS": "y"}},
        {"Effect": "Deny", "Action": "*", "Resource": "*"}
    ]});
    assert!(!same_document(&a, &c));
    assert!(!same_document(
        &guard_policy(),
        &json!({"Version": "2012-10-17", "Statement": []})
    ));
}

fn planned() -> RolePlan {
    role_plan(
        "app",
        &TrustScope::account("aws", HOME),
        &role(HOME),
        &some_permissions(),
        &policy(
            "[migration]\npermissions_boundary = \"arn:aws:iam::aws:policy/PowerUserAccess\"\n",
        ),
        false,
    )
}

#[test]
fn only_the_planned_role_is_adopted() {
    let plan = planned();
    assert_eq!(
        plan.arn,
        format!("arn:aws:iam::{HOME}:role/migrated/migrated-app")
    );
    let trust = plan.trust_policy.to_string();
    let ok = RoleSeen {
        arn: &plan.arn,
        migrated_from: Some("app"),
        trust_policy: &trust,
        permissions_boundary: Some("arn:aws:iam::aws:policy/PowerUserAccess"),
    };
    assert_eq!(matches_plan("app", ok, &plan), Ok(()));
    let other_trust = role(MEMBER)
        .trust_policy(&TrustScope::account("aws", HOME))
        .to_string();
    let e = matches_plan(
        "app",
        RoleSeen {
            trust_policy: &other_trust,
            ..ok
        },
        &plan,
    )
    .unwrap_err();
    assert!(e.contains("differs") && e.contains(MEMBER), "{e}");
    let e = matches_plan(
        "app",
        RoleSeen {
            migrated_from: Some("bob"),
            ..ok
        },
        &plan,
    )
    .unwrap_err();
    assert!(e.contains("\"bob\""), "{e}");
    let e = matches_plan(
        "app",
        RoleSeen {
            migrated_from: None,
            ..ok
        },
        &plan,
    )
    .unwrap_err();
    assert!(e.contains("absent"), "{e}");
    let legacy = format!("arn:aws:iam::{HOME}:role/keyrotor/migrated-app");
    assert!(matches_plan("app", RoleSeen { arn: &legacy, ..ok }, &plan).is_err());
    let e = matches_plan(
        "app",
        RoleSeen {
            permissions_boundary: None,
            ..ok
        },
        &plan,
    )
    .unwrap_err();
    assert!(e.contains("permissions boundary"), "{e}");
}

#[test]
fn a_migration_record_is_confirmed_only_by_the_users_tag_and_the_planned_role() {
    let plan = planned();
    let trust = plan.trust_policy.to_string();
    let tag = format!("arn:aws:iam::{HOME}:role/runner");
    let role_seen = RoleSeen {
        arn: &plan.arn,
        migrated_from: Some("app"),
        trust_policy: &trust,
        permissions_boundary: Some("arn:aws:iam::aws:policy/PowerUserAccess"),
    };
    let record = MigrationRecord {
        user: "app".into(),
        role_arn: plan.arn.clone(),
        stage: MigrationStage::KeysIdle,
        since: t(0),
        provisioned_at: t(0),
        adopted_at: Some(t(0)),
        deactivated: Vec::new(),
        migrate_to: Some(tag.clone()),
        version: 3,
    };
    assert_eq!(
        confirm(&record, Some(&tag), Ok(&plan), Some(role_seen)),
        Ok(())
    );
    let e = confirm(&record, None, Ok(&plan), Some(role_seen)).unwrap_err();
    assert!(e.contains("no longer tagged"), "{e}");
    let e = confirm(
        &record,
        Some("ec2.amazonaws.com"),
        Ok(&plan),
        Some(role_seen),
    )
    .unwrap_err();
    assert!(e.contains("names the workload identity"), "{e}");
    let e = confirm(&record, Some(&tag), Ok(&plan), None).unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    let e = confirm(&record, Some(&tag), Err("not a role"), Some(role_seen)).unwrap_err();
    assert!(e.contains("not a role"), "{e}");
    let forged = MigrationRecord {
        role_arn: format!("arn:aws:iam::{HOME}:role/keyrotor/keyrotor-app"),
        ..record.clone()
    };
    let e = confirm(&forged, Some(&tag), Ok(&plan), Some(role_seen)).unwrap_err();
    assert!(
        e.contains("earlier version") && e.contains("migrate rollback"),
        "{e}"
    );
    let wrong_trust = role(MEMBER)
        .trust_policy(&TrustScope::account("aws", HOME))
        .to_string();
    let e = confirm(
        &record,
        Some(&tag),
        Ok(&plan),
        Some(RoleSeen {
            trust_policy: &wrong_trust,
            ..role_seen
        }),
    )
    .unwrap_err();
    assert!(e.contains("differs"), "{e}");
}

#[test]
fn records_keep_the_identity_they_were_provisioned_for() {
    let record = MigrationRecord {
        user: "app".into(),
        role_arn: "arn:aws:iam::111111111111:role/migrated/migrated-app".into(),
        stage: MigrationStage::RoleProvisioned,
        since: t(0),
        provisioned_at: t(0),
        adopted_at: None,
        deactivated: Vec::new(),
        migrate_to: Some("ec2.amazonaws.com".into()),
        version: 1,
    };
    let back = MigrationRecord::from_item("app", 1, &record.attrs()).unwrap();
    assert_eq!(back, record);
    let mut old = record.attrs();
    old.remove("migrate_to");
    assert_eq!(
        MigrationRecord::from_item("app", 1, &old)
            .unwrap()
            .migrate_to,
        None
    );
    assert_eq!(
        guard_policy_arn("aws-us-gov", HOME),
        "arn:aws-us-gov:iam::111111111111:policy/keyrotor/keyrotor-migration-guard"
    );
}
