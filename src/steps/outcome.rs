//! What a job's run did, typed: every step result the CLI prints and the Lambdas return
//! implements [`JobOutcome`], so both count failures and metrics the same way. A CLI exit
//! code, a Lambda's `failed` field and a multi-account total all come from
//! [`JobOutcome::failed`], which rests on the one definition of a failed unit of work
//! ([`Status::is_failure`]: failed, conflict or blocked).

use super::accounts::AccountRun;
use super::api_keys::{Advanced, ApiKeySweep};
use super::certs::CertSweep;
use super::iam_keys::IamSweep;
use super::migration::MigrationSweep;
use super::status::Status;
use crate::domain::model::Kind;
use crate::metrics::Tally;

/// A step's result as its callers count it. Object-safe, so an entry point may hold the
/// result of any job (`&dyn JobOutcome`).
pub trait JobOutcome {
    /// The credential kind it is about (the metrics' `Kind` dimension).
    fn kind(&self) -> Kind;
    /// Units of work that failed, conflicted or were blocked: work left for a person or
    /// the next run.
    fn failed(&self) -> usize;
    /// What it did, counted for metrics.
    fn tally(&self) -> Tally;
    /// The run id its audit records carry (`None`: a result that is not a whole run).
    fn run_id(&self) -> Option<&str>;
}

/// Failed units over every account that ran; accounts that failed as a whole are counted
/// by the caller, which knows how it reports them.
pub fn failed_in<T: JobOutcome, E>(runs: &[AccountRun<T, E>]) -> usize {
    runs.iter()
        .filter_map(|r| r.result.as_ref().ok())
        .map(JobOutcome::failed)
        .sum()
}

impl JobOutcome for IamSweep {
    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }
    fn kind(&self) -> Kind {
        Kind::IamKeys
    }
    fn failed(&self) -> usize {
        IamSweep::failed(self)
    }
    fn tally(&self) -> Tally {
        let mut tally = Tally::new(Kind::IamKeys.as_str());
        for a in &self.applied {
            tally.count(a.status.as_str());
        }
        // Escalations of keys in use keyrotor will not touch: a person must act.
        tally.blocked += self
            .plan
            .actions
            .iter()
            .filter(|a| a.blocked.is_some())
            .count() as u64;
        tally
    }
}

impl JobOutcome for Advanced {
    // A step of a rotation; its run id is in its audit records.
    fn run_id(&self) -> Option<&str> {
        None
    }
    fn kind(&self) -> Kind {
        Kind::ApiKeys
    }
    fn failed(&self) -> usize {
        usize::from(self.status.is_failure())
    }
    fn tally(&self) -> Tally {
        let mut tally = Tally::new(Kind::ApiKeys.as_str());
        for _ in &self.steps {
            tally.count("succeeded");
        }
        if self.status != Status::Done {
            tally.count(self.status.as_str());
        }
        tally
    }
}

impl JobOutcome for ApiKeySweep {
    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }
    fn kind(&self) -> Kind {
        Kind::ApiKeys
    }
    fn failed(&self) -> usize {
        ApiKeySweep::failed(self)
    }
    fn tally(&self) -> Tally {
        let mut tally = Tally::new(Kind::ApiKeys.as_str());
        for rotation in &self.rotations {
            tally.merge(rotation.tally());
        }
        tally
    }
}

impl JobOutcome for MigrationSweep {
    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }
    fn kind(&self) -> Kind {
        Kind::Migration
    }
    fn failed(&self) -> usize {
        MigrationSweep::failed(self)
    }
    fn tally(&self) -> Tally {
        let mut tally = Tally::new(Kind::Migration.as_str());
        for t in &self.transitions {
            tally.count(t.status.as_str());
        }
        tally
    }
}

impl JobOutcome for CertSweep {
    fn run_id(&self) -> Option<&str> {
        Some(&self.run_id)
    }
    fn kind(&self) -> Kind {
        Kind::Certs
    }
    fn failed(&self) -> usize {
        CertSweep::failed(self)
    }
    fn tally(&self) -> Tally {
        let mut tally = Tally::new(Kind::Certs.as_str());
        for n in &self.notifications {
            tally.count(n.status.as_str());
        }
        tally.min_days_to_expiry = self
            .report
            .certificates
            .iter()
            .filter_map(|c| c.days_left)
            .min();
        tally.extra = self.metrics.clone();
        tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::AccountId;
    use crate::steps::accounts::Target;

    /// A run whose units have these statuses.
    struct Units(Vec<Status>);

    impl JobOutcome for Units {
        fn run_id(&self) -> Option<&str> {
            None
        }
        fn kind(&self) -> Kind {
            Kind::Migration
        }
        fn failed(&self) -> usize {
            self.0.iter().filter(|s| s.is_failure()).count()
        }
        fn tally(&self) -> Tally {
            let mut tally = Tally::new(self.kind().as_str());
            for s in &self.0 {
                tally.count(s.as_str());
            }
            tally
        }
    }

    #[test]
    fn the_multi_account_total_counts_every_failure_kind_of_every_account_that_ran() {
        let target = |id: &str| Target {
            account: AccountId::parse(id).unwrap(),
            name: String::new(),
            home: false,
        };
        let runs: Vec<AccountRun<Units, String>> = vec![
            AccountRun {
                target: target("111111111111"),
                result: Ok(Units(vec![Status::Done, Status::Conflict, Status::Skipped])),
            },
            AccountRun {
                target: target("222222222222"),
                result: Err("cannot enter".into()),
            },
            AccountRun {
                target: target("333333333333"),
                result: Ok(Units(vec![Status::Blocked, Status::Failed])),
            },
        ];
        assert_eq!(failed_in(&runs), 3);
    }
}
