//! Why a run failed, and the exit status that tells the linker.

use std::fmt;
use std::process::ExitCode;

#[derive(Debug)]
pub enum Failure {
    /// The command line cannot be understood (exit 2).
    Usage(String),
    /// The job file is invalid or a job could not be done (exit 1).
    Job(String),
    /// A `--fault=exit-...` asked for this status; its stderr line said so already.
    Injected(u8),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Job(_) => ExitCode::from(1),
            Failure::Injected(status) => ExitCode::from(*status),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(message) | Failure::Job(message) => f.write_str(message),
            Failure::Injected(status) => write!(f, "injected exit status {status}"),
        }
    }
}
