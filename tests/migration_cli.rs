//! Migration from IAM user keys to a role against the emulator, with `KEYROTOR_NOW` and the
//! account clock stepping through adoption, idle keys, guard, deactivation and deletion; a
//! regression; a rollback; and a tag that names no valid identity. And the trust boundaries
//! (issue #20): only the organization and `[migration]`'s allow-lists are trusted without
//! `--allow-external`, a pre-existing role is never taken over, the guard is the deployed
//! managed policy, and a forged state-table item never guards, deactivates or deletes keys.

mod support;

use std::io::Write;

use aws_sdk_iam::types::{StatusType, Tag};
use serde_json::{Value, json};
use support::{
    PolicyText, Timeline, World, ok,
    policy::MIGRATION,
    run,
    seed::{self, sts_as},
    stderr, stdout,
};

/// Day 0 of every test here; `TIME.day(n)` is day `n` for keyrotor and the emulator.
const TIME: Timeline = Timeline::starting(2026, 5, 1);

fn policy() -> tempfile::NamedTempFile {
    policy_with("")
}

struct App {
    iam: aws_sdk_iam::Client,
    key: (String, String),
    managed_arn: String,
    account: String,
}

/// User `app` with a used key, a managed policy, an inline policy and a group with an
/// inline policy, tagged to move to `migrate_to`; the account has the guard's managed
/// policy, as the templates deploy it.
async fn app(world: &World, migrate_to: &str) -> App {
    TIME.set_clock(world, 0);
    support::create_migration_guard_policy(world).await;
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
    let key = seed::access_key(&iam, "app").await;
    let key = (key.id, key.secret);
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
        account: world.account.clone(),
    }
}

impl App {
    async fn use_key(&self, world: &World, n: i64) {
        TIME.set_clock(world, n);
        sts_as(world, &self.key.0, &self.key.1, None)
            .await
            .get_caller_identity()
            .send()
            .await
            .unwrap();
    }

    /// The workload assumes the new role and makes a call with its temporary credentials.
    async fn use_role(&self, world: &World, role_arn: &str, n: i64) {
        TIME.set_clock(world, n);
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

    /// Whether the guard's managed policy is attached to `app`.
    async fn guarded(&self) -> bool {
        self.iam
            .list_attached_user_policies()
            .user_name("app")
            .send()
            .await
            .unwrap()
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(guard_arn(&self.account).as_str()))
    }

    /// The names of `app`'s inline policies.
    async fn inline_policies(&self) -> Vec<String> {
        self.iam
            .list_user_policies()
            .user_name("app")
            .send()
            .await
            .unwrap()
            .policy_names()
            .to_vec()
    }

    /// The trust policy of `role`, parsed; `None` when there is no such role.
    async fn trust(&self, role: &str) -> Option<Value> {
        let out = self.iam.get_role().role_name(role).send().await.ok()?;
        let doc = out.role()?.assume_role_policy_document()?;
        Some(serde_json::from_str(&urlencoding_decode(doc)).unwrap())
    }
}

fn guard_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:policy/keyrotor/keyrotor-migration-guard")
}

/// `keyrotor sweep --kind migration --output json` on day `n`.
fn sweep_output(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> std::process::Output {
    run(TIME
        .keyrotor(world, policy, n)
        .args(["sweep", "--kind", "migration", "--output", "json"]))
}

/// Every transition of a sweep as (to, status, detail), and whether it exited with success.
fn sweep_all(
    world: &World,
    policy: &tempfile::NamedTempFile,
    n: i64,
) -> (Vec<(String, String, String)>, bool) {
    let out = sweep_output(world, policy, n);
    let done: Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    let transitions = done["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let text = |k: &str| t[k].as_str().unwrap().to_owned();
            (text("to"), text("status"), text("detail"))
        })
        .collect();
    (transitions, out.status.success())
}

/// The stages a sweep moved `app` to.
fn sweep(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Vec<String> {
    let out = sweep_output(world, policy, n);
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
    let out = run(TIME
        .keyrotor(world, policy, 1)
        .args(["migrate", "plan", "app", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    assert_eq!(
        plan["role"]["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        runner.as_str(),
        "{plan}"
    );
    assert_eq!(
        plan["role"]["trust_policy"]["Statement"][0]["Condition"],
        json!({"StringEquals": {"aws:PrincipalAccount": world.account}}),
        "{plan}"
    );
    assert_eq!(
        plan["role"]["arn"],
        format!("arn:aws:iam::{}:role/migrated/migrated-app", world.account),
        "migrated roles live outside keyrotor's own path and name"
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
        let out = run(TIME
            .keyrotor(world, policy, 1)
            .args(["migrate", "apply", "app", "--output", "json"]));
        let applied: Value = serde_json::from_str(&ok(&out)).unwrap();
        assert_eq!(applied["record"]["stage"], "role-provisioned", "{applied}");
    }
    // The role, as IAM has it.
    let role = app
        .iam
        .get_role()
        .role_name("migrated-app")
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
        .role_name("migrated-app")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 1);
    let roles = app.iam.list_roles().send().await.unwrap();
    assert_eq!(
        roles
            .roles()
            .iter()
            .filter(|r| r.role_name() == "migrated-app")
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
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
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
    assert!(
        app.guarded().await,
        "the guard's managed policy is attached"
    );
    assert_eq!(
        app.inline_policies().await,
        ["app-queue"],
        "no inline guard policy is put on the user"
    );
    assert_eq!(app.key_status().await, Some(StatusType::Active));
    assert_eq!(sweep(&world, &policy, 41), ["keys-deactivated"]);
    assert_eq!(app.key_status().await, Some(StatusType::Inactive));
    assert_eq!(sweep(&world, &policy, 71), ["migrated"]);
    assert_eq!(app.key_status().await, None, "keys deleted");
    assert!(!app.guarded().await, "guard removed");
    assert!(sweep(&world, &policy, 90).is_empty());

    let out = run(TIME
        .keyrotor(&world, &policy, 90)
        .args(["migrate", "status", "--output", "json"]));
    let funnel: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(funnel["counts"]["migrated"], 1, "{funnel}");
    ok(&run(TIME
        .keyrotor(&world, &policy, 90)
        .args(["audit", "verify"])));
}

#[tokio::test]
async fn a_key_used_again_stops_the_migration_and_a_rollback_restores_the_keys() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
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

    // An inline guard an earlier keyrotor put on the user goes too, and the command says so.
    app.iam
        .put_user_policy()
        .user_name("app")
        .policy_name("keyrotor-migration-guard")
        .policy_document(keyrotor::domain::migration::guard_policy().to_string())
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 75)
        .args(["migrate", "rollback", "app"]));
    ok(&out);
    assert!(
        stderr(&out).contains("inline guard policy keyrotor-migration-guard"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.inline_policies().await, ["app-queue"]);
    assert_eq!(
        app.key_status().await,
        Some(StatusType::Active),
        "keys reactivated"
    );
    assert!(!app.guarded().await, "guard removed");
    assert!(
        app.iam
            .get_role()
            .role_name("migrated-app")
            .send()
            .await
            .is_ok(),
        "the role stays"
    );
    assert!(
        sweep(&world, &policy, 120).is_empty(),
        "a rolled-back migration stays put"
    );
    let out = run(TIME
        .keyrotor(&world, &policy, 120)
        .args(["migrate", "status", "app", "--output", "json"]));
    let funnel: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(funnel["users"][0]["stage"], "rolled-back", "{funnel}");
}

#[tokio::test]
async fn a_tag_that_names_no_valid_identity_blocks_and_creates_nothing() {
    let world = World::new();
    let app = app(&world, "the-payments-team").await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("accepted forms"), "{}", stderr(&out));
    assert!(
        app.iam
            .get_role()
            .role_name("migrated-app")
            .send()
            .await
            .is_err(),
        "no role created"
    );
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "plan", "nobody"]));
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
    ok(&run(TIME.keyrotor(&world, &scoped, 0).arg("init")));
    let out = run(TIME
        .keyrotor(&world, &scoped, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("path_prefixes"), "{}", stderr(&out));
    assert!(
        app.iam
            .get_role()
            .role_name("migrated-app")
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
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    plan_and_apply(&world, &app, &policy).await;
    // Day 60: the key, unused since day 0, would be warned (then deactivated) by the IAM
    // key lifecycle; the migration in progress owns it.
    let out = run(TIME
        .keyrotor(&world, &policy, 60)
        .args(["sweep", "--kind", "iam-keys", "--output", "json"]));
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
    ok(&run(TIME
        .keyrotor(&world, &policy, 61)
        .args(["migrate", "rollback", "app"])));
    let out = run(TIME
        .keyrotor(&world, &policy, 62)
        .args(["sweep", "--kind", "iam-keys", "--output", "json"]));
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
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
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
    let out = run(TIME.keyrotor(&world, &policy, 34).args([
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
    let out = run(TIME.keyrotor(&world, &policy, 34).args([
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

/// A policy file: enforce, migrations on, and `extra` lines in `[migration]`.
fn policy_with(extra: &str) -> tempfile::NamedTempFile {
    PolicyText::mode("enforce")
        .with(MIGRATION)
        .with(extra)
        .file()
}

/// Another 12-digit account than `world`'s.
fn outside_account(world: &World) -> String {
    if world.account == "999988887777" {
        "999988887776".into()
    } else {
        "999988887777".into()
    }
}

/// The audit records of `app`.
fn audit_of_app(world: &World, policy: &tempfile::NamedTempFile, n: i64) -> Vec<Value> {
    let out = run(TIME.keyrotor(world, policy, n).args([
        "audit",
        "list",
        "--resource",
        "app",
        "--output",
        "json",
    ]));
    serde_json::from_str::<Value>(&ok(&out))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_role_in_an_outside_account_is_refused_unless_allowed_external_with_a_warning() {
    // GIVEN `app` tagged to move to a role in an account outside the organization
    let world = World::new();
    let outside = outside_account(&world);
    let foreign = format!("arn:aws:iam::{outside}:role/app-runner");
    let app = app(&world, &foreign).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    // WHEN planned: the plan shows the refusal
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "plan", "app", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    let problems = plan["role"]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{plan}");
    let problem = problems[0].as_str().unwrap();
    assert!(
        problem.contains(&outside) && problem.contains("allowed_accounts"),
        "{problem}"
    );
    assert!(
        plan["blocked"].as_str().unwrap().contains(&outside),
        "{plan}"
    );

    // WHEN applied without the flag: refused, nothing created
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--allow-external"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.trust("migrated-app").await, None, "no role created");

    // A listed account is trusted without the flag.
    let listed = policy_with(&format!("allowed_accounts = [\"{outside}\"]"));
    let out = run(TIME
        .keyrotor(&world, &listed, 1)
        .args(["migrate", "plan", "app", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(plan["role"]["problems"], json!([]), "{plan}");

    // WHEN applied with --allow-external: created, loudly, and audited as such
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "migrate",
        "apply",
        "app",
        "--allow-external",
        "--output",
        "json",
    ]));
    let applied: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(applied["record"]["stage"], "role-provisioned", "{applied}");
    assert!(
        stderr(&out).contains("WARNING") && stderr(&out).contains(&outside),
        "{}",
        stderr(&out)
    );
    let trust = app.trust("migrated-app").await.expect("role created");
    assert_eq!(trust["Statement"][0]["Principal"]["AWS"], foreign.as_str());
    assert_eq!(
        trust["Statement"][0]["Condition"],
        json!({"StringEquals": {"aws:PrincipalAccount": outside}}),
        "{trust}"
    );
    let records = audit_of_app(&world, &policy, 1);
    assert!(
        records.iter().any(|r| r["action"] == "provision-role"
            && r["phase"] == "intent"
            && r["detail"]
                .as_str()
                .unwrap()
                .contains("ALLOWED WITH --allow-external")),
        "{records:?}"
    );
}

#[tokio::test]
async fn an_oidc_subject_not_in_the_allow_list_is_refused_and_nothing_is_created() {
    let world = World::new();
    let app = app(
        &world,
        "oidc:token.actions.githubusercontent.com:repo:evil/app:ref:refs/heads/main",
    )
    .await;
    let policy = policy_with("allowed_oidc_subjects = [\"repo:acme/*\"]");
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allowed_oidc_subjects") && stderr(&out).contains("repo:evil/app"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.trust("migrated-app").await, None, "no role created");

    // A subject the allow-list admits is planned without a problem.
    app.iam
        .tag_user()
        .user_name("app")
        .tags(
            Tag::builder()
                .key("keyrotor:migrate-to")
                .value("oidc:token.actions.githubusercontent.com:repo:acme/app:ref:refs/heads/main")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "plan", "app", "--output", "json"]));
    let plan: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(plan["role"]["problems"], json!([]), "{plan}");
}

#[tokio::test]
async fn a_service_principal_role_trusts_only_the_users_account_within_the_boundary() {
    let world = World::new();
    let app = app(&world, "ec2.amazonaws.com").await;
    let boundary = app
        .iam
        .create_policy()
        .policy_name("workload-boundary")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let policy = policy_with(&format!("permissions_boundary = \"{boundary}\""));
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    ok(&run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"])));
    let trust = app.trust("migrated-app").await.expect("role created");
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "ec2.amazonaws.com"
    );
    assert_eq!(
        trust["Statement"][0]["Condition"],
        json!({"StringEquals": {"aws:SourceAccount": world.account}}),
        "{trust}"
    );
    let role = app
        .iam
        .get_role()
        .role_name("migrated-app")
        .send()
        .await
        .unwrap();
    let role = role.role().unwrap();
    assert_eq!(role.path(), "/migrated/");
    assert_eq!(
        role.permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn()),
        Some(boundary.as_str())
    );
}

#[tokio::test]
async fn a_pre_existing_role_with_another_trust_or_user_is_refused_and_left_alone() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    // GIVEN someone made the role keyrotor would make, tagged as keyrotor tags it, but
    // trusting their own principal
    let theirs = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:role/intruder", world.account)},
        "Action": "sts:AssumeRole"
    }]});
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    app.iam
        .create_role()
        .role_name("migrated-app")
        .path("/migrated/")
        .assume_role_policy_document(theirs.to_string())
        .tags(tag("keyrotor:migrated-from", "app"))
        .send()
        .await
        .unwrap();
    // WHEN applied: refused, with the reason, and nothing changed
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("differs") && stderr(&out).contains("intruder"),
        "{}",
        stderr(&out)
    );
    assert_eq!(app.trust("migrated-app").await, Some(theirs.clone()));
    let attached = app
        .iam
        .list_attached_role_policies()
        .role_name("migrated-app")
        .send()
        .await
        .unwrap();
    assert!(
        attached.attached_policies().is_empty(),
        "no permission given"
    );
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "status", "app", "--output", "json"]));
    let funnel: Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(funnel["users"][0]["stage"], "candidate", "{funnel}");

    // The right trust, but made for another user: refused too.
    app.iam
        .update_assume_role_policy()
        .role_name("migrated-app")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": runner},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalAccount": world.account}}
            }]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    app.iam
        .tag_role()
        .role_name("migrated-app")
        .tags(tag("keyrotor:migrated-from", "bob"))
        .send()
        .await
        .unwrap();
    let out = run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"]));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"bob\""), "{}", stderr(&out));

    // Tagged for app, it is exactly the planned role: adopted.
    app.iam
        .tag_role()
        .role_name("migrated-app")
        .tags(tag("keyrotor:migrated-from", "app"))
        .send()
        .await
        .unwrap();
    ok(&run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["migrate", "apply", "app"])));
}

#[tokio::test]
async fn the_guard_is_the_deployed_managed_policy_and_a_missing_or_altered_one_blocks() {
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let role_arn = plan_and_apply(&world, &app, &policy).await;
    app.use_role(&world, &role_arn, 3).await;
    assert_eq!(sweep(&world, &policy, 4), ["adopted"]);
    // GIVEN the guard's managed policy is not deployed
    let arn = guard_arn(&world.account);
    app.iam
        .delete_policy()
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    // WHEN the keys are idle: the guard step is blocked, and nothing is attached
    let (done, success) = sweep_all(&world, &policy, 34);
    assert!(!success, "a blocked step is work left: {done:?}");
    assert_eq!(done[0].0, "keys-idle");
    assert_eq!(done[1].0, "guarded");
    assert_eq!(done[1].1, "blocked", "{done:?}");
    assert!(
        done[1].2.contains("infra/template.yaml") && done[1].2.contains("does not exist"),
        "{done:?}"
    );
    assert!(!app.guarded().await);
    // GIVEN a policy of that name that says something else
    let allow_all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    app.iam
        .create_policy()
        .policy_name("keyrotor-migration-guard")
        .path("/keyrotor/")
        .policy_document(allow_all.to_string())
        .send()
        .await
        .unwrap();
    let (done, success) = sweep_all(&world, &policy, 35);
    assert!(!success);
    assert_eq!(done[0].1, "blocked", "{done:?}");
    assert!(done[0].2.contains("does not say"), "{done:?}");
    assert!(!app.guarded().await, "an altered guard is never attached");
    // GIVEN the deployed document as its default version: the user is guarded with it
    app.iam
        .create_policy_version()
        .policy_arn(&arn)
        .policy_document(keyrotor::domain::migration::guard_policy().to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    assert_eq!(sweep(&world, &policy, 36), ["guarded"]);
    assert!(app.guarded().await);
    assert_eq!(app.inline_policies().await, ["app-queue"]);
    let records = audit_of_app(&world, &policy, 36);
    assert!(
        records.iter().filter(|r| r["outcome"] == "blocked").count() >= 2,
        "{records:?}"
    );
}

/// Writes a `migration#<account>` item for `app` straight into the state table, as someone
/// with PutItem on it could.
async fn forge_migration_item(world: &World, stage: &str, role_arn: &str, since: i64) {
    let dynamo = aws_sdk_dynamodb::Client::new(&world.sdk().await);
    let text = aws_sdk_dynamodb::types::AttributeValue::S;
    dynamo
        .put_item()
        .table_name("keyrotor-state")
        .item("pk", text(format!("migration#{}", world.account)))
        .item("sk", text("app".into()))
        .item("role_arn", text(role_arn.into()))
        .item("stage", text(stage.into()))
        .item("since", text(TIME.day(since)))
        .item("provisioned_at", text(TIME.day(since - 5)))
        .item("adopted_at", text(TIME.day(since - 4)))
        .item(
            "version",
            aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_forged_migration_item_guards_deactivates_and_deletes_nothing() {
    // GIVEN `app`, a candidate (tagged keyrotor:migrate-to) whose migration nobody applied:
    // no role exists; its key was last used on day 0
    let world = World::new();
    let runner = format!("arn:aws:iam::{}:role/app-runner", world.account);
    let app = app(&world, &runner).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let role = format!("arn:aws:iam::{}:role/migrated/migrated-app", world.account);
    // WHEN items claiming each destructive stage is due are written into the state table
    for (stage, since, day_n) in [
        ("keys-idle", 39, 40),
        ("guarded", 30, 45),
        ("keys-deactivated", 10, 50),
    ] {
        if stage == "keys-deactivated" {
            // (deletion needs an inactive key: say the owner deactivated it)
            app.iam
                .update_access_key()
                .user_name("app")
                .access_key_id(&app.key.0)
                .status(StatusType::Inactive)
                .send()
                .await
                .unwrap();
        }
        forge_migration_item(&world, stage, &role, since).await;
        let (done, success) = sweep_all(&world, &policy, day_n);
        // THEN the step is blocked (a failure of the run), with why, and nothing changes
        assert!(!success, "{stage}: {done:?}");
        assert_eq!(done.len(), 1, "{stage}: {done:?}");
        assert_eq!(done[0].1, "blocked", "{stage}: {done:?}");
        assert!(
            done[0].2.contains("not backed by IAM") && done[0].2.contains("does not exist"),
            "{stage}: {done:?}"
        );
        assert!(!app.guarded().await, "{stage}: guard attached");
        assert!(app.key_status().await.is_some(), "{stage}: key deleted");
        if stage != "keys-deactivated" {
            assert_eq!(
                app.key_status().await,
                Some(StatusType::Active),
                "{stage}: key deactivated"
            );
        }
    }
    let records = audit_of_app(&world, &policy, 50);
    assert_eq!(
        records.iter().filter(|r| r["outcome"] == "blocked").count(),
        3,
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r["phase"] != "intent"),
        "no intent to change anything: {records:?}"
    );
}
