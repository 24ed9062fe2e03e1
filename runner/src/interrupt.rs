//! Stopping a run from outside, at any moment: SIGINT, SIGTERM and SIGHUP (Ctrl-C,
//! Ctrl-Break and a closing console on Windows), and `--timeout`.
//!
//! The run's transaction lives here while the guest runs, so that a stop can reach
//! it even when the main thread cannot: a guest blocked inside a host call (opening
//! a FIFO, sleeping) never returns to be interrupted. A stop first asks the guest to
//! trap at its next instruction and gives the main thread a moment to wind up; if
//! it does not, the stop removes the staging itself and ends the process. Either
//! way nothing is committed, one line says so, and the exit status is the shell's
//! (130, 143, 129; 124 for a timeout, as timeout(1)). A commit holds the
//! transaction while it runs and rolls back when it sees the stop.

use crate::transaction::{RemoveError, Transaction, TransactionError};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

/// Why the run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A signal, by its conventional name and number.
    Signal(&'static str, i32),
    /// `--timeout` ran out.
    Timeout(Duration),
}

impl Stop {
    /// The status shells report for a process ended this way.
    pub fn exit_status(self) -> i32 {
        match self {
            Stop::Signal(_, number) => 128 + number,
            Stop::Timeout(_) => 124,
        }
    }

    pub fn describe(self) -> String {
        match self {
            Stop::Signal(name, _) => format!("stopped by {name}"),
            Stop::Timeout(limit) => {
                format!("timed out after {} s (--timeout)", limit.as_secs_f64())
            }
        }
    }
}

/// How long a stop waits for the main thread to wind the run up itself.
const GRACE: Duration = Duration::from_millis(300);

enum Phase {
    /// Planning: nothing exists yet that a stop would have to remove.
    Preparing,
    /// The guest runs, or the commit does; the transaction is here.
    Running(Transaction),
    /// The main thread has taken the transaction back to finish the run.
    Settled,
}

static STOP: OnceLock<Stop> = OnceLock::new();
static PHASE: Mutex<Phase> = Mutex::new(Phase::Preparing);
static SETTLED: Condvar = Condvar::new();

fn phase() -> MutexGuard<'static, Phase> {
    PHASE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the run was asked to stop, if it was.
pub fn stopped() -> Option<Stop> {
    STOP.get().copied()
}

/// Starts listening for the signals, and the clock of `timeout` if there is one.
pub fn install(timeout: Option<Duration>) -> Result<(), String> {
    platform::install().map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    if let Some(limit) = timeout {
        std::thread::Builder::new()
            .name("timeout".into())
            .spawn(move || {
                std::thread::sleep(limit);
                request(Stop::Timeout(limit));
            })
            .map_err(|e| format!("cannot start the --timeout clock: {e}"))?;
    }
    Ok(())
}

/// Creates the transaction where a stop can reach it; `Err` with the stop if one
/// came first (then nothing was created).
pub fn begin(
    create: impl FnOnce() -> Result<Transaction, TransactionError>,
) -> Result<Result<(), TransactionError>, Stop> {
    let mut phase = phase();
    if let Some(stop) = stopped() {
        return Err(stop);
    }
    Ok(create().map(|transaction| *phase = Phase::Running(transaction)))
}

/// Runs `work` on the transaction, which a stop cannot take away meanwhile.
pub fn with_transaction<R>(work: impl FnOnce(&mut Transaction) -> R) -> Option<R> {
    match &mut *phase() {
        Phase::Running(transaction) => Some(work(transaction)),
        _ => None,
    }
}

/// Takes the transaction back to finish the run. Returns `None` only when a stop has
/// taken it and is ending the process.
pub fn settle() -> Option<Transaction> {
    let mut phase = phase();
    let taken = match std::mem::replace(&mut *phase, Phase::Settled) {
        Phase::Running(transaction) => Some(transaction),
        Phase::Preparing => None,
        Phase::Settled => return wait_for_exit(),
    };
    SETTLED.notify_all();
    taken
}

/// A stop is removing the staging and will end the process.
fn wait_for_exit<T>() -> T {
    loop {
        std::thread::park();
    }
}

/// The one line a stopped run prints: what stopped it, and that nothing stayed.
pub fn report(stop: Stop, cleanup: Result<(), Vec<RemoveError>>) {
    match cleanup {
        Ok(()) => dtlto_mock::stderr_line!(
            "dtlto-runner: {}: nothing was committed, and the staging was removed",
            stop.describe()
        ),
        Err(failures) => {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            dtlto_mock::stderr_line!(
                "dtlto-runner: {}: nothing was committed, but the staging could not be removed: {}",
                stop.describe(),
                reasons.join("; ")
            );
        }
    }
}

/// What a signal or the timeout does: see the module's comment.
fn request(stop: Stop) {
    if STOP.set(stop).is_err() {
        return;
    }
    crate::launch::interrupt_guests();
    crate::local::stop_jobs();
    let guard = phase();
    let (mut phase, _) = SETTLED
        .wait_timeout_while(guard, GRACE, |p| matches!(p, Phase::Running(_)))
        .unwrap_or_else(PoisonError::into_inner);
    let cleanup = match std::mem::replace(&mut *phase, Phase::Settled) {
        Phase::Preparing => Ok(()),
        Phase::Running(transaction) => transaction.close(),
        // The main thread winds the run up and reports.
        Phase::Settled => return,
    };
    report(stop, cleanup);
    // Still holding the phase: the main thread cannot start anything now.
    std::process::exit(stop.exit_status());
}

#[cfg(unix)]
mod platform {
    use super::{request, Stop};
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    use std::io::Read;
    use std::os::fd::IntoRawFd;
    use std::os::unix::net::UnixStream;

    /// Each signal writes its number to a socket, in the order the signals came (a
    /// set of pending signals would lose that order); a thread reads them.
    pub fn install() -> std::io::Result<()> {
        let (mut reader, writer) = UnixStream::pair()?;
        writer.set_nonblocking(true)?;
        // Open for the rest of the process: a handler may write to it at any time.
        let writer = writer.into_raw_fd();
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // A signal ignored when the process started stays ignored: nohup, shells
            // and make rely on that to keep a command running.
            if ignored_at_start(signal)? {
                continue;
            }
            // SAFETY: the action only calls write(2), which is async-signal-safe.
            unsafe {
                signal_hook::low_level::register(signal, move || {
                    let number = signal as u8;
                    libc::write(writer, (&raw const number).cast(), 1);
                })
            }?;
        }
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut number = [0u8];
                while reader.read_exact(&mut number).is_ok() {
                    let stop = match i32::from(number[0]) {
                        SIGINT => Stop::Signal("SIGINT", SIGINT),
                        SIGTERM => Stop::Signal("SIGTERM", SIGTERM),
                        _ => Stop::Signal("SIGHUP", SIGHUP),
                    };
                    request(stop);
                }
            })?;
        Ok(())
    }

    /// Whether `signal`'s disposition is "ignore".
    fn ignored_at_start(signal: i32) -> std::io::Result<bool> {
        // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action only
        // reads the current one.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `current` is valid for writes.
        if unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(current.sa_sigaction == libc::SIG_IGN)
    }
}

#[cfg(windows)]
mod platform {
    use super::{request, Stop};
    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT,
    };

    pub fn install() -> std::io::Result<()> {
        // SAFETY: registers a handler with the signature the OS calls.
        if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Called by Windows on a thread of its own. Ctrl-C and Ctrl-Break stop the run as
    /// SIGINT does (status 130), a closing console as SIGHUP does (129).
    pub unsafe extern "system" fn on_console_event(event: u32) -> BOOL {
        let stop = match event {
            CTRL_C_EVENT => Stop::Signal("Ctrl-C", 2),
            CTRL_BREAK_EVENT => Stop::Signal("Ctrl-Break", 2),
            CTRL_CLOSE_EVENT => Stop::Signal("the console closing", 1),
            _ => return 0,
        };
        request(stop);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_the_shells() {
        assert_eq!(Stop::Signal("SIGINT", 2).exit_status(), 130);
        assert_eq!(Stop::Signal("SIGTERM", 15).exit_status(), 143);
        assert_eq!(Stop::Signal("SIGHUP", 1).exit_status(), 129);
        assert_eq!(Stop::Timeout(Duration::from_secs(3)).exit_status(), 124);
        assert_eq!(
            Stop::Timeout(Duration::from_millis(1500)).describe(),
            "timed out after 1.5 s (--timeout)"
        );
    }
}
