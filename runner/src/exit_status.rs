//! The exit statuses of dtlto-runner, in one table (README's "The modes and their
//! exit statuses"): every status the runner itself picks is one of these.

use crate::interrupt::Stop;

/// How a run of dtlto-runner ends, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success; every output committed (validate: a valid job file).
    Success,
    /// 1: an invalid job file, a failed job, a refused or failed commit, or any error
    /// of the runner's own (nothing committed).
    Failure,
    /// 2: a usage error: an unknown option, a bad limit value, a mode word with no
    /// job file.
    Usage,
    /// 124: `--timeout` ran out (nothing committed).
    TimedOut,
    /// 129: stopped by SIGHUP, or the console closing on Windows.
    Hangup,
    /// 130: stopped by SIGINT, or Ctrl-C or Ctrl-Break on Windows.
    Interrupted,
    /// 143: stopped by SIGTERM.
    Terminated,
    /// What the distributor exited with, passed on (0 to 255; its own 1 and 2 among
    /// them).
    Distributor(u8),
}

impl ExitStatus {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::TimedOut => 124,
            ExitStatus::Hangup => 129,
            ExitStatus::Interrupted => 130,
            ExitStatus::Terminated => 143,
            ExitStatus::Distributor(status) => status,
        }
    }

    /// A distributor's own exit status; one no process could exit with (outside 0 to
    /// 255) is a failure.
    pub fn of_distributor(status: i32) -> ExitStatus {
        u8::try_from(status).map_or(ExitStatus::Failure, ExitStatus::Distributor)
    }
}

impl From<Stop> for ExitStatus {
    /// The shell's status for a stop: 128 + the signal's number, 124 for the timeout.
    fn from(stop: Stop) -> ExitStatus {
        match stop {
            Stop::Timeout(_) => ExitStatus::TimedOut,
            Stop::Signal(_, 1) => ExitStatus::Hangup,
            Stop::Signal(_, 2) => ExitStatus::Interrupted,
            // SIGTERM is the only other signal the runner listens for.
            Stop::Signal(..) => ExitStatus::Terminated,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> std::process::ExitCode {
        std::process::ExitCode::from(status.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stops_exit_as_the_shell_reports_them() {
        let code = |stop: Stop| ExitStatus::from(stop).code();
        assert_eq!(code(Stop::Signal("SIGINT", 2)), 130);
        assert_eq!(code(Stop::Signal("Ctrl-Break", 2)), 130);
        assert_eq!(code(Stop::Signal("SIGTERM", 15)), 143);
        assert_eq!(code(Stop::Signal("SIGHUP", 1)), 129);
        assert_eq!(code(Stop::Signal("the console closing", 1)), 129);
        assert_eq!(code(Stop::Timeout(Duration::from_secs(3))), 124);
    }

    #[test]
    fn a_distributor_status_passes_through_when_a_process_can_exit_with_it() {
        assert_eq!(ExitStatus::of_distributor(3).code(), 3);
        assert_eq!(ExitStatus::of_distributor(255).code(), 255);
        assert_eq!(ExitStatus::of_distributor(256), ExitStatus::Failure);
        assert_eq!(ExitStatus::of_distributor(-1), ExitStatus::Failure);
    }
}
