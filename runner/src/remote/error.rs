//! Every error of remote mode, each with what a user needs to act on it: the endpoint,
//! the job, the path or digest.

use std::io;
use std::path::PathBuf;

/// What went wrong talking to a REAPI service or preparing a job's action.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The settings name an endpoint, a TLS file or a header that cannot be used.
    #[error("remote endpoint {endpoint}: {what}")]
    Settings {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with the settings.
        what: String,
    },
    /// The endpoint did not answer, or refused the connection, or TLS failed.
    #[error("cannot connect to the remote endpoint {endpoint}: {what}")]
    Connect {
        /// The endpoint as given.
        endpoint: String,
        /// The transport's reason.
        what: String,
    },
    /// The endpoint cannot serve this client (no SHA-256, for one).
    #[error("remote endpoint {endpoint}: {what}")]
    Unsupported {
        /// The endpoint as given.
        endpoint: String,
        /// What it lacks.
        what: String,
    },
    /// A call failed (after the retries transient failures get).
    #[error("{job}remote endpoint {endpoint}: {rpc} failed: {code:?}: {message}")]
    Rpc {
        /// The endpoint as given.
        endpoint: String,
        /// `job N: ` or nothing.
        job: JobLabel,
        /// The service method.
        rpc: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// A cache-only endpoint (execution disabled) has no result for this action.
    #[error(
        "jobs[{job}]: remote endpoint {endpoint} cannot execute actions (cache only) and has no cached result for action {action}"
    )]
    NotCached {
        /// The job's index in the job file.
        job: usize,
        /// The endpoint as given.
        endpoint: String,
        /// The action's digest, `hash/size`.
        action: String,
    },
    /// A declared input cannot be read.
    #[error("jobs[{job}]: input {declared}: {source}")]
    Input {
        /// The job's index in the job file.
        job: usize,
        /// The input as the job file declares it (or the toolchain file).
        declared: String,
        /// The cause.
        source: io::Error,
    },
    /// The compiler, or what it loads, cannot be found or read.
    #[error("jobs[{job}]: compiler {compiler}: {what}")]
    Toolchain {
        /// The job's index in the job file.
        job: usize,
        /// argv\[0\] as the job file has it.
        compiler: String,
        /// What failed.
        what: String,
    },
    /// The job cannot be expressed as an action (path syntax, conflicting paths).
    #[error("jobs[{job}]: {what}")]
    Action {
        /// The job's index in the job file.
        job: usize,
        /// What is wrong.
        what: String,
    },
    /// The action's own status (a worker failure, not the compiler's exit code).
    #[error(
        "jobs[{job}]: remote endpoint {endpoint}: the action {action} failed: {code:?}: {message}"
    )]
    Execution {
        /// The job's index in the job file.
        job: usize,
        /// The endpoint as given.
        endpoint: String,
        /// The action's digest.
        action: String,
        /// The status code the server gave.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The action succeeded but did not produce a declared output.
    #[error("jobs[{job}]: output {declared}: the remote action did not produce it")]
    MissingOutput {
        /// The job's index in the job file.
        job: usize,
        /// The output as the job file declares it.
        declared: String,
    },
    /// A blob the server sent does not match its digest.
    #[error(
        "jobs[{job}]: remote endpoint {endpoint}: blob {digest} ({what}) does not match its digest"
    )]
    Corrupt {
        /// The job's index in the job file.
        job: usize,
        /// The endpoint as given.
        endpoint: String,
        /// The digest, `hash/size`.
        digest: String,
        /// What the blob is (an output's declared path, stdout).
        what: String,
    },
    /// An output could not be written where the caller asked.
    #[error("jobs[{job}]: output {declared}: cannot write {}: {source}", path.display())]
    WriteOutput {
        /// The job's index in the job file.
        job: usize,
        /// The output as the job file declares it.
        declared: String,
        /// Where it was to be written.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The job was cancelled.
    #[error("jobs[{job}]: cancelled")]
    Cancelled {
        /// The job's index in the job file.
        job: usize,
    },
}

/// `job N: ` in front of a message, or nothing when no job is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLabel(pub Option<usize>);

impl std::fmt::Display for JobLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(job) => write!(f, "jobs[{job}]: "),
            None => Ok(()),
        }
    }
}
