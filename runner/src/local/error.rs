//! What local mode refuses, and why its jobs fail: its job-file errors, its
//! confinement and its jobs' failures. `LocalError` converts into the runner's
//! `RunError` (`crate::error`), which prints it. (Its command line's errors are the
//! runner's usage errors, in `crate::error`.)

use crate::error::RunError;
use crate::jobs::error::JobFileError;
use dtlto_mock::message::{io_error, quoted};
use std::io;
use std::path::PathBuf;

/// Local mode refused to run, or a job failed (the runner's own errors of planning
/// and committing are `RunError`'s).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The job file cannot be used.
    #[error(transparent)]
    JobFile(#[from] JobFileError),
    /// `--hermetic` where Landlock is missing.
    #[error(
        "--hermetic needs Landlock (Linux 5.13 or later), and {0}; without it nothing holds \
         the jobs to their declared inputs, so the runner refuses to run rather than pretend"
    )]
    NoLandlock(NoLandlock),
    /// `--hermetic` where one of its rules cannot be kept (the reason, in words).
    #[error(
        "--hermetic cannot hold the jobs to their declared inputs and their staging here: \
         {0}; the runner refuses to run rather than pretend"
    )]
    HermeticNotHeld(String),
    /// The plan, made from the job file, lacks a job's outputs: a bug of the
    /// runner's, said rather than hidden.
    #[error("{0}'s outputs are missing from the run's plan")]
    NotPlanned(String),
    /// A job failed, so nothing was committed.
    #[error("{0}\n  nothing was committed: every output is as it was before the run")]
    Job(JobError),
    /// The runner could not become the reaper of its jobs' orphans (Linux).
    #[error(
        "cannot make the runner the reaper of what its jobs leave running \
         (prctl PR_SET_CHILD_SUBREAPER): {0}; without it a job's background process could \
         outlive the run, so the runner refuses to run"
    )]
    Reaper(io::Error),
}

/// Why Landlock is missing.
#[derive(Debug, thiserror::Error)]
pub enum NoLandlock {
    /// The user turned it off.
    #[error("{variable}=off turns it off")]
    SwitchedOff {
        /// The variable that did.
        variable: &'static str,
    },
    /// Linux before 5.13, or Landlock disabled at boot.
    #[error("this kernel does not offer it")]
    Kernel,
    /// Not Linux.
    #[error("this system does not have it")]
    System,
}

/// Why a job of local mode failed; `job` is its index.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// It ran and failed, as local mode describes it (how it ended, its command).
    #[error("{0}")]
    Failed(String),
    /// Its process could not be waited for.
    #[error("jobs[{job}]: cannot wait for its process: {}", io_error(.error))]
    Wait {
        /// The job's index.
        job: usize,
        /// Why not.
        error: io::Error,
    },
    #[error(
        "jobs[{job}]: cannot create its TMPDIR {}: {}",
        quoted(&.dir.to_string_lossy()),
        io_error(.error)
    )]
    /// Its TMPDIR in staging could not be made.
    Tmpdir {
        /// The job's index.
        job: usize,
        /// The directory.
        dir: PathBuf,
        /// Why not.
        error: io::Error,
    },
    /// Its confinement could not be prepared.
    #[error("jobs[{job}]: {error}")]
    Confine {
        /// The job's index.
        job: usize,
        /// Why not.
        error: ConfineError,
    },
    #[error("jobs[{job}] could not be started ({}): {command}", io_error(.error))]
    /// Its process could not be started.
    Start {
        /// The job's index.
        job: usize,
        /// Why not.
        error: io::Error,
        /// The command, as shell words.
        command: String,
    },
}

/// Why a job's Landlock ruleset could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The kernel or the crate refused the ruleset, in words.
    #[error("cannot build the Landlock ruleset: {0}")]
    Ruleset(String),
    /// Not Linux.
    #[error("Landlock is a Linux facility")]
    Unsupported,
}

impl From<LocalError> for RunError {
    fn from(error: LocalError) -> RunError {
        RunError::Mode(Box::new(error))
    }
}
