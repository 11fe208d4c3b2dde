//! `keyrotor-plan`: the API keys whose rotation has a step due, in every account of
//! `[accounts]` (each item names its account), inline or, when large, in S3.

use chrono::{DateTime, Utc};

use super::output::{AccountEntry, ItemsAt, KeyItem, PlanAccount, PlanOutput};
use super::{Context, Counted, to_value};
use crate::domain::model::Kind;
use crate::ports::{Clock, SystemClock};
use crate::steps::{self, StepError};
use crate::wiring::Wiring;

/// The API keys whose rotation has a step due in one account, as the sweep's items.
struct PlannedKeys {
    account: String,
    keys: Vec<KeyItem>,
    due: usize,
}

pub(super) async fn run(ctx: &Context, wiring: &Wiring, now: DateTime<Utc>) -> Counted {
    let policy = &ctx.policy;
    let (home_account, keys, due, accounts) = if policy.accounts.is_multi_account() {
        let runs = wiring
            .in_each_account(async |w: &Wiring| plan_keys(ctx, w, now).await)
            .await?;
        let mut keys = Vec::new();
        let mut due = 0;
        let mut summary = Vec::new();
        for run in runs {
            let planned = run.result.as_ref().ok().map(|p| p.due);
            let line = AccountEntry::of(run, |planned| {
                due += planned.due;
                keys.extend(planned.keys);
            });
            summary.push(PlanAccount {
                line,
                api_keys_due: planned,
            });
        }
        let home = wiring.home_identity().caller().await?.account.to_string();
        (home, keys, due, Some(summary))
    } else {
        let planned = plan_keys(ctx, wiring, now).await?;
        (planned.account, planned.keys, planned.due, None)
    };
    // A large plan goes to S3 for the sweep's Distributed Map: a state payload is limited
    // to 256 KiB and an inline Map to 40 concurrent iterations.
    let large = keys.len() > ctx.inline_items && ctx.items_bucket.is_some();
    let mut out = PlanOutput {
        account: home_account.clone(),
        region: ctx.region.clone(),
        generated_at: now.to_rfc3339(),
        mode: policy.mode,
        api_keys: if large { Vec::new() } else { keys.clone() },
        api_key_count: keys.len(),
        api_keys_due: due,
        large,
        at: now.to_rfc3339(),
        failed_accounts: accounts
            .as_ref()
            .map(|a| a.iter().filter(|a| a.line.status == "failed").count()),
        accounts,
        items: None,
    };
    if large && let Some(bucket) = &ctx.items_bucket {
        let key = format!(
            "plans/{home_account}/{}.json",
            steps::new_run_id(SystemClock::Real.now())
        );
        let store = crate::aws::s3::S3Items::new(wiring.home_aws().s3());
        // Through a JSON value, as the Map's item reader has always been given it.
        let items = to_value(&keys)?.to_string();
        crate::ports::ItemStore::put(&store, bucket, &key, &items).await?;
        out.items = Some(ItemsAt {
            bucket: bucket.clone(),
            key,
        });
    }
    Ok((to_value(&out)?, None))
}

/// Plans API keys in `wiring`'s account.
async fn plan_keys(
    ctx: &Context,
    wiring: &Wiring,
    now: DateTime<Utc>,
) -> Result<PlannedKeys, StepError> {
    let policy = &ctx.policy;
    let outcome = steps::plan(
        wiring.identity(),
        &wiring.discovery(),
        Some(wiring.state()),
        None,
        policy,
        &steps::PlanRequest {
            kinds: &[Kind::ApiKeys],
            now,
            region: &ctx.region,
        },
        &SystemClock::Real,
    )
    .await?;
    let day = now.format("%Y%m%d");
    // In mode = "plan" no rotation is started: the plan is reported only.
    let enforce = policy.mode == crate::domain::policy::Mode::Enforce;
    let account = outcome.caller.account.to_string();
    let keys = outcome
        .plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys && enforce)
        .map(|a| KeyItem {
            key: a.resource.to_string(),
            account: account.clone(),
            execution: format!("api-key-{}-{day}", a.resource),
            action: a.action.as_str().to_owned(),
            at: now.to_rfc3339(),
        })
        .collect();
    let due = outcome
        .plan
        .actions
        .iter()
        .filter(|a| a.kind == Kind::ApiKeys)
        .count();
    Ok(PlannedKeys { account, keys, due })
}
