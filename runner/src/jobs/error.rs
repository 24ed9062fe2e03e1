//! What the job machinery that native modes share refuses: a job file it cannot
//! use. Each mode converts it into its own error.

use dtlto_mock::job_file::Violation;
use dtlto_mock::json::ParseError;
use dtlto_mock::message::{io_error, quoted, shown};
use std::io;

/// A job file a native mode (local, remote) cannot use; `shown_as` is its path as
/// written.
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
    /// A declared output is not among its job's arguments, where the runner could
    /// not point it elsewhere.
    #[error(
        "{}: jobs[{job}].outputs[{output}] {} is not among jobs[{job}]'s arguments as an \
         output (`-o {path}` or `-o{path}`), so the runner cannot point it at staging; it \
         refuses to run",
        shown(.shown_as),
        quoted(.path)
    )]
    OutputNotAnArgument {
        /// Its path as written.
        shown_as: String,
        /// The job's index.
        job: usize,
        /// The output's index in the job's outputs.
        output: usize,
        /// The output, as declared.
        path: String,
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

/// Every rule the job file breaks, one a line.
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
