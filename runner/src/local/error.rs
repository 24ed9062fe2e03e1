//! What local mode refuses, and why its jobs fail: its job-file errors, its
//! confinement and its jobs' failures. `LocalError` converts into the runner's
//! `RunError` (`crate::error`), which prints it. (Its command line's errors are the
//! runner's usage errors, in `crate::error`.)

use crate::error::RunError;
use crate::transaction::TransactionError;
use dtlto_mock::job_file::Violation;
use dtlto_mock::json::ParseError;
use dtlto_mock::message::{io_error, quoted, shown};
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
    /// A declared output is not among its job's arguments.
    #[error(
        "{}: jobs[{job}].outputs[{output}] {} is not among jobs[{job}]'s arguments as an \
         output (`-o {path}` or `-o{path}`), so the runner cannot point it at staging; it \
         refuses to run",
        shown(.job_file),
        quoted(.path)
    )]
    OutputNotAnArgument {
        /// The job file, as written.
        job_file: String,
        /// The job's index.
        job: usize,
        /// The output's index in the job's outputs.
        output: usize,
        /// The output, as declared.
        path: String,
    },
    /// The job file read for the jobs and the one planned differ (it was
    /// rewritten in between).
    #[error("{}: the job file changed while it was read", shown(.0))]
    Changed(String),
    /// A job failed, so nothing was committed.
    #[error("{0}\n  nothing was committed: every output is as it was before the run")]
    Job(JobError),
    /// The commit failed (it says what it did).
    #[error("{0}")]
    Commit(Box<TransactionError>),
    /// No commit was tried, yet nothing failed and no stop came.
    #[error("the run ended without its transaction")]
    NoTransaction,
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

/// A job file local mode cannot use; `shown_as` is its path as written.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    /// It cannot be opened.
    #[error("cannot open the job file {}: {}", shown(.shown_as), io_error(.error))]
    Open {
        /// Its path as written.
        shown_as: String,
        /// Why not.
        error: io::Error,
    },
    /// It cannot be read.
    #[error("cannot read the job file {}: {}", shown(.shown_as), io_error(.error))]
    Read {
        /// Its path as written.
        shown_as: String,
        /// Why not.
        error: io::Error,
    },
    /// A FIFO, a device, a directory: nothing a job file can be.
    #[error("cannot read the job file {}: it is {kind}, not a regular file", shown(.shown_as))]
    NotRegular {
        /// Its path as written.
        shown_as: String,
        /// What it is, in words ("a FIFO").
        kind: &'static str,
    },
    /// It is larger than any job file.
    #[error("{}: a job file may hold at most {limit} bytes (1 GiB)", shown(.shown_as))]
    TooBig {
        /// Its path as written.
        shown_as: String,
        /// The most a job file may hold.
        limit: u64,
    },
    /// It is not JSON.
    #[error(
        "{}:{}:{}: not valid JSON: {}",
        shown(.shown_as),
        .error.line,
        .error.column,
        .error.message
    )]
    NotJson {
        /// Its path as written.
        shown_as: String,
        /// Where the JSON goes wrong.
        error: ParseError,
    },
    /// JSON, but not a DTLTO job file.
    #[error("{}", invalid(.shown_as, .violations))]
    Invalid {
        /// Its path as written.
        shown_as: String,
        /// Every rule it breaks, with its JSON location.
        violations: Vec<Violation>,
    },
}

fn invalid(shown_as: &str, violations: &[Violation]) -> String {
    let mut message = format!(
        "{} is not a valid DTLTO job file ({} problem{}):",
        shown(shown_as),
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for violation in violations {
        message.push_str(&format!("\n  {}: {violation}", shown(shown_as)));
    }
    message
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
