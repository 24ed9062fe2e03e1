//! Stopping a run from outside, at any moment: SIGINT, SIGTERM and SIGHUP (Ctrl-C,
//! Ctrl-Break and a closing console on Windows), and `--timeout`.
//!
//! A leaf: it knows nothing of what it stops or cleans. Others register with it:
//! - stop hooks (`on_stop`), called first, from the thread that saw the stop, for
//!   as long as their registration lives: a guest's run registers one that makes
//!   its guest trap, local mode one that ends its jobs;
//! - one cleanup slot (`hold`), for what must be undone even when the main thread
//!   cannot come back to undo it itself (a guest blocked in a host call never
//!   returns): the run's transaction.
//!
//! A stop then gives the main thread a moment to wind the run up. If it does not
//! take the held value back in time (`settle`), whatever the main thread runs (a
//! guest blocked in a host call, say) may still be writing into what the value
//! holds, so the stop removes nothing: it asks the value to say what it leaves
//! behind (`Cleanup::leave`: the staging, for the next run to reclaim), prints one
//! line, and ends the process with the shell's status (130, 143, 129; 124 for a
//! timeout, as timeout(1)). Work on the held value (`Held::with`) excludes a stop:
//! a commit finishes, or sees the stop and rolls back, first.
//!
//! A timeout is a deadline, not only a clock: once it has passed, `stopped()` says
//! so even if the clock's thread has not run yet, so that no run commits late.

use std::any::Any;
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
    /// The stop in words, as the stop's line begins: `stopped by SIGINT`.
    pub fn describe(self) -> String {
        match self {
            Stop::Signal(name, _) => format!("stopped by {name}"),
            Stop::Timeout(limit) => {
                format!("timed out after {} s (--timeout)", limit.as_secs_f64())
            }
        }
    }
}

/// What a stop must account for when the main thread cannot wind the run up: the
/// value in the slot.
pub trait Cleanup: Any + Send {
    /// The main thread did not come back in time, and what it runs may still use
    /// the value: leaves it as it is, for a later run to clean up, and says so, as
    /// the end of the stop's one line (`nothing was committed; ...`).
    fn leave(self: Box<Self>) -> String;
}

/// How long a stop waits for the main thread to wind the run up itself.
const GRACE: Duration = Duration::from_millis(300);

enum Slot {
    /// Nothing held yet: a stop has nothing to clean up.
    Empty,
    /// What a stop must clean up.
    Held(Box<dyn Cleanup>),
    /// The main thread took it back to finish the run; or a stop took it.
    Settled,
}

static STOP: OnceLock<Stop> = OnceLock::new();
/// The status the process ends with when a stop ends it itself: the runner's table
/// (exit_status.rs), given at `install`, so that this leaf knows none.
static STATUS_OF: OnceLock<fn(Stop) -> i32> = OnceLock::new();
/// When `--timeout` runs out, and its length.
static DEADLINE: OnceLock<(std::time::Instant, Duration)> = OnceLock::new();
/// The stop hooks registered, by their registration's number.
static HOOKS: Mutex<Vec<(u64, Hook)>> = Mutex::new(Vec::new());
static NEXT_HOOK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What a stop calls first.
type Hook = std::sync::Arc<dyn Fn() + Send + Sync>;
static SLOT: Mutex<Slot> = Mutex::new(Slot::Empty);
static SETTLED: Condvar = Condvar::new();

fn slot() -> MutexGuard<'static, Slot> {
    SLOT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the run was asked to stop, if it was; a deadline that has passed is a stop
/// even before its clock's thread has run.
pub fn stopped() -> Option<Stop> {
    if let Some(stop) = STOP.get() {
        return Some(*stop);
    }
    let (deadline, limit) = DEADLINE.get()?;
    (std::time::Instant::now() >= *deadline).then(|| *STOP.get_or_init(|| Stop::Timeout(*limit)))
}

/// Calls `hook` when a stop comes, for as long as the returned registration lives.
/// A stop that came before is not replayed: callers check `stopped()` after
/// registering.
#[must_use = "the hook is removed when its registration is dropped"]
pub fn on_stop(hook: impl Fn() + Send + Sync + 'static) -> StopHook {
    let id = NEXT_HOOK.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    hooks().push((id, std::sync::Arc::new(hook)));
    StopHook { id }
}

/// A stop hook's registration: dropping it removes the hook.
#[derive(Debug)]
pub struct StopHook {
    id: u64,
}

impl Drop for StopHook {
    fn drop(&mut self) {
        hooks().retain(|(id, _)| *id != self.id);
    }
}

fn hooks() -> MutexGuard<'static, Vec<(u64, Hook)>> {
    HOOKS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts listening for the signals, and the clock of `timeout` if there is one;
/// `status_of` gives the status a stop ends the process with.
pub fn install(timeout: Option<Duration>, status_of: fn(Stop) -> i32) -> std::io::Result<()> {
    let _ = STATUS_OF.set(status_of);
    platform::install()?;
    if let Some(limit) = timeout {
        // A limit past what the clock can count has no deadline: it waits as long
        // as it can.
        if let Some(deadline) = std::time::Instant::now().checked_add(limit) {
            let _ = DEADLINE.set((deadline, limit));
        }
        std::thread::Builder::new()
            .name("timeout".into())
            .spawn(move || {
                std::thread::sleep(limit);
                request(Stop::Timeout(limit));
            })?;
    }
    Ok(())
}

/// Why `hold` holds nothing.
#[derive(Debug)]
pub enum NotHeld<E> {
    /// A stop came first: nothing was created.
    Stopped(Stop),
    /// Creating it failed.
    Failed(E),
}

/// The main thread's handle on the value `hold` put where a stop can reach it: the
/// one way to work on it and to take it back, so that the value is passed along as
/// this handle, not looked up. There is one at a time (it cannot be cloned).
#[derive(Debug)]
pub struct Held<T: Cleanup> {
    held: std::marker::PhantomData<T>,
}

/// Creates the value a stop must clean up, and holds it where a stop can reach it;
/// a stop that comes meanwhile waits until it is held. The handle is the main
/// thread's way to it.
pub fn hold<T: Cleanup, E>(create: impl FnOnce() -> Result<T, E>) -> Result<Held<T>, NotHeld<E>> {
    let mut slot = slot();
    if let Some(stop) = stopped() {
        return Err(NotHeld::Stopped(stop));
    }
    *slot = Slot::Held(Box::new(create().map_err(NotHeld::Failed)?));
    Ok(Held {
        held: std::marker::PhantomData,
    })
}

impl<T: Cleanup> Held<T> {
    /// Runs `work` on the held value, which a stop cannot touch meanwhile. `None`
    /// if a stop has taken it.
    pub fn with<R>(&self, work: impl FnOnce(&mut T) -> R) -> Option<R> {
        match &mut *slot() {
            Slot::Held(value) => {
                let value: &mut dyn Any = value.as_mut();
                value.downcast_mut::<T>().map(work)
            }
            _ => None,
        }
    }

    /// Takes the held value back to finish the run. When a stop has taken it
    /// instead, this never returns: the stop is ending the process.
    pub fn settle(self) -> Option<T> {
        let mut slot = slot();
        let taken = match std::mem::replace(&mut *slot, Slot::Settled) {
            Slot::Held(value) => {
                let value: Box<dyn Any> = value;
                value.downcast::<T>().ok().map(|value| *value)
            }
            Slot::Empty => None,
            Slot::Settled => {
                drop(slot);
                loop {
                    std::thread::park();
                }
            }
        };
        SETTLED.notify_all();
        taken
    }
}

/// What a signal or the timeout does: see the module's comment.
fn request(stop: Stop) {
    if STOP.set(stop).is_err() {
        return;
    }
    let hooks: Vec<Hook> = hooks().iter().map(|(_, hook)| hook.clone()).collect();
    for hook in hooks {
        hook();
    }
    let guard = slot();
    let (mut slot, _) = SETTLED
        .wait_timeout_while(guard, GRACE, |s| matches!(s, Slot::Held(_)))
        .unwrap_or_else(PoisonError::into_inner);
    let outcome = match std::mem::replace(&mut *slot, Slot::Settled) {
        Slot::Empty => "nothing was committed".to_owned(),
        Slot::Held(value) => value.leave(),
        // The main thread winds the run up and reports.
        Slot::Settled => return,
    };
    dtlto_mock::stderr_line!("dtlto-runner: {}: {outcome}", stop.describe());
    // Still holding the slot: the main thread cannot start anything now.
    // Without a table (never, after `install`), the conventional failure.
    std::process::exit(STATUS_OF.get().map_or(1, |status_of| status_of(stop)));
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
    fn a_timeout_is_described_in_seconds() {
        assert_eq!(
            Stop::Timeout(Duration::from_millis(1500)).describe(),
            "timed out after 1.5 s (--timeout)"
        );
    }
}
