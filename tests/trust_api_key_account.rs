//! The API-key job's `account` input is a trust boundary: whoever can start an execution
//! chooses it. The job works only in an account `[accounts]` covers; any other is refused
//! before a member role is assumed, and nothing changes there. Against the emulator, with
//! the deployed job run in process over the central account's context.

mod support;

use chrono::{TimeZone, Utc};
use keyrotor::lambda::{Job, run_job};
use serde_json::json;
use support::{World, seed, seed::EXTERNAL_ID};

async fn api_key(world: &World) -> String {
    aws_sdk_apigateway::Client::new(&world.sdk().await)
        .create_api_key()
        .name("partner-client")
        .enabled(true)
        .tags("keyrotor:secret", "partner/api-key")
        .send()
        .await
        .unwrap()
        .id()
        .unwrap()
        .to_owned()
}

async fn key_count(world: &World) -> usize {
    aws_sdk_apigateway::Client::new(&world.sdk().await)
        .get_api_keys()
        .send()
        .await
        .unwrap()
        .items()
        .len()
}

#[tokio::test]
async fn an_api_key_job_refuses_an_account_outside_the_policy_and_changes_nothing() {
    // GIVEN a central account whose policy lists one member account, and an outsider
    // account that also trusts the central account (so only the check stands in the way)
    let central = World::new();
    let member = World::new();
    let outsider = World::new();
    seed::member_role(&member, &central.account).await;
    seed::member_role(&outsider, &central.account).await;
    let outsider_key = api_key(&outsider).await;
    let policy = keyrotor::domain::policy::Policy::from_toml(
        &format!(
            "mode = \"enforce\"\n[accounts]\nids = [\"{}\"]\nexternal_id = \"{EXTERNAL_ID}\"\n",
            member.account
        ),
        "test",
    )
    .unwrap();
    let ctx = keyrotor::lambda::Context {
        aws: keyrotor::aws::Aws::from_config(central.sdk().await).with_pacing(&policy.pacing),
        policy,
        region: support::REGION.to_owned(),
        fixed_now: Some(Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()),
        items_bucket: None,
        inline_items: 40,
        caller: None,
    };
    keyrotor::steps::init(
        &keyrotor::aws::dynamodb::DynamoTables::new(ctx.aws.dynamodb()),
        &ctx.policy,
    )
    .await
    .unwrap();

    // WHEN the job is asked to rotate the outsider's key
    let err = run_job(
        &ctx,
        Job::ApiKey,
        json!({"key": outsider_key, "account": outsider.account}),
    )
    .await
    .unwrap_err();

    // THEN it is refused as invalid input naming the account and [accounts]
    assert_eq!(err.name(), "KeyRotor.InvalidInput", "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&outsider.account) && message.contains("[accounts]"),
        "{message}"
    );
    // before any member role was assumed, and nothing changed in the outsider account
    let calls = ctx.aws.counter.snapshot();
    assert!(!calls.contains_key("sts:AssumeRole"), "{calls:?}");
    assert_eq!(key_count(&outsider).await, 1);
    let audit = keyrotor::aws::dynamodb::DynamoAuditStore::new(
        ctx.aws.dynamodb(),
        ctx.policy.audit.table.clone(),
    );
    let records = keyrotor::ports::AuditStore::all(&audit).await.unwrap();
    assert!(records.is_empty(), "{records:?}");

    // WHEN the job names the listed member account instead, it is let in: the member role
    // is assumed (the key id is not there, so the rotation itself stops with its own error)
    let result = run_job(
        &ctx,
        Job::ApiKey,
        json!({"key": outsider_key, "account": member.account}),
    )
    .await;
    if let Err(e) = &result {
        assert!(
            !e.to_string()
                .contains("not an account this deployment covers"),
            "{e}"
        );
    }
    assert_eq!(
        ctx.aws.counter.snapshot().get("sts:AssumeRole"),
        Some(&1),
        "the member role was not assumed"
    );
    assert_eq!(key_count(&outsider).await, 1);
}
