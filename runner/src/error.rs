//! What ends a run of dtlto-runner with a message of its own: every error the
//! runner reports, with the context its message needs. `Display` is the message
//! (main.rs prints it after `dtlto-runner: error: `); `exit_status` is the status
//! the run ends with (see exit_status.rs).
//!
//! Errors of one part live beside it (`PlanError`, `TransactionError`,
//! `LaunchError`, local mode's in `local/error.rs`, the example's in `example.rs`)
//! and convert into `RunError` here.

use crate::exit_status::ExitStatus;
use crate::guest::launch::LaunchError;
use crate::sandbox::plan::{PlanError, ReadTreeError};
use crate::transaction::{RemoveError, TransactionError};
use dtlto_mock::message::{io_error, quoted, shown};
use std::io;
use std::path::PathBuf;

/// Why a run ended with a message of the runner's own: every error main.rs prints.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A command line the runner cannot follow (exit status 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The signal handlers or the timeout's thread could not be set up.
    #[error("cannot listen for signals or start the --timeout clock: {0}")]
    Signals(io::Error),
    /// The working directory, which relative paths are taken from, is unreadable.
    #[error("cannot read the working directory: {0}")]
    WorkingDirectory(io::Error),
    /// `--guest-wasm FILE`.
    #[error("cannot write {}: {}", quoted(&.path.to_string_lossy()), io_error(.error))]
    WriteGuest {
        /// The file asked for.
        path: PathBuf,
        /// Why it could not be written.
        error: io::Error,
    },
    /// Planning refused the job file (nothing created).
    #[error("{}", refusal(.job_file, .error))]
    Plan {
        /// The job file, as written on the command line.
        job_file: String,
        /// What the planner refused.
        error: PlanError,
    },
    /// A `--read DIR` that cannot be granted.
    #[error(transparent)]
    ReadTree(#[from] ReadTreeError),
    /// The staging could not be made, or the commit failed (naming the job file).
    #[error("{}: {error}", shown(.job_file))]
    Transaction {
        /// The job file, as written on the command line.
        job_file: String,
        /// What the transaction says went wrong, and what it left.
        error: Box<TransactionError>,
    },
    /// The distributor could not be loaded or started.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The path map could not be written for the guest's environment.
    #[error("{0}")]
    PathMap(serde_json::Error),
    /// The distributor trapped (wasm's own fault), described.
    #[error("the distributor trapped, so nothing was committed: {0}")]
    Trapped(String),
    /// The distributor ran into a limit, in words.
    #[error("{0}; nothing was committed")]
    Limit(String),
    /// A mode's own failure: local mode refused to run or one of its jobs failed
    /// (`local/error.rs`), or the built-in example went wrong (`example.rs`). Each
    /// part converts its own error into this, so that this module, below them,
    /// needs to know none of them.
    #[error("{0}")]
    Mode(Box<dyn std::error::Error + Send + Sync>),
    /// No commit was tried, yet nothing failed and no stop came: a bug of the
    /// runner's, said rather than hidden.
    #[error("the run ended without committing, though nothing failed")]
    NoCommit,
    /// The run failed, and its staging could not be removed either.
    #[error("{error}\n  and the staging could not be removed: {}", reasons(.failures))]
    NotRemoved {
        /// Why the run failed.
        error: Box<RunError>,
        /// What could not be removed, and why.
        failures: Vec<RemoveError>,
    },
    /// Everything was committed, but the staging could not be removed.
    #[error(
        "the outputs were committed, but the staging could not be removed: {}",
        reasons(.0)
    )]
    CommittedNotRemoved(Vec<RemoveError>),
}

impl RunError {
    /// A failure of the transaction of the run of `job_file`.
    pub fn transaction(job_file: &str, error: TransactionError) -> RunError {
        RunError::Transaction {
            job_file: job_file.to_owned(),
            error: Box::new(error),
        }
    }

    /// The status a run that ends with this error exits with.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            RunError::Usage(_) => ExitStatus::Usage,
            _ => ExitStatus::Failure,
        }
    }

    /// This error, and what became of the staging after it.
    pub fn with_cleanup(self, cleanup: Result<(), Vec<RemoveError>>) -> RunError {
        match cleanup {
            Ok(()) => self,
            Err(failures) => RunError::NotRemoved {
                error: Box::new(self),
                failures,
            },
        }
    }
}

/// The failures to remove staging, as one line.
pub fn reasons(failures: &[RemoveError]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// A planning refusal, naming the job file it concerns.
fn refusal(job_file: &str, error: &PlanError) -> String {
    match error {
        // It names the job file already.
        PlanError::UnreadableInput { what, .. } if what == "the job file" => error.to_string(),
        _ => format!("{}: {error}", shown(job_file)),
    }
}

/// A command line the runner cannot follow: exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A limit's environment variable holds no valid value.
    #[error(
        "invalid value {} of the environment variable {variable} (the default of --{option}): \
         {reason}",
        quoted(.value)
    )]
    Variable {
        /// What the variable holds.
        value: String,
        /// Its name.
        variable: &'static str,
        /// The option whose default it sets, without its dashes.
        option: &'static str,
        /// Why the value is no limit.
        reason: LimitError,
    },
    /// A runner option, or its variable, that local mode has no use for: it runs no
    /// guest, so it would be ignored, and a limit that is silently ignored is worse
    /// than none.
    #[error(
        "{what} applies to the guest, which {mode} mode does not run; {mode} mode \
         refuses it rather than ignore it\nusage: {usage}"
    )]
    NotForMode {
        /// The option (`--module`) or the variable, in words.
        what: String,
        /// The mode's word.
        mode: &'static str,
        /// The mode's usage.
        usage: &'static str,
    },
    /// `--example` or `--guest-wasm` with a distributor's arguments, which it would
    /// ignore.
    #[error(
        "{option} takes no distributor arguments, and would ignore {} and what follows",
        quoted(.first)
    )]
    StandsAlone {
        /// The option.
        option: String,
        /// The first distributor argument.
        first: String,
    },
    /// A mode's own option that its parser accepted but whose value is unusable.
    #[error("{message}\nusage: {usage}")]
    ModeOption {
        /// What is wrong, in words.
        message: String,
        /// The mode's usage.
        usage: &'static str,
    },
}

/// A value of `--timeout`, `--max-output-bytes` or `--max-entries` that is no limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `--timeout` that is not a number.
    #[error("not a number of seconds")]
    NotSeconds,
    /// `--timeout` of 0 or less.
    #[error("a timeout must be more than 0 seconds")]
    NotPositive,
    /// A count with something but digits.
    #[error("not a whole number (digits only)")]
    NotWholeNumber,
    /// A count past `u64::MAX`.
    #[error("more than {}, the largest limit", u64::MAX)]
    TooLarge,
}
