//! Migration from IAM user keys to a role against the emulator, with `KEYROTOR_NOW` and the
//! account clock stepping through adoption, idle keys, guard, deactivation and deletion; a
//! regression; a rollback; and a tag that names no valid identity.

mod support;

use std::io::Write;

use aws_sdk_iam::types::{StatusType, Tag};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use support::{REGION, World, ok, run, stderr};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap()
}

fn day(n: i64) -> String {
    (t0() + Duration::days(n)).to_rfc3339()
}

fn policy() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "mode = \"enforce\"\n[migration]\nenabled = true").unwrap();
    file
}

struct App {
    iam: aws_sdk_iam::Client,
    key: (String, String),
    managed_arn: String,
}

async fn sts_as(world: &World, id: &str, secret: &str, token: Option<&str>) -> aws_sdk_sts::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&world.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            id,
            secret,
            token.map(str::to_owned),
            None,
            "tests",
        ))
        .load()
        .await;
    aws_sdk_sts::Client::new(&config)
}

/// User `app` with a used key, a managed policy, an inline policy and a group with an
/// inline policy, tagged to move to role `app-runner`.
async fn app(world: &World, migrate_to: &str) -> App {
    world.set_clock(&day(0));
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    iam.create_user()
        .user_name("app")
        .tags(
            Tag::builder()
                .key("keyrotor:migrate-to")
                .value(migrate_to)
                .build()
                .unwrap(),
        )
        .tags(
            Tag::builder()
                .key("owner")
                .value("app-team@example.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let doc = |action: &str| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]})
            .to_string()
    };
    let managed = iam
        .create_policy()
        .policy_name("app-s3")
        .policy_document(doc("s3:GetObject"))
        .send()
        .await
        .unwrap();
    let managed_arn = managed.policy().unwrap().arn().unwrap().to_owned();
    iam.attach_user_policy()
        .user_name("app")
        .policy_arn(&managed_arn)
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("app")
        .policy_name("app-queue")
        .policy_document(doc("sqs:SendMessage"))
        .send()
        .await
        .unwrap();
    iam.create_group()
        .group_name("workers")
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("workers")
        .user_name("app")
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("workers")
        .policy_name("workers-logs")
        .policy_document(doc("logs:PutLogEvents"))
        .send()
        .await
        .unwrap();
    let key = iam
        .create_access_key()
        .user_name("app")
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    let key = (
        key.access_key_id().to_owned(),
        key.secret_access_key().to_owned(),
    );
    sts_as(world, &key.0, &key.1, None)
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    App {
        iam,
        key,
        managed_arn,
    }
}

impl App {
    async fn use_key(&self, world: &World, n: i64) {
        world.set_clock(&day(n));
        sts_as(world, &self.key.0, &self.key.1, None)
            .await
            .get_caller_identity()
            .send()
            .await
            .unwrap();
    }

    /// The workload assumes the new role and makes a call with its temporary credentials.
    async fn use_role(&self, world: &World, role_arn: &str, n: i64) {
        world.set_clock(&day(n));
        let sts = sts_as(world, "runner", "runner", None).await;
        let out = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name("app")
            .send()
            .await
            .expect("AssumeRole with the new role succeeds");
        let c = out.credentials().unwrap();
        sts_as(
            world,
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token()),
        )
        .await
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    }

    async fn key_status(&self) -> Option<StatusType> {
        self.iam
            .list_access_keys()
            .user_name("app")
            .send()
            .await
            .unwrap()
            .access_key_metadata()
            .first()
            .and_then(|k| k.status().cloned())
    }

    async fn guarded(&self) -> bool {
        self.iam
            .list_user_policies()
            .user_name("app")
            .send()
            .await
            .unwrap()
            .policy_names()
            .iter()
            .any(|n| n == "keyrotor-migration-guard")
    }
}

fn keyrotor(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> std::process::Command {
    world.set_clock(&day(n));
    let mut cmd = world.keyrotor();
    cmd.env("KEYROTOR_NOW", day(n))
        .arg("--config")
        .arg(policy.path());
    cmd
}

/// The stages a sweep moved `app` to.
fn sweep(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Vec<String> {
    let out =
        run(keyrotor(world, policy, n).args(["sweep", "--kind", "migration", "--output", "json"]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["status"], "done", "{t}");
            t["to"].as_str().unwrap().to_owned()
        })
        .collect()
}

async fn plan_and_apply(world: &World, app: &App, policy: &tempfile::NamedTempFile) -> String {
    let out = run(keyrotor(world, policy, 1).args(["migrate", "plan", "app", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    assert_eq!(
        plan["role"]["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        runner.as_str(),
        "{plan}"
    );
    assert_eq!(plan["role"]["managed_policies"], json!([app.managed_arn]));
    let inline = plan["role"]["inline_policy"]["Statement"]
        .as_array()
        .unwrap();
    let actions: Vec<&str> = inline
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["sqs:SendMessage", "logs:PutLogEvents"],
        "user and group inline policies merged"
    );
    assert_eq!(plan["keys"][0]["key"], app.key.0.as_str());
    assert!(plan["keys"][0]["last_used"].is_string(), "{plan}");
    let role_arn = plan["role"]["arn"].as_str().unwrap().to_owned();
    assert!(
        plan["client_profile"]
            .as_str()
            .unwrap()
            .contains(&format!("role_arn = {role_arn}"))
    );

    for _ in 0..2 {
        let out =
            run(keyrotor(world, policy, 1).args(["migrate", "apply", "app", "--output", "json"]));
        let applied: Value = serde_json::from_str(&ok(&out)).unwrap();
        assert_eq!(applied["record"]["stage"], "role-provisioned", "{applied}");
    }
    // The role, as IAM has it.
    let role = app
        .iam
        .get_role()
        .role_name("keyrotor-app")
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.arn(), role_arn);
    let trust: Value = serde_json::from_str(&urlencoding_decode(
        role.assume_role_policy_document().unwrap(),
    ))
    .unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], runner.as_str());
    let attached = app
        .iam
        .list_attached_role_policies()
        .role_name("keyrotor-app")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    let roles = app.iam.list_roles().send().await.unwrap();
    assert_eq!(
        roles
            .roles()
            .iter()
            .filter(|r| r.role_name() == "keyrotor-app")
            .count(),
        1
    );
    role_arn
}

/// IAM hands policy documents back URL-encoded.
fn urlencoding_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |i: usize| b.get(i).and_then(|c| (*c as char).to_digit(16));
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_user_walks_from_keys_to_migrated() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(keyrotor(&world, &policy, 0).arg("init")));
    let role_arn = plan_and_apply(&world, &app, &policy).await;

    assert!(
        sweep(&world, &policy, 2).is_empty(),
        "the role is not used yet"
    );
    app.use_role(&world, &role_arn, 3).await;
    assert_eq!(sweep(&world, &policy, 4), ["adopted"]);
    assert!(
        sweep(&world, &policy, 20).is_empty(),
        "keys not idle for 30 days yet"
    );
    assert_eq!(sweep(&world, &policy, 34), ["keys-idle", "guarded"]);
    assert!(app.guarded().await);
    assert_eq!(app.key_status().await, Some(StatusType::Active));
    assert_eq!(sweep(&world, &policy, 41), ["keys-deactivated"]);
    assert_eq!(app.key_status().await, Some(StatusType::Inactive));
    assert_eq!(sweep(&world, &policy, 71), ["migrated"]);
    assert_eq!(app.key_status().await, None, "keys deleted");
    assert!(!app.guarded().await, "guard removed");
    assert!(sweep(&world, &policy, 90).is_empty());

    let out = run(keyrotor(&world, &policy, 90).args(["migrate", "status", "--output", "json"]));
    let funnel: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(funnel["counts"]["migrated"], 1, "{funnel}");
    ok(&run(keyrotor(&world, &policy, 90).args(["audit", "verify"])));
}

#[tokio::test]
async fn a_key_used_again_stops_the_migration_and_a_rollback_restores_the_keys() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(keyrotor(&world, &policy, 0).arg("init")));
    let role_arn = plan_and_apply(&world, &app, &policy).await;
    app.use_role(&world, &role_arn, 3).await;
    assert_eq!(sweep(&world, &policy, 4), ["adopted"]);
    assert_eq!(sweep(&world, &policy, 34), ["keys-idle", "guarded"]);

    // A forgotten client uses the key: the migration stops there.
    app.use_key(&world, 36).await;
    assert_eq!(sweep(&world, &policy, 37), ["regressed"]);
    assert!(
        !app.guarded().await,
        "the guard is removed so the forgotten client works"
    );
    assert!(
        sweep(&world, &policy, 40).is_empty(),
        "no progression while the keys are in use"
    );
    assert_eq!(app.key_status().await, Some(StatusType::Active));

    // The client is fixed; 30 idle days later the migration resumes.
    assert_eq!(sweep(&world, &policy, 67), ["keys-idle", "guarded"]);
    assert_eq!(sweep(&world, &policy, 74), ["keys-deactivated"]);
    assert_eq!(app.key_status().await, Some(StatusType::Inactive));

    let out = run(keyrotor(&world, &policy, 75).args(["migrate", "rollback", "app"]));
    ok(&out);
    assert_eq!(
        app.key_status().await,
        Some(StatusType::Active),
        "keys reactivated"
    );
    assert!(!app.guarded().await, "guard removed");
    assert!(
        app.iam
            .get_role()
            .role_name("keyrotor-app")
            .send()
            .await
            .is_ok(),
        "the role stays"
    );
    assert!(
        sweep(&world, &policy, 120).is_empty(),
        "a rolled-back migration stays put"
    );
    let out =
        run(keyrotor(&world, &policy, 120).args(["migrate", "status", "app", "--output", "json"]));
    let funnel: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(funnel["users"][0]["stage"], "rolled-back", "{funnel}");
}

#[tokio::test]
async fn a_tag_that_names_no_valid_identity_blocks_and_creates_nothing() {
    let world = World::new();
    let app = app(&world, "the-payments-team").await;
    let policy = policy();
    ok(&run(keyrotor(&world, &policy, 0).arg("init")));
    let out = run(keyrotor(&world, &policy, 1).args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("accepted forms"), "{}", stderr(&out));
    assert!(
        app.iam
            .get_role()
            .role_name("keyrotor-app")
            .send()
            .await
            .is_err(),
        "no role created"
    );
    let out = run(keyrotor(&world, &policy, 1).args(["migrate", "plan", "nobody"]));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no IAM user"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_user_outside_path_prefixes_is_not_migrated_and_nothing_is_created() {
    // Scenario: [iam_keys] path_prefixes = ["/apps/"], the user lives under "/" — `migrate
    // apply` must refuse (one scope check for every entry point) and create no role.
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let mut scoped = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        scoped,
        "mode = \"enforce\"\n[migration]\nenabled = true\n[iam_keys]\npath_prefixes = [\"/apps/\"]"
    )
    .unwrap();
    ok(&run(keyrotor(&world, &scoped, 0).arg("init")));
    let out = run(keyrotor(&world, &scoped, 1).args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("path_prefixes"), "{}", stderr(&out));
    assert!(
        app.iam
            .get_role()
            .role_name("keyrotor-app")
            .send()
            .await
            .is_err(),
        "no role created for an out-of-scope user"
    );
}

#[tokio::test]
async fn the_iam_key_sweep_leaves_the_keys_of_a_user_being_migrated_to_the_migration() {
    // Two lifecycles on one key: the IAM key sweep could deactivate a key the migration
    // then cannot restore with `migrate rollback`. The migration owns the keys instead.
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(keyrotor(&world, &policy, 0).arg("init")));
    plan_and_apply(&world, &app, &policy).await;
    // Day 60: the key, unused since day 0, would be warned (then deactivated) by the IAM
    // key lifecycle; the migration in progress owns it.
    let out = run(
        keyrotor(&world, &policy, 60).args(["sweep", "--kind", "iam-keys", "--output", "json"])
    );
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(done["applied"], json!([]), "{done}");
    assert!(
        done["plan"]["skipped"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["resource"] == app.key.0.as_str() && s["reason"] == "migration-in-progress"),
        "{done}"
    );
    // Rolled back, the key is the IAM key lifecycle's again.
    ok(&run(
        keyrotor(&world, &policy, 61).args(["migrate", "rollback", "app"])
    ));
    let out = run(
        keyrotor(&world, &policy, 62).args(["sweep", "--kind", "iam-keys", "--output", "json"])
    );
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(
        done["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["key"] == app.key.0.as_str() && a["action"] == "warn"),
        "{done}"
    );
}

#[tokio::test]
async fn an_exemption_added_mid_migration_stops_it_with_a_decision_and_no_open_intent() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(keyrotor(&world, &policy, 0).arg("init")));
    let role_arn = plan_and_apply(&world, &app, &policy).await;
    app.use_role(&world, &role_arn, 3).await;
    assert_eq!(sweep(&world, &policy, 4), ["adopted"]);
    // Before the keys are guarded, the owner exempts the user until 2026-07-01 (day 61).
    app.iam
        .tag_user()
        .user_name("app")
        .tags(
            Tag::builder()
                .key("keyrotor:exempt")
                .value("2026-07-01")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = run(keyrotor(&world, &policy, 34).args([
        "sweep",
        "--kind",
        "migration",
        "--output",
        "json",
    ]));
    let done: Value = serde_json::from_str(&ok(&out)).unwrap();
    let statuses: Vec<&str> = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"skipped"), "{done}");
    assert!(!app.guarded().await, "no guard on an exempt user");
    assert_eq!(app.key_status().await, Some(StatusType::Active));
    // Every intent the run wrote has its outcome: the scope check comes before the intent.
    let out = run(keyrotor(&world, &policy, 34).args([
        "audit",
        "list",
        "--resource",
        "app",
        "--output",
        "json",
    ]));
    let records: Value = serde_json::from_str(&ok(&out)).unwrap();
    let run_id = done["run_id"].as_str().unwrap();
    let in_run: Vec<&Value> = records
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["run_id"] == run_id)
        .collect();
    let intents = in_run.iter().filter(|r| r["phase"] == "intent").count();
    let outcomes = in_run.iter().filter(|r| r["phase"] == "outcome").count();
    assert_eq!(intents, outcomes, "{in_run:?}");
    assert!(
        in_run.iter().any(|r| r["outcome"] == "skipped"),
        "{in_run:?}"
    );
}
