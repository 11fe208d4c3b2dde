//! Multi-account runs: which accounts a run covers (`[accounts]` in the policy), and doing
//! one account's work in each of them, at most `concurrency` at a time. One account's
//! failure (a member role that cannot be assumed, an AWS error) is reported for that
//! account and does not stop the others. [`crate::wiring::Wiring::in_each_account`]
//! enters each account over these, for the CLI and the Lambdas alike.

use std::future::Future;

use futures::StreamExt;
use serde::Serialize;

use super::StepError;
use crate::domain::model::AccountId;
use crate::domain::policy::AccountsPolicy;
use crate::ports::{AccountDirectory, Identity};

/// One account a run works in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub account: AccountId,
    /// The organization's name for it (empty when listed in `[accounts] ids`).
    pub name: String,
    /// The caller's own account: worked in with the caller's credentials, no role assumed.
    pub home: bool,
}

/// What a run did in one account.
#[derive(Debug)]
pub struct AccountRun<T, E = StepError> {
    pub target: Target,
    pub result: Result<T, E>,
}

/// The accounts `policy` covers, sorted by id: the caller's alone when neither
/// `organization` nor `ids` is set; else the organization's ACTIVE accounts (suspended and
/// closing ones are skipped) and the listed ids.
pub async fn targets(
    policy: &AccountsPolicy,
    caller: &AccountId,
    directory: &dyn AccountDirectory,
) -> Result<Vec<Target>, StepError> {
    let mut out: Vec<Target> = Vec::new();
    let mut add = |account: AccountId, name: String| {
        if !out.iter().any(|t| t.account == account) {
            out.push(Target {
                home: &account == caller,
                account,
                name,
            });
        }
    };
    if !policy.is_multi_account() {
        add(caller.clone(), String::new());
    }
    if policy.organization {
        for member in directory.accounts().await? {
            if member.status == "ACTIVE" {
                add(member.id, member.name);
            }
        }
    }
    for id in &policy.ids {
        add(id.clone(), String::new());
    }
    out.sort_by(|a, b| a.account.as_str().cmp(b.account.as_str()));
    Ok(out)
}

/// The accounts of `policy` for the caller of `identity` ([`targets`]), and the caller's
/// partition (`aws`, `aws-cn`, `aws-us-gov`), where the member roles are.
pub async fn resolve(
    policy: &AccountsPolicy,
    identity: &dyn Identity,
    directory: &dyn AccountDirectory,
) -> Result<(Vec<Target>, String), StepError> {
    let caller = identity.caller().await?;
    let targets = targets(policy, &caller.account, directory).await?;
    Ok((targets, caller.partition().to_owned()))
}

/// Runs `work` for every target, at most `concurrency` at once; the runs come back in the
/// order of `targets`, each with its own result.
pub async fn across<'a, T, E, F, Fut>(
    targets: &'a [Target],
    concurrency: u32,
    work: F,
) -> Vec<AccountRun<T, E>>
where
    F: Fn(&'a Target) -> Fut,
    Fut: Future<Output = Result<T, E>> + 'a,
{
    let limit = usize::try_from(concurrency).unwrap_or(1).max(1);
    let mut runs: Vec<(usize, AccountRun<T, E>)> =
        futures::stream::iter(targets.iter().enumerate())
            .map(|(i, target)| {
                let run = work(target);
                async move {
                    (
                        i,
                        AccountRun {
                            target: target.clone(),
                            result: run.await,
                        },
                    )
                }
            })
            .buffer_unordered(limit)
            .collect()
            .await;
    runs.sort_by_key(|(i, _)| *i);
    runs.into_iter().map(|(_, run)| run).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::domain::policy::Policy;
    use crate::ports::{MemberAccount, PortError, PortResult};

    struct Org(Vec<(&'static str, &'static str)>);

    #[async_trait]
    impl AccountDirectory for Org {
        async fn accounts(&self) -> PortResult<Vec<MemberAccount>> {
            Ok(self
                .0
                .iter()
                .map(|(id, status)| MemberAccount {
                    id: AccountId::parse(id).unwrap(),
                    name: format!("acct-{id}"),
                    status: (*status).to_owned(),
                })
                .collect())
        }
    }

    struct NoOrg;

    #[async_trait]
    impl AccountDirectory for NoOrg {
        async fn accounts(&self) -> PortResult<Vec<MemberAccount>> {
            Err(PortError::Other {
                operation: "organizations:ListAccounts".into(),
                message: "AWSOrganizationsNotInUseException".into(),
            })
        }
    }

    fn accounts(toml: &str) -> AccountsPolicy {
        Policy::from_toml(toml, "keyrotor.toml").unwrap().accounts
    }

    fn ids(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.account.as_str()).collect()
    }

    #[tokio::test]
    async fn single_account_policy_covers_the_caller_only_and_lists_nothing() {
        let caller = AccountId::parse("111111111111").unwrap();
        let t = targets(&accounts(""), &caller, &NoOrg).await.unwrap();
        assert_eq!(ids(&t), ["111111111111"]);
        assert!(t[0].home);
    }

    #[tokio::test]
    async fn organization_covers_its_active_accounts_and_the_listed_ids() {
        let caller = AccountId::parse("111111111111").unwrap();
        let org = Org(vec![
            ("333333333333", "ACTIVE"),
            ("111111111111", "ACTIVE"),
            ("222222222222", "SUSPENDED"),
            ("444444444444", "PENDING_CLOSURE"),
        ]);
        let policy = accounts("[accounts]\norganization = true\nids = [\"555555555555\"]\n");
        let t = targets(&policy, &caller, &org).await.unwrap();
        assert_eq!(ids(&t), ["111111111111", "333333333333", "555555555555"]);
        assert_eq!(
            t.iter().map(|t| t.home).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(t[1].name, "acct-333333333333");
    }

    #[tokio::test]
    async fn explicit_ids_without_an_organization_do_not_list_it() {
        let caller = AccountId::parse("111111111111").unwrap();
        let policy = accounts("[accounts]\nids = [\"222222222222\"]\n");
        let t = targets(&policy, &caller, &NoOrg).await.unwrap();
        assert_eq!(ids(&t), ["222222222222"]);
        assert!(!t[0].home);
    }

    #[tokio::test]
    async fn an_organization_that_cannot_be_listed_fails_the_run() {
        let caller = AccountId::parse("111111111111").unwrap();
        let policy = accounts("[accounts]\norganization = true\n");
        let e = targets(&policy, &caller, &NoOrg).await.unwrap_err();
        assert!(e.to_string().contains("NotInUse"), "{e}");
    }

    fn target(id: &str) -> Target {
        Target {
            account: AccountId::parse(id).unwrap(),
            name: String::new(),
            home: false,
        }
    }

    // Virtual time: the sleeps only order the runs.
    #[tokio::test(start_paused = true)]
    async fn accounts_run_concurrently_up_to_the_bound_and_a_failure_stays_in_its_account() {
        let targets: Vec<Target> = (1..=7).map(|n| target(&format!("{n:012}"))).collect();
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let order = Mutex::new(Vec::new());
        let runs: Vec<AccountRun<u64>> = across(&targets, 3, |t| {
            let (running, peak, order) = (&running, &peak, &order);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                // Later accounts finish first: results still come back in target order.
                let n: u64 = t.account.as_str().parse().unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10 * (8 - n))).await;
                order.lock().unwrap().push(n);
                running.fetch_sub(1, Ordering::SeqCst);
                if n == 4 {
                    Err(StepError::Blocked("account 4 refused".into()))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 3, "at most 3, and 3 were used");
        assert_eq!(
            ids(&runs.iter().map(|r| r.target.clone()).collect::<Vec<_>>()),
            ids(&targets)
        );
        let ok: Vec<u64> = runs
            .iter()
            .filter_map(|r| r.result.as_ref().ok().copied())
            .collect();
        assert_eq!(ok, [1, 2, 3, 5, 6, 7]);
        assert!(runs[3].result.is_err());
        // They did not simply run one after the other.
        assert_ne!(*order.lock().unwrap(), [1, 2, 3, 4, 5, 6, 7]);
    }
}
