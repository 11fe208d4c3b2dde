//! `keyrotor respond` against the emulator: a leaked key bound to a secret is replaced,
//! deactivated and its older sessions revoked, from an AWS Health event file; the
//! investigation lists what the "attacker" did with it (the emulator records every signed
//! request and serves CloudTrail LookupEvents from that record); the same event again
//! changes nothing; an unbound key is deactivated at once; a break-glass user's key is left
//! alone; a malformed event changes nothing and says why — and the world changing under a
//! response (a secret that names someone else, a person reactivating the key) is met.

mod support;

use aws_sdk_iam::types::StatusType;
use serde_json::{Value, json};
use support::{PolicyText, REGION, Timeline, World, ok, run, seed, stderr, stdout};

const TIME: Timeline = Timeline::starting(2026, 6, 1);

fn policy() -> tempfile::NamedTempFile {
    PolicyText::mode("enforce").file()
}

/// An AWS Health event as EventBridge delivers it, naming `key` in `account`.
fn health_event(account: &str, key: &str, arn: &str) -> tempfile::NamedTempFile {
    let event = json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": account,
        "time": TIME.day(2),
        "region": "global",
        "resources": [],
        "detail": {
            "eventArn": arn,
            "service": "RISK",
            "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
            "eventTypeCategory": "issue",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "startTime": "Mon, 01 Jun 2026 00:00:00 GMT",
            "eventDescription": [{
                "language": "en_US",
                "latestDescription": "Your AWS access key was found publicly available."
            }],
            "affectedEntities": [{"entityValue": key}]
        }
    });
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), event.to_string()).unwrap();
    file
}

fn respond_event(
    world: &World,
    policy: &tempfile::NamedTempFile,
    file: &tempfile::NamedTempFile,
    day: i64,
) -> std::process::Output {
    // Debug logging on: the leak checks below read stderr too.
    run(TIME
        .keyrotor(world, policy, day)
        .env("KEYROTOR_LOG", "debug")
        .args(["--output", "json", "respond", "--event"])
        .arg(file.path()))
}

struct Leak {
    iam: aws_sdk_iam::Client,
    secrets: aws_sdk_secretsmanager::Client,
    key: seed::Key,
}

/// User `svc` whose one key is bound to secret `svc/iam`, on day 0.
async fn bound_leak(world: &World) -> Leak {
    TIME.set_clock(world, 0);
    let sdk = world.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let key = seed::user_with_bound_secret(&iam, &secrets, "svc", "svc/iam").await;
    Leak { iam, secrets, key }
}

/// An IAM client signing with `key`, as an attacker holding it would, with its own user
/// agent.
async fn as_attacker(world: &World, key: &seed::Key) -> aws_sdk_iam::Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(&world.endpoint)
        .app_name(aws_config::AppName::new("attacker-tool").unwrap())
        .credentials_provider(aws_credential_types::Credentials::new(
            key.id.clone(),
            key.secret.clone(),
            None,
            None,
            "tests",
        ))
        .load()
        .await;
    aws_sdk_iam::Client::new(&config)
}

fn json_out(out: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| {
        panic!(
            "respond --output json is JSON ({e}): {}\n{}",
            stdout(out),
            stderr(out)
        )
    })
}

#[tokio::test]
async fn a_health_event_replaces_deactivates_revokes_and_investigates_once() {
    let world = World::new();
    let leak = bound_leak(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    // Day 1: someone else uses the leaked key: looks around, then makes a user.
    TIME.set_clock(&world, 1);
    let attacker = as_attacker(&world, &leak.key).await;
    attacker
        .list_users()
        .send()
        .await
        .expect("attacker lists users");
    attacker
        .create_user()
        .user_name("backdoor")
        .send()
        .await
        .expect("attacker creates a user");
    let _ = attacker.get_user().user_name("nobody").send().await; // fails: NoSuchEntity

    // Day 2: AWS Health reports the key.
    let event = health_event(
        &world.account,
        &leak.key.id,
        "arn:aws:health:global::event/RISK/AWS_RISK_CREDENTIALS_EXPOSED/AWS_RISK_CREDENTIALS_EXPOSED_1",
    );
    let out = respond_event(&world, &policy, &event, 2);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let done = json_out(&out);
    let r = &done[0];
    assert_eq!(r["status"], "done", "{r:#}");
    assert_eq!(r["user"], "svc");
    assert_eq!(r["reason"], "exposed");
    assert_eq!(r["trigger"], "health");

    // Contained: the exposed key is inactive (not deleted), a new one is AWSCURRENT and
    // works, and sessions issued before the response are denied.
    let keys = support::inspect::keys(&leak.iam, "svc").await;
    assert!(
        keys.contains(&(leak.key.id.clone(), StatusType::Inactive)),
        "{keys:?}"
    );
    let current = support::inspect::secret_stage(&leak.secrets, "svc/iam", "AWSCURRENT")
        .await
        .expect("AWSCURRENT");
    let new_key = current["accessKeyId"].as_str().unwrap().to_owned();
    assert_ne!(new_key, leak.key.id);
    assert_eq!(r["replacement"]["key"], new_key.as_str());
    assert!(
        keys.contains(&(new_key.clone(), StatusType::Active)),
        "{keys:?}"
    );
    let sts = seed::sts_as(
        &world,
        &new_key,
        current["secretAccessKey"].as_str().unwrap(),
        None,
    )
    .await;
    sts.get_caller_identity()
        .send()
        .await
        .expect("the replacement works");
    let revoke = leak
        .iam
        .get_user_policy()
        .user_name("svc")
        .policy_name("keyrotor-revoke-sessions")
        .send()
        .await
        .expect("the revocation policy is on the user");
    let document = urlencoding_decode(revoke.policy_document());
    assert!(document.contains("aws:TokenIssueTime"), "{document}");
    assert!(document.contains("Deny"), "{document}");

    // Investigated: the attacker's calls, by access key id, with its user agent.
    let activity = &r["activity"];
    let text = activity.to_string();
    assert!(text.contains("CreateUser"), "{activity:#}");
    assert!(text.contains("attacker-tool"), "{activity:#}");
    // No secret value (the leaked key's, the replacement's) in the output, the debug log,
    // or the audit trail.
    let new_secret = current["secretAccessKey"].as_str().unwrap().to_owned();
    let trail = ok(&run(TIME
        .keyrotor(&world, &policy, 2)
        .args(["--output", "json", "audit", "list"])));
    for (what, text) in [
        ("summary", text.as_str()),
        ("stdout", &stdout(&out)),
        ("stderr", &stderr(&out)),
        ("audit trail", &trail),
    ] {
        for secret in [&leak.key.secret, &new_secret] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret value in the {what}"
            );
        }
    }
    assert!(stderr(&out).contains("DEBUG"), "debug logging was on");

    // The same event again changes nothing.
    let versions_before = leak
        .secrets
        .list_secret_version_ids()
        .secret_id("svc/iam")
        .send()
        .await
        .unwrap()
        .versions()
        .len();
    let again = respond_event(&world, &policy, &event, 2);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json_out(&again)[0]["status"], "no-op");
    assert_eq!(support::inspect::keys(&leak.iam, "svc").await, keys);
    let versions_after = leak
        .secrets
        .list_secret_version_ids()
        .secret_id("svc/iam")
        .send()
        .await
        .unwrap()
        .versions()
        .len();
    assert_eq!(versions_before, versions_after);

    // The key's lifecycle is contained: the sweep, however late, never deletes it.
    ok(&run(TIME
        .keyrotor(&world, &policy, 400)
        .args(["sweep", "--kind", "iam-keys"])));
    let keys = support::inspect::keys(&leak.iam, "svc").await;
    assert!(
        keys.iter().any(|(k, _)| k == &leak.key.id),
        "the leaked key is kept as evidence: {keys:?}"
    );

    // Every change is audited, and the trail verifies.
    let listed = ok(&run(TIME.keyrotor(&world, &policy, 400).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        &leak.key.id,
    ])));
    for action in ["deactivate", "investigate"] {
        assert!(
            listed.contains(&format!("\"{action}\"")),
            "{action}: {listed}"
        );
    }
    ok(&run(TIME
        .keyrotor(&world, &policy, 400)
        .args(["audit", "verify"])));

    // Undo: the person reactivates the key.
    ok(&run(TIME.keyrotor(&world, &policy, 401).args([
        "reactivate",
        "iam-key",
        &leak.key.id,
    ])));
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Active)
    );
    // The same Health event delivered again after the undo does not undo the undo.
    let redelivered = respond_event(&world, &policy, &event, 401);
    assert_eq!(json_out(&redelivered)[0]["status"], "no-op");
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Active)
    );
}

/// IAM returns policy documents URL-encoded.
fn urlencoding_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_unbound_key_is_deactivated_at_once_from_the_command_line() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "ci", &[]).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "respond",
        "iam-key",
        &key.id,
        "--reason",
        "compromised",
        "--no-investigation",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json_out(&out)[0];
    assert_eq!(r["status"], "done");
    assert_eq!(r["steps"][0]["step"], "replace");
    assert_eq!(r["steps"][0]["status"], "skipped");
    assert!(r.get("replacement").is_none());
    assert_eq!(
        support::inspect::keys(&iam, "ci").await,
        vec![(key.id.clone(), StatusType::Inactive)],
        "deactivated, not deleted, and no key created"
    );
}

#[tokio::test]
async fn a_break_glass_key_is_left_alone_until_a_person_overrides() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "emergency", &[]).await;
    let policy = PolicyText::mode("enforce")
        .with("[exemptions]\nbreak_glass = [\"emergency\"]\n")
        .file();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "respond",
        "iam-key",
        &key.id,
        "--no-investigation",
    ]));
    assert_eq!(out.status.code(), Some(4), "blocked: a person must act");
    let r = &json_out(&out)[0];
    assert_eq!(r["status"], "blocked");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("--override-exemption"),
        "{r:#}"
    );
    assert_eq!(
        support::inspect::key_status(&iam, "emergency", &key.id).await,
        Some(StatusType::Active)
    );
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "respond",
        "iam-key",
        &key.id,
        "--override-exemption",
        "--no-investigation",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        support::inspect::key_status(&iam, "emergency", &key.id).await,
        Some(StatusType::Inactive)
    );
}

#[tokio::test]
async fn a_malformed_event_changes_nothing_says_why_and_is_on_the_record() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let key = seed::user_with_key(&iam, "ci", &[]).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    // A Health exposure event that names no key.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        json!({
            "version": "0", "id": "e1", "detail-type": "AWS Health Event",
            "source": "aws.health", "account": world.account, "time": TIME.day(1),
            "region": "global", "resources": [],
            "detail": {"eventArn": "arn:aws:health:global::event/RISK/X/no-key",
                       "eventTypeCode": "AWS_RISK_CREDENTIALS_EXPOSED",
                       "affectedEntities": []}
        })
        .to_string(),
    )
    .unwrap();
    let out = respond_event(&world, &policy, &file, 1);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was changed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        support::inspect::key_status(&iam, "ci", &key.id).await,
        Some(StatusType::Active)
    );
    let listed = ok(&run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        "event:arn:aws:health:global::event/RISK/X/no-key",
    ])));
    assert!(listed.contains("could-not-act"), "{listed}");
    // Truncated JSON: the same, without an event id.
    std::fs::write(file.path(), "{\"source\": \"aws.health\", \"detail\": {").unwrap();
    let out = respond_event(&world, &policy, &file, 1);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        support::inspect::key_status(&iam, "ci", &key.id).await,
        Some(StatusType::Active)
    );
}

#[tokio::test]
async fn a_secret_that_names_someone_else_gets_no_key_the_leak_is_still_contained() {
    // The world changed (or someone with weaker rights steered it): the leaked key's user
    // names a secret whose AWSCURRENT names another user. keyrotor must not create a key
    // for that other user; it deactivates the leaked key without a replacement.
    let world = World::new();
    let leak = bound_leak(&world).await;
    seed::user(&leak.iam, "admin", &[]).await;
    let admin_key = seed::access_key(&leak.iam, "admin").await;
    leak.secrets
        .put_secret_value()
        .secret_id("svc/iam")
        .secret_string(
            json!({"userName": "admin", "accessKeyId": admin_key.id, "secretAccessKey": admin_key.secret})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "respond",
        "iam-key",
        &leak.key.id,
        "--no-investigation",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json_out(&out)[0];
    assert_eq!(r["steps"][0]["status"], "skipped", "{r:#}");
    assert!(
        r["steps"][0]["detail"].as_str().unwrap().contains("admin"),
        "{r:#}"
    );
    assert_eq!(
        support::inspect::keys(&leak.iam, "admin").await,
        vec![(admin_key.id.clone(), StatusType::Active)],
        "no key created for, or taken from, the other user"
    );
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Inactive)
    );
}

#[tokio::test]
async fn plan_mode_says_what_it_would_do_and_changes_nothing() {
    let world = World::new();
    let leak = bound_leak(&world).await;
    let policy = PolicyText::mode("plan").file();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let out = run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "respond",
        "iam-key",
        &leak.key.id,
        "--no-investigation",
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json_out(&out)[0];
    assert_eq!(r["status"], "dry-run");
    assert!(r["detail"].as_str().unwrap().contains("svc/iam"), "{r:#}");
    assert_eq!(
        support::inspect::keys(&leak.iam, "svc").await,
        vec![(leak.key.id.clone(), StatusType::Active)]
    );
}

/// An example event of examples/events/, about `account`, key `key` and user `user`.
fn example_event(name: &str, account: &str, key: &str, user: &str) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(support::repo_root().join("examples/events").join(name))
        .unwrap()
        .replace("123456789012", account)
        .replace("AKIAIOSFODNN7EXAMPLE", key)
        .replace("app-deployer", user);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), text).unwrap();
    file
}

#[tokio::test]
async fn guardduty_and_quarantine_events_are_answered_and_other_accounts_refused() {
    let world = World::new();
    TIME.set_clock(&world, 0);
    let iam = aws_sdk_iam::Client::new(&world.sdk().await);
    let found = seed::user_with_key(&iam, "deployer", &[]).await;
    let quarantined = seed::user_with_key(&iam, "builder", &[]).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));

    // An event about another account changes nothing here.
    let elsewhere = example_event(
        "guardduty-finding.json",
        "999999999999",
        &found.id,
        "deployer",
    );
    let out = respond_event(&world, &policy, &elsewhere, 1);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("999999999999"), "{}", stderr(&out));
    assert_eq!(
        support::inspect::key_status(&iam, "deployer", &found.id).await,
        Some(StatusType::Active)
    );

    // GuardDuty names the key: contained, for the reason "compromised".
    let finding = example_event(
        "guardduty-finding.json",
        &world.account,
        &found.id,
        "deployer",
    );
    let out = respond_event(&world, &policy, &finding, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &json_out(&out)[0];
    assert_eq!(
        (r["trigger"].as_str(), r["reason"].as_str()),
        (Some("guardduty"), Some("compromised"))
    );
    assert_eq!(
        support::inspect::key_status(&iam, "deployer", &found.id).await,
        Some(StatusType::Inactive)
    );

    // CloudTrail's AttachUserPolicy of the quarantine policy names a user with one active
    // key: that key is contained.
    let attach = example_event(
        "cloudtrail-quarantine-attach.json",
        &world.account,
        &quarantined.id,
        "builder",
    );
    let out = respond_event(&world, &policy, &attach, 1);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_out(&out)[0]["key"], quarantined.id.as_str());
    assert_eq!(
        support::inspect::key_status(&iam, "builder", &quarantined.id).await,
        Some(StatusType::Inactive)
    );
    // AWS's quarantine policy is never detached (here: nothing is detached at all).
    let attached = iam
        .list_attached_user_policies()
        .user_name("builder")
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty());
}

#[tokio::test]
async fn an_attackers_staged_key_is_never_published_and_its_extra_key_is_reported() {
    // Between the leak and the response, whoever holds the leaked key makes a second key
    // for the user and stages it as the secret's AWSPENDING: the response must neither
    // publish that key nor stay silent about it.
    let world = World::new();
    let leak = bound_leak(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    TIME.set_clock(&world, 1);
    let attacker = as_attacker(&world, &leak.key).await;
    let made = attacker
        .create_access_key()
        .user_name("svc")
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    let planted = made.access_key_id.clone();
    leak.secrets
        .put_secret_value()
        .secret_id("svc/iam")
        .client_request_token("11111111-2222-3333-4444-555555555555")
        .secret_string(
            json!({"userName": "svc", "accessKeyId": planted, "secretAccessKey": made.secret_access_key})
                .to_string(),
        )
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let event = health_event(
        &world.account,
        &leak.key.id,
        "arn:aws:health:global::event/RISK/X/staged",
    );
    let out = respond_event(&world, &policy, &event, 1);
    let current = support::inspect::secret_stage(&leak.secrets, "svc/iam", "AWSCURRENT")
        .await
        .unwrap();
    assert_ne!(
        current["accessKeyId"],
        planted.as_str(),
        "the planted key was published"
    );
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Inactive)
    );
    // The planted key is active and unaccounted for: the response says so and fails.
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let r = &json_out(&out)[0];
    let steps = r["steps"].as_array().unwrap();
    let other = steps
        .iter()
        .find(|s| s["step"] == "other-keys")
        .expect("other-keys step");
    assert_eq!(other["status"], "blocked");
    assert!(
        other["detail"].as_str().unwrap().contains(&planted),
        "{other:#}"
    );
}

#[tokio::test]
async fn a_leak_in_the_grace_period_after_a_rotation_restores_the_previous_key() {
    // After a routine rotation both of the user's keys are in the secret (AWSPREVIOUS is
    // still active for the grace period): no new key fits under IAM's 2-key limit. The new
    // key leaks: its clients are saved by making the previous, unexposed key current again.
    let world = World::new();
    let leak = bound_leak(&world).await;
    let policy = policy();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    ok(&run(TIME
        .keyrotor(&world, &policy, 1)
        .args(["rotate", "secret", "svc/iam"])));
    let rotated = support::inspect::secret_stage(&leak.secrets, "svc/iam", "AWSCURRENT")
        .await
        .unwrap();
    let leaked = rotated["accessKeyId"].as_str().unwrap().to_owned();
    assert_ne!(leaked, leak.key.id);
    let event = health_event(
        &world.account,
        &leaked,
        "arn:aws:health:global::event/RISK/X/grace",
    );
    let out = respond_event(&world, &policy, &event, 2);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let current = support::inspect::secret_stage(&leak.secrets, "svc/iam", "AWSCURRENT")
        .await
        .unwrap();
    assert_eq!(
        current["accessKeyId"],
        leak.key.id.as_str(),
        "the previous key serves again"
    );
    let keys = support::inspect::keys(&leak.iam, "svc").await;
    assert!(
        keys.contains(&(leak.key.id.clone(), StatusType::Active)),
        "{keys:?}"
    );
    assert!(
        keys.contains(&(leaked.clone(), StatusType::Inactive)),
        "{keys:?}"
    );
    seed::sts_as(
        &world,
        &leak.key.id,
        current["secretAccessKey"].as_str().unwrap(),
        None,
    )
    .await
    .get_caller_identity()
    .send()
    .await
    .expect("the restored key works");
    let listed = ok(&run(TIME
        .keyrotor(&world, &policy, 2)
        .args(["--output", "json", "audit", "list"])));
    assert!(listed.contains("restore-previous"), "audited");
    // Later sweeps keep the restored key: it is AWSCURRENT again.
    ok(&run(TIME
        .keyrotor(&world, &policy, 60)
        .args(["sweep", "--kind", "iam-keys"])));
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Active)
    );
}

#[tokio::test]
async fn overriding_a_break_glass_exemption_still_saves_the_clients_of_its_secret() {
    let world = World::new();
    let leak = bound_leak(&world).await;
    let policy = PolicyText::mode("enforce")
        .with("[exemptions]\nbreak_glass = [\"svc\"]\n")
        .file();
    ok(&run(TIME.keyrotor(&world, &policy, 0).arg("init")));
    let respond = |extra: &[&str]| {
        let mut cmd = TIME.keyrotor(&world, &policy, 1);
        cmd.args([
            "--output",
            "json",
            "respond",
            "iam-key",
            &leak.key.id,
            "--no-investigation",
        ])
        .args(extra);
        run(&mut cmd)
    };
    let out = respond(&[]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(json_out(&out)[0]["status"], "blocked");
    let out = respond(&["--override-exemption"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let current = support::inspect::secret_stage(&leak.secrets, "svc/iam", "AWSCURRENT")
        .await
        .unwrap();
    assert_ne!(
        current["accessKeyId"],
        leak.key.id.as_str(),
        "a replacement was published"
    );
    seed::sts_as(
        &world,
        current["accessKeyId"].as_str().unwrap(),
        current["secretAccessKey"].as_str().unwrap(),
        None,
    )
    .await
    .get_caller_identity()
    .send()
    .await
    .expect("the replacement works");
    assert_eq!(
        support::inspect::key_status(&leak.iam, "svc", &leak.key.id).await,
        Some(StatusType::Inactive)
    );
    let trail = ok(&run(TIME.keyrotor(&world, &policy, 1).args([
        "--output",
        "json",
        "audit",
        "list",
        "--resource",
        &leak.key.id,
    ])));
    assert!(
        trail.contains("exemption-overridden"),
        "the override is on the record"
    );
}
