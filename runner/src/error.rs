//! What ends a run of dtlto-runner with a message of its own: every error the
//! runner reports, with the context its message needs. `Display` is the message
//! (main.rs prints it after `dtlto-runner: error: `); `exit_status` is the status
//! the run ends with (see exit_status.rs).
//!
//! Errors of one part live beside it (`PlanError`, `TransactionError`,
//! `LaunchError`, ...) and convert into `RunError` here.

use crate::exit_status::ExitStatus;
use crate::guest::launch::LaunchError;
use crate::sandbox::plan::{PlanError, ReadTreeError};
use crate::transaction::{RemoveError, TransactionError};
use dtlto_mock::job_file::Violation;
use dtlto_mock::json::ParseError;
use dtlto_mock::message::{io_error, quoted, shown};
use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A command line the runner cannot follow (exit status 2).
    #[error(transparent)]
    Usage(#[from] UsageError),
    #[error("cannot listen for signals or start the --timeout clock: {0}")]
    Signals(io::Error),
    #[error("cannot read the working directory: {0}")]
    WorkingDirectory(io::Error),
    /// `--guest-wasm FILE`.
    #[error("cannot write {}: {}", quoted(&.path.to_string_lossy()), io_error(.error))]
    WriteGuest { path: PathBuf, error: io::Error },
    /// Planning refused the job file (nothing created).
    #[error("{}", refusal(.job_file, .error))]
    Plan { job_file: String, error: PlanError },
    #[error(transparent)]
    ReadTree(#[from] ReadTreeError),
    /// The staging could not be made, or the commit failed (naming the job file).
    #[error("{}: {error}", shown(.job_file))]
    Transaction {
        job_file: String,
        error: Box<TransactionError>,
    },
    #[error(transparent)]
    Launch(#[from] LaunchError),
    /// The path map could not be written for the guest's environment.
    #[error("{0}")]
    PathMap(serde_json::Error),
    #[error("the distributor trapped, so nothing was committed: {0}")]
    Trapped(String),
    /// The distributor ran into a limit, in words.
    #[error("{0}; nothing was committed")]
    Limit(String),
    #[error(transparent)]
    Local(#[from] LocalError),
    #[error(transparent)]
    Example(#[from] ExampleError),
    /// The run failed, and its staging could not be removed either.
    #[error("{error}\n  and the staging could not be removed: {}", reasons(.failures))]
    NotRemoved {
        error: Box<RunError>,
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
        value: String,
        variable: &'static str,
        option: &'static str,
        reason: LimitError,
    },
    /// Local mode's own arguments.
    #[error("{0}\n{LOCAL_USAGE}")]
    Local(LocalUsage),
    /// A runner option, or its variable, that local mode has no use for: it runs no
    /// guest, so it would be ignored, and a limit that is silently ignored is worse
    /// than none.
    #[error(
        "{what} applies to the guest, which local mode does not run; local mode \
         refuses it rather than ignore it\n{LOCAL_USAGE}"
    )]
    NotForLocalMode { what: String },
}

/// A value of `--timeout`, `--max-output-bytes` or `--max-entries` that is no limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("not a number of seconds")]
    NotSeconds,
    #[error("a timeout must be more than 0 seconds")]
    NotPositive,
    #[error("not a whole number (digits only)")]
    NotWholeNumber,
    #[error("more than {}, the largest limit", u64::MAX)]
    TooLarge,
}

/// Local mode's usage line, after each of its usage errors.
pub const LOCAL_USAGE: &str = "usage: dtlto-runner [--verbose] [--timeout SECONDS] local [--jobs N] [--hermetic] [--verbose] [ARG]... JOB_FILE";

/// `dtlto-runner local --help`.
pub const LOCAL_HELP: &str = "\
Runs a DTLTO job file's backend compiles for real, as LLVM's local.py does: each
job's `common.args + jobs[i].args`, its outputs written into a private staging and
committed together after every job has succeeded, or none. On Linux each job is
confined (Landlock) to writing its staging. See docs/local.md.

Options (after `local`):
  --jobs N, -j N   run N jobs at once (0: one per core); lines are relayed whole
  --hermetic       let each job read only what it declares, its compiler and the
                   system's libraries (Linux, Landlock); refuses where that cannot hold
  --verbose        print the confinement, each job's command and each commit
  -h, --help       print this help

Runner options (before `local`): --verbose, --timeout SECONDS (or
DTLTO_RUNNER_TIMEOUT). The guest's options (--module, --read, --max-output-bytes,
--max-entries and their variables) are refused: local mode runs no guest.";

/// Local mode's arguments (after the word `local`) that it cannot follow.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LocalUsage {
    #[error("local mode needs a job file")]
    NoJobFile,
    /// The last word, where the job file goes, is an option.
    #[error("local mode needs a job file after its options; {} is an option", quoted(.0))]
    OptionForJobFile(String),
    /// `--jobs` or `-j` as the last word before the job file.
    #[error("{0} needs a number")]
    NoNumber(String),
    #[error("--jobs {}: not a number of jobs", quoted(.0))]
    NotANumber(String),
    #[error("unknown option {} for local mode", quoted(.0))]
    UnknownOption(String),
}

/// Local mode refused to run, or a job failed (the runner's own errors of planning
/// and committing are `RunError`'s).
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
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
        job_file: String,
        job: usize,
        output: usize,
        path: String,
    },
    #[error("{}: the job file changed while it was read", shown(.0))]
    Changed(String),
    /// A job failed, so nothing was committed.
    #[error("{0}\n  nothing was committed: every output is as it was before the run")]
    Job(JobError),
    /// The commit failed (it says what it did).
    #[error("{0}")]
    Commit(Box<TransactionError>),
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
    #[error("{variable}=off turns it off")]
    SwitchedOff { variable: &'static str },
    #[error("this kernel does not offer it")]
    Kernel,
    #[error("this system does not have it")]
    System,
}

/// A job file local mode cannot use; `shown_as` is its path as written.
#[derive(Debug, thiserror::Error)]
pub enum JobFileError {
    #[error("cannot open the job file {}: {}", shown(.shown_as), io_error(.error))]
    Open { shown_as: String, error: io::Error },
    #[error("cannot read the job file {}: {}", shown(.shown_as), io_error(.error))]
    Read { shown_as: String, error: io::Error },
    /// A FIFO, a device, a directory: nothing a job file can be.
    #[error("cannot read the job file {}: it is {kind}, not a regular file", shown(.shown_as))]
    NotRegular {
        shown_as: String,
        kind: &'static str,
    },
    #[error("{}: a job file may hold at most {limit} bytes (1 GiB)", shown(.shown_as))]
    TooBig { shown_as: String, limit: u64 },
    #[error(
        "{}:{}:{}: not valid JSON: {}",
        shown(.shown_as),
        .error.line,
        .error.column,
        .error.message
    )]
    NotJson { shown_as: String, error: ParseError },
    #[error("{}", invalid(.shown_as, .violations))]
    Invalid {
        shown_as: String,
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
    #[error("jobs[{job}]: cannot wait for its process: {}", io_error(.error))]
    Wait { job: usize, error: io::Error },
    #[error(
        "jobs[{job}]: cannot create its TMPDIR {}: {}",
        quoted(&.dir.to_string_lossy()),
        io_error(.error)
    )]
    Tmpdir {
        job: usize,
        dir: PathBuf,
        error: io::Error,
    },
    #[error("jobs[{job}]: {error}")]
    Confine { job: usize, error: ConfineError },
    #[error("jobs[{job}] could not be started ({}): {command}", io_error(.error))]
    Start {
        job: usize,
        error: io::Error,
        /// The command, as shell words.
        command: String,
    },
}

/// Why a job's Landlock ruleset could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("cannot build the Landlock ruleset: {0}")]
    Ruleset(String),
    #[error("Landlock is a Linux facility")]
    Unsupported,
}

/// The built-in example went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    #[error("cannot create {}: {error}", .path.display())]
    TempDir { path: PathBuf, error: io::Error },
    #[error("{0}")]
    JobFile(serde_json::Error),
    #[error("cannot write {name}: {error}")]
    Write { name: String, error: io::Error },
    #[error("the mock exited with status {}", .0.code())]
    Mock(ExitStatus),
    #[error("jobs[{job}].outputs[0] was not written: {error}")]
    NotWritten { job: usize, error: io::Error },
    #[error("{0}")]
    Read(io::Error),
    #[error("jobs[{job}].outputs[0] differs from {source_file}")]
    Differs { job: usize, source_file: String },
}
