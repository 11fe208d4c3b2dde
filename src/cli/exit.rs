//! The exit codes of `keyrotor`: the table in the README's "Exit codes" section, as a type.
//! A unit test reads that table and fails when the two drift apart. [`CliError`] is what
//! ends a command, with its code.

use std::process::ExitCode;

use crate::domain::policy::PolicyError;
use crate::ports::PortError;
use crate::steps::StepError;

/// How a command ended. The discriminant is the process exit code; [`Exit::meaning`] is
/// the README's wording, word for word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// 0: success.
    Success = 0,
    /// 1: `audit verify` found tampering.
    Tampered = 1,
    /// 2: bad input (arguments, policy file, `KEYROTOR_NOW`, missing region); nothing was done.
    BadInput = 2,
    /// 3: AWS refused or could not be reached.
    Aws = 3,
    /// 4: any other failure (failed actions, notifications, an account of `[accounts]`).
    Failed = 4,
    /// 5: `certs --fail-within N` found a certificate expiring within N days.
    CertExpiring = 5,
    /// 6: another run holds the lease on the same credentials; nothing was done.
    LeaseHeld = 6,
    /// 7: `--via step-functions`: the execution was still running when `--wait` ran out.
    StillRunning = 7,
}

impl Exit {
    /// Every exit code, in order.
    pub const ALL: [Exit; 8] = [
        Exit::Success,
        Exit::Tampered,
        Exit::BadInput,
        Exit::Aws,
        Exit::Failed,
        Exit::CertExpiring,
        Exit::LeaseHeld,
        Exit::StillRunning,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// What the code means, as the README's table says it.
    pub const fn meaning(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::Tampered => "`audit verify` found tampering",
            Exit::BadInput => {
                "bad input: arguments, policy file, `KEYROTOR_NOW`, missing region — nothing was done"
            }
            Exit::Aws => {
                "AWS refused or could not be reached: credentials, access denied, endpoint, missing table"
            }
            Exit::Failed => {
                "any other failure, including notifications that could not be sent (retried by the next sweep) and, with `[accounts]`, an account that failed"
            }
            Exit::CertExpiring => {
                "`certs --fail-within N`: a certificate expires within N days or has expired"
            }
            Exit::LeaseHeld => {
                "another keyrotor run holds the lease on the same credentials (it says which run and until when); nothing was done"
            }
            Exit::StillRunning => {
                "`--via step-functions`: the execution was still running when `--wait` ran out (it goes on; the message says how to follow it)"
            }
        }
    }

    /// How bad an outcome is when several parts of one command end differently (a sweep
    /// of every kind): a failure that stopped work outranks one that left work to retry,
    /// which outranks an outcome that only says "not yet".
    fn severity(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::StillRunning => 1,
            Exit::CertExpiring => 2,
            Exit::LeaseHeld => 3,
            Exit::Failed => 4,
            Exit::Aws => 5,
            Exit::BadInput => 6,
            Exit::Tampered => 7,
        }
    }

    /// The worse of two outcomes.
    pub fn worst(self, other: Exit) -> Exit {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit.code())
    }
}

/// An error that ends the command, with its exit code.
#[derive(Debug, thiserror::Error)]
pub(super) enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("{0}")]
    Aws(#[from] PortError),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    InProgress(String),
    #[error("blocked: {0}")]
    Blocked(String),
}

impl From<StepError> for CliError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::InvalidInput(m) => CliError::Usage(m),
            StepError::InProgress(m) => CliError::InProgress(m),
            StepError::Blocked(m) => CliError::Blocked(m),
            StepError::Port(e) => CliError::Aws(e),
        }
    }
}

impl CliError {
    pub(super) fn exit_code(&self) -> Exit {
        match self {
            CliError::Usage(_) | CliError::Policy(_) => Exit::BadInput,
            CliError::Aws(_) => Exit::Aws,
            CliError::Io(_) | CliError::Blocked(_) => Exit::Failed,
            CliError::InProgress(_) => Exit::LeaseHeld,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows `| code | meaning |` of the README's "### Exit codes" table.
    fn readme_rows() -> Vec<(u8, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Exit codes")
            .nth(1)
            .expect("the README has a \"### Exit codes\" section");
        section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .filter_map(|line| {
                let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
                let code = cells.first()?.parse::<u8>().ok()?;
                Some((code, cells[1..].join("|")))
            })
            .collect()
    }

    #[test]
    fn every_readme_exit_code_is_an_exit_variant_with_the_same_meaning() {
        let rows = readme_rows();
        assert!(!rows.is_empty(), "no rows parsed from the README table");
        for (code, meaning) in &rows {
            let exit = Exit::ALL
                .iter()
                .find(|e| e.code() == *code)
                .unwrap_or_else(|| panic!("README exit code {code} has no Exit variant"));
            assert_eq!(exit.meaning(), meaning, "meaning of exit code {code}");
        }
    }

    #[test]
    fn every_exit_variant_is_a_readme_row() {
        let rows = readme_rows();
        for exit in Exit::ALL {
            assert!(
                rows.iter().any(|(code, _)| *code == exit.code()),
                "{exit:?} (exit code {}) is missing from the README table",
                exit.code()
            );
        }
        assert_eq!(rows.len(), Exit::ALL.len(), "one README row per code");
    }

    #[test]
    fn the_worst_outcome_wins_whatever_the_order() {
        assert_eq!(Exit::Success.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Failed.worst(Exit::Success), Exit::Failed);
        assert_eq!(Exit::LeaseHeld.worst(Exit::Failed), Exit::Failed);
        assert_eq!(Exit::Aws.worst(Exit::Failed), Exit::Aws);
    }
}
