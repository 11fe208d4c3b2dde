//! Organizations fan-out against the emulator: an organization with a management account
//! (where keyrotor runs and keeps its tables) and three member accounts, two with the member
//! role of infra/member-role.yaml (trust policy requiring the external id) and one without.
//! `keyrotor plan` and `keyrotor sweep --kind iam-keys` work in every account, report per
//! account, keep the failing account from stopping the others, assume each member role once
//! per run, and record everything in the management account's audit table.

mod support;

use std::io::Write;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use support::{PolicyText, World, run, seed, seed::EXTERNAL_ID, stderr};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

struct Org {
    management: World,
    /// (account, name), member accounts in creation order.
    members: Vec<(World, String)>,
}

/// A user whose only key was created 60 days ago and never used: due for a warning.
async fn idle_user(world: &World, name: &str) -> String {
    world.set_clock(&(now() - Duration::days(60)).to_rfc3339());
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, name, &[]).await;
    world.set_clock(&now().to_rfc3339());
    key.id
}

async fn organization() -> Org {
    let management = World::new();
    let org = aws_sdk_organizations::Client::new(&management.sdk().await);
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let mut members = Vec::new();
    for name in ["payments", "search", "legacy"] {
        let status = org
            .create_account()
            .account_name(name)
            .email(format!("{name}@example.com"))
            .send()
            .await
            .unwrap();
        let id = status
            .create_account_status()
            .and_then(|s| s.account_id())
            .expect("the new account's id")
            .to_owned();
        members.push((management.other(&id), name.to_owned()));
    }
    // payments and search carry the member role; legacy was never set up.
    for (world, name) in &members {
        if name != "legacy" {
            seed::member_role(world, &management.account).await;
        }
    }
    Org {
        management,
        members,
    }
}

fn policy(extra: &str) -> tempfile::NamedTempFile {
    PolicyText::mode("enforce")
        .with(&format!(
            "[accounts]\norganization = true\nconcurrency = 2\nexternal_id = \"{EXTERNAL_ID}\"\n"
        ))
        .with(extra)
        .file()
}

fn keyrotor(org: &Org, policy: &tempfile::NamedTempFile, args: &[&str]) -> std::process::Output {
    run(org
        .management
        .keyrotor()
        .env("KEYROTOR_NOW", now().to_rfc3339())
        .arg("--config")
        .arg(policy.path())
        .args(args))
}

fn account<'a>(out: &'a Value, id: &str) -> &'a Value {
    out["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account"] == id)
        .unwrap_or_else(|| panic!("account {id} is not in {out}"))
}

/// `"aws_calls"` of `--call-stats`.
fn calls(out: &std::process::Output) -> Value {
    stderr(out)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("aws_calls").is_some())
        .map(|v| v["aws_calls"].clone())
        .expect("--call-stats line")
}

#[tokio::test]
async fn a_sweep_works_in_every_member_account_and_one_that_cannot_be_entered_does_not_stop_the_others()
 {
    // GIVEN an organization whose payments and search accounts each have an idle key, and
    // whose legacy account has one too but no member role
    let org = organization().await;
    let mut keys = Vec::new();
    for (world, name) in &org.members {
        keys.push(idle_user(world, &format!("{name}-app")).await);
    }
    let policy = policy("");
    let init = keyrotor(&org, &policy, &["init"]);
    assert!(init.status.success(), "init: {}", stderr(&init));

    // WHEN the IAM key sweep runs over the organization
    let out = keyrotor(
        &org,
        &policy,
        &[
            "sweep",
            "--kind",
            "iam-keys",
            "--output",
            "json",
            "--call-stats",
        ],
    );

    // THEN it exits 4 (an account failed) and reports every account
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    let done: Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    assert_eq!(done["accounts"].as_array().unwrap().len(), 4, "{done}");
    assert_eq!(
        (done["succeeded"].as_u64(), done["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let home = account(&done, &org.management.account);
    assert_eq!(
        (home["home"].as_bool(), home["status"].as_str()),
        (Some(true), Some("succeeded"))
    );

    // the two reachable members had their idle key warned, each in its own account
    for ((world, name), key) in org.members.iter().zip(&keys).take(2) {
        let a = account(&done, &world.account);
        assert_eq!(a["status"], "succeeded", "{a}");
        assert_eq!(a["name"], name.as_str());
        let applied = a["result"]["applied"].as_array().unwrap();
        assert_eq!(applied.len(), 1, "{a}");
        assert_eq!(applied[0]["key"], key.as_str());
        assert_eq!(applied[0]["action"], "warn");
        assert_eq!(applied[0]["status"], "done");
    }
    // legacy failed with what to do about it, and nothing was done there
    let legacy = account(&done, &org.members[2].0.account);
    assert_eq!(legacy["status"], "failed");
    let error = legacy["error"].as_str().unwrap();
    assert!(
        error.contains("sts:AssumeRole")
            && error.contains("KeyRotorMember")
            && error.contains("member-role.yaml"),
        "{error}"
    );
    assert_eq!(legacy["exit_code"], 3);

    // each member role was assumed once for the whole run, not per client or call
    let calls = calls(&out);
    assert_eq!(calls["sts:AssumeRole"], 3, "{calls}");
    assert!(
        calls["iam:ListAccessKeys"].as_u64().unwrap() >= 2,
        "{calls}"
    );

    // the audit trail is in the management account, with the member account on each record
    let audit = run(org
        .management
        .keyrotor()
        .arg("--config")
        .arg(policy.path())
        .args(["audit", "list", "--since", "3650d", "--output", "json"]));
    assert!(audit.status.success(), "{}", stderr(&audit));
    let records: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let text = records.to_string();
    for (world, _) in org.members.iter().take(2) {
        assert!(
            text.contains(&world.account),
            "no record names {}: {text}",
            world.account
        );
    }
    assert!(
        !text.contains(&org.members[2].0.account),
        "legacy was touched: {text}"
    );
    // and no member account got keyrotor tables of its own
    for (world, _) in &org.members {
        let tables = aws_sdk_dynamodb::Client::new(&world.sdk().await)
            .list_tables()
            .send()
            .await
            .unwrap();
        assert!(
            tables.table_names().is_empty(),
            "{:?}",
            tables.table_names()
        );
    }
    let verify = run(org
        .management
        .keyrotor()
        .arg("--config")
        .arg(policy.path())
        .args(["audit", "verify"]));
    assert!(verify.status.success(), "{}", stderr(&verify));
}

#[tokio::test]
async fn a_plan_over_listed_accounts_reports_each_and_needs_the_external_id() {
    // GIVEN an organization with an idle key in payments
    let org = organization().await;
    let payments = &org.members[0].0;
    let key = idle_user(payments, "payments-app").await;
    let listed = policy("");
    let init = keyrotor(&org, &listed, &["init"]);
    assert!(init.status.success(), "init: {}", stderr(&init));

    // WHEN the plan runs over the organization, as a table
    let out = keyrotor(&org, &listed, &["plan", "--kind", "iam-keys"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    // THEN every account has its section, the failure is named, and the summary counts
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        table.contains(&format!(
            "== Account {} (payments): succeeded",
            payments.account
        )),
        "{table}"
    );
    assert!(table.contains(&key), "{table}");
    assert!(
        table.contains(&format!(
            "== Account {} (legacy): failed",
            org.members[2].0.account
        )),
        "{table}"
    );
    assert!(
        table.contains("4 account(s): 3 succeeded, 1 failed"),
        "{table}"
    );

    // WHEN the external id is wrong, no member account can be entered
    let mut wrong = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        wrong,
        "[accounts]\nids = [\"{}\", \"{}\"]\nexternal_id = \"not-the-right-one\"",
        payments.account, org.members[1].0.account
    )
    .unwrap();
    let out = keyrotor(
        &org,
        &wrong,
        &["plan", "--kind", "iam-keys", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(4));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    // only the listed ids: the management account is not among them
    assert_eq!(done["accounts"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(done["failed"], 2, "{done}");
    assert!(
        account(&done, &payments.account)["error"]
            .as_str()
            .unwrap()
            .contains("ExternalId"),
        "{done}"
    );
}

/// The deployed functions' jobs, in process, over the management account's context.
async fn lambda_context(org: &Org, policy_text: &str) -> keyrotor::lambda::Context {
    let policy = keyrotor::domain::policy::Policy::from_toml(policy_text, "test").unwrap();
    keyrotor::lambda::Context {
        aws: keyrotor::aws::Aws::from_config(org.management.sdk().await)
            .with_pacing(&policy.pacing),
        policy,
        region: support::REGION.to_owned(),
        fixed_now: Some(now()),
        items_bucket: None,
        inline_items: 40,
        caller: None,
    }
}

#[tokio::test]
async fn the_deployed_jobs_fan_out_and_rotate_an_api_key_in_its_member_account() {
    use keyrotor::lambda::{Job, run_job};
    // GIVEN an organization whose payments account holds the demo world (an API key due)
    let org = organization().await;
    let payments = &org.members[0].0;
    payments.seed_demo(&now().to_rfc3339());
    let search_key = idle_user(&org.members[1].0, "search-app").await;
    let ctx = lambda_context(
        &org,
        &format!(
            "mode = \"enforce\"\n[accounts]\norganization = true\nexternal_id = \"{EXTERNAL_ID}\"\n[notifications]\ndefault_contact = \"security@example.com\"\n"
        ),
    )
    .await;
    keyrotor::steps::init(
        &keyrotor::aws::dynamodb::DynamoTables::new(ctx.aws.dynamodb()),
        &ctx.policy,
    )
    .await
    .unwrap();

    // WHEN the IAM key job runs
    let iam = run_job(&ctx, Job::IamKeys, json!({})).await.unwrap();
    // THEN it reports every account, the unreachable one as failed, and counts it
    assert_eq!(iam["accounts"].as_array().unwrap().len(), 4, "{iam}");
    assert_eq!(iam["failed_accounts"], 1, "{iam}");
    let search = account(&iam, &org.members[1].0.account);
    assert_eq!(search["status"], "succeeded", "{search}");
    assert!(
        search["result"]["applied"]
            .to_string()
            .contains(&search_key),
        "{search}"
    );
    assert_eq!(
        account(&iam, &org.members[2].0.account)["error_type"],
        "KeyRotor.AccessDenied"
    );

    // WHEN the plan job runs, its items name the account of each key due
    let plan = run_job(&ctx, Job::Plan, json!({})).await.unwrap();
    let items = plan["api_keys"].as_array().unwrap();
    assert!(!items.is_empty(), "{plan}");
    assert!(
        items
            .iter()
            .all(|i| i["account"] == payments.account.as_str()),
        "{plan}"
    );
    assert_eq!(plan["account"], org.management.account.as_str());

    // WHEN a key's rotation runs with its item's account
    let item = &items[0];
    let done = run_job(
        &ctx,
        Job::ApiKey,
        json!({"key": item["key"], "account": item["account"]}),
    )
    .await
    .unwrap();
    // THEN the replacement exists in payments, not in the management account
    let new_key = done["new_key"].as_str().expect("a replacement").to_owned();
    let in_payments = aws_sdk_apigateway::Client::new(&payments.sdk().await)
        .get_api_key()
        .api_key(&new_key)
        .send()
        .await;
    assert!(in_payments.is_ok(), "{new_key} is not in payments");
    let in_management = aws_sdk_apigateway::Client::new(&org.management.sdk().await)
        .get_api_key()
        .api_key(&new_key)
        .send()
        .await;
    assert!(
        in_management.is_err(),
        "{new_key} was made in the management account"
    );

    // WHEN a state of that rotation fails, its record names the member account
    let recorded = run_job(
        &ctx,
        Job::RecordFailure,
        json!({
            "what": "rotation", "kind": "api-keys", "resource": item["key"],
            "account": item["account"],
            "error": {"Error": "KeyRotor.Failed", "Cause": "injected for the test"}
        }),
    )
    .await
    .unwrap();
    assert!(recorded.is_object(), "{recorded}");
    let store = keyrotor::aws::dynamodb::DynamoAuditStore::new(
        ctx.aws.dynamodb(),
        ctx.policy.audit.table.clone(),
    );
    let records = keyrotor::ports::AuditStore::all(&store).await.unwrap();
    let failed = records
        .into_iter()
        .filter_map(Result::ok)
        .find(|r| r.action == "rotation" && r.reason == "KeyRotor.Failed")
        .expect("the failure record");
    assert!(
        failed.resource.contains(&payments.account),
        "{} does not name {}",
        failed.resource,
        payments.account
    );
}

#[tokio::test]
async fn the_external_id_is_read_from_its_secret_once_per_run_and_never_shown() {
    // GIVEN an organization whose member role's external id is kept in a Secrets Manager
    // secret of the management account, and a policy naming that secret, not the id
    let org = organization().await;
    let (payments, search) = (&org.members[0].0, &org.members[1].0);
    let payments_key = idle_user(payments, "payments-app").await;
    let search_key = idle_user(search, "search-app").await;
    let secrets = aws_sdk_secretsmanager::Client::new(&org.management.sdk().await);
    secrets
        .create_secret()
        .name("keyrotor/member-external-id")
        .secret_string(format!("{EXTERNAL_ID}\n"))
        .send()
        .await
        .unwrap();
    let write = |text: String| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{text}").unwrap();
        file
    };
    let ids = format!("ids = [\"{}\", \"{}\"]", payments.account, search.account);
    let from_secret = write(format!(
        "[accounts]\n{ids}\nexternal_id_secret = \"keyrotor/member-external-id\""
    ));
    let init = keyrotor(&org, &from_secret, &["init"]);
    assert!(init.status.success(), "init: {}", stderr(&init));

    // WHEN the plan runs over both member accounts
    let out = keyrotor(
        &org,
        &from_secret,
        &[
            "plan",
            "--kind",
            "iam-keys",
            "--output",
            "json",
            "--call-stats",
        ],
    );

    // THEN both are entered with the id from the secret and planned
    assert!(out.status.success(), "{}", stderr(&out));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (world, key) in [(payments, &payments_key), (search, &search_key)] {
        let a = account(&done, &world.account);
        assert_eq!(a["status"], "succeeded", "{a}");
        assert!(a.to_string().contains(key.as_str()), "{a}");
    }
    // the secret was read once for the run, each role assumed once
    let calls = calls(&out);
    assert_eq!(calls["secretsmanager:GetSecretValue"], 1, "{calls}");
    assert_eq!(calls["sts:AssumeRole"], 2, "{calls}");
    // and the id itself appears nowhere in the output
    assert!(!String::from_utf8_lossy(&out.stdout).contains(EXTERNAL_ID));
    assert!(!stderr(&out).contains(EXTERNAL_ID));

    // WHEN the id is written in the policy instead, `policy check` shows it redacted
    let inline = write(format!(
        "[accounts]\n{ids}\nexternal_id = \"{EXTERNAL_ID}\""
    ));
    for format in ["table", "json"] {
        let out = keyrotor(&org, &inline, &["policy", "check", "--output", format]);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(!text.contains(EXTERNAL_ID), "{text}");
        assert!(text.contains("<redacted, 25 chars>"), "{text}");
    }

    // WHEN the secret holds something else than an id, no account is entered, and the
    // error names the secret and the fix, never the value
    secrets
        .put_secret_value()
        .secret_id("keyrotor/member-external-id")
        .secret_string("{\"ExternalId\": \"not a bare id\"}")
        .send()
        .await
        .unwrap();
    let out = keyrotor(
        &org,
        &from_secret,
        &["plan", "--kind", "iam-keys", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let done: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = account(&done, &payments.account)["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("external_id_secret = keyrotor/member-external-id")
            && error.contains("SecretString")
            && !error.contains("not a bare id"),
        "{error}"
    );

    // WHEN both the secret and an inline id are set, the policy is refused naming both
    let both = write(format!(
        "[accounts]\n{ids}\nexternal_id = \"{EXTERNAL_ID}\"\nexternal_id_secret = \"keyrotor/member-external-id\""
    ));
    let out = keyrotor(&org, &both, &["policy", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("accounts.external_id and accounts.external_id_secret"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(EXTERNAL_ID), "{}", stderr(&out));
}

#[tokio::test]
async fn a_blocked_migration_step_in_a_member_account_counts_as_failed_in_the_fan_out() {
    use keyrotor::lambda::{Job, run_job};
    // GIVEN an organization whose search account has a migration record keyrotor cannot
    // back with IAM (no such role): its next step is blocked
    let org = organization().await;
    let search = &org.members[1].0;
    idle_user(search, "search-app").await;
    let ctx = lambda_context(
        &org,
        &format!(
            "mode = \"enforce\"\n[accounts]\norganization = true\nexternal_id = \"{EXTERNAL_ID}\"\n[migration]\nenabled = true\n"
        ),
    )
    .await;
    keyrotor::steps::init(
        &keyrotor::aws::dynamodb::DynamoTables::new(ctx.aws.dynamodb()),
        &ctx.policy,
    )
    .await
    .unwrap();
    let text = aws_sdk_dynamodb::types::AttributeValue::S;
    let at = |days: i64| (now() - Duration::days(days)).to_rfc3339();
    aws_sdk_dynamodb::Client::new(&org.management.sdk().await)
        .put_item()
        .table_name(ctx.policy.audit.state_table.clone())
        .item("pk", text(format!("migration#{}", search.account)))
        .item("sk", text("search-app".into()))
        .item(
            "role_arn",
            text(format!(
                "arn:aws:iam::{}:role/migrated/migrated-search-app",
                search.account
            )),
        )
        .item("stage", text("keys-idle".into()))
        .item("since", text(at(40)))
        .item("provisioned_at", text(at(50)))
        .item("adopted_at", text(at(45)))
        .item(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();

    // WHEN the migration job fans out
    let done = run_job(&ctx, Job::Migration, json!({})).await.unwrap();

    // THEN the blocked step in search is counted, besides the account that cannot be entered
    let entry = account(&done, &search.account);
    assert_eq!(entry["status"], "succeeded", "{entry}");
    assert_eq!(entry["result"]["failed"], 1, "{entry}");
    assert_eq!(done["failed_accounts"], 1, "{done}");
    assert_eq!(done["failed"], 2, "{done}");
}
