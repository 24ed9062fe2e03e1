//! RUNNER as the user: started with nothing of root's, casd's stops passed on to it,
//! and its end awaited; and this process's own death tied to casd's.

use crate::action_dir::ActionDir;
use crate::credentials::{become_user, check, User};
use crate::request::Request;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The signals casd stops an action with; each is passed on to RUNNER as SIGTERM.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];
/// How much of RUNNER's own output (its log, on stderr) is passed on to casd's log.
const LOG_LIMIT: usize = 64 << 10;

/// Before anything else: this process dies with casd (SIGKILL when the thread that
/// started it ends; casd's waits for the action), as buildbox-run makes itself when
/// it is casd's own child, and RUNNER then dies with this one (see `enter`); what
/// RUNNER leaves running becomes this process's to end (`end_leftovers`); and a stop
/// from casd is caught from now on.
pub fn prepare() -> Result<(), String> {
    // PR_SET_CHILD_SUBREAPER, which the libc crate does not name for this target.
    const SET_CHILD_SUBREAPER: libc::c_int = 36;
    for signal in STOP_SIGNALS {
        // SAFETY: an async-signal-safe handler, for signals that may be caught.
        unsafe { libc::signal(signal, pass_stop_on as *const () as libc::sighandler_t) };
    }
    // SAFETY: getppid and prctl take and touch plain values only.
    unsafe {
        if libc::prctl(SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) != 0 {
            return Err(format!(
                "cannot adopt what the runner leaves: {}",
                io::Error::last_os_error()
            ));
        }
        let parent = libc::getppid();
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(format!(
                "cannot ask to die with casd: {}",
                io::Error::last_os_error()
            ));
        }
        // casd may have ended before the line above: then nothing would stop this.
        if libc::getppid() != parent {
            return Err("casd ended as this action started".to_owned());
        }
    }
    Ok(())
}

/// The PID of RUNNER while it runs, for the signal handler; 0 otherwise.
static RUNNER: AtomicI32 = AtomicI32::new(0);
/// Whether casd asked for a stop before RUNNER started: then it never starts.
static STOPPED: AtomicBool = AtomicBool::new(false);

extern "C" fn pass_stop_on(_signal: libc::c_int) {
    let pid = RUNNER.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and touches no memory of ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    } else {
        STOPPED.store(true, Ordering::SeqCst);
    }
}

/// RUNNER, with `args`, as the request's user in `dir`, its output into `log`, to
/// its end; its exit status as a shell gives it (128 + the signal that ended it).
pub fn run(
    request: &Request,
    args: &[OsString],
    dir: &ActionDir,
    log: &File,
) -> Result<u8, String> {
    let runner = request.runner.display();
    let output = || {
        log.try_clone()
            .map_err(|e| format!("cannot give {runner} its log: {e}"))
    };
    let (user, dir_fd, parent) = (request.user, dir.fd(), std::process::id() as libc::pid_t);
    let mut command = Command::new(&request.runner);
    command
        .args(args)
        .env_clear()
        .env("PATH", &request.path)
        .stdin(Stdio::null())
        .stdout(output()?)
        .stderr(output()?);
    // SAFETY: the closure runs between fork and exec in a copy of this one-threaded
    // process, and makes only async-signal-safe system calls.
    unsafe { command.pre_exec(move || enter(user, dir_fd, parent)) };

    // A stop that arrives between the start and the handler's knowing the PID would
    // be lost: held back until then.
    set_stop_signals_blocked(true);
    if STOPPED.load(Ordering::SeqCst) {
        set_stop_signals_blocked(false);
        return Err(format!("stopped before {runner} started"));
    }
    let started = command.spawn();
    if let Ok(child) = &started {
        RUNNER.store(child.id() as i32, Ordering::SeqCst);
    }
    set_stop_signals_blocked(false);
    let mut child = started.map_err(|e| format!("cannot start {runner}: {e}"))?;
    // Ended but not yet reaped, RUNNER's PID cannot be another process's: the
    // handler forgets it, with stops held back, before it is reaped. (Stops that come
    // later find RUNNER gone; this process ends soon after.)
    let ended = wait_unreaped(child.id() as libc::pid_t);
    set_stop_signals_blocked(true);
    RUNNER.store(0, Ordering::SeqCst);
    ended.map_err(|e| format!("cannot wait for {runner}: {e}"))?;
    let status = child.wait();
    end_leftovers();
    set_stop_signals_blocked(false);
    let status = status.map_err(|e| format!("cannot wait for {runner}: {e}"))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => 1,
    })
}

/// In RUNNER's process before exec: a session of its own (no controlling terminal
/// of root's to push input into), the user's credentials, death with this process
/// (set after the switch, which clears it), the user's directory as its working
/// directory, no descriptor of root's past exec but its standard three, and the
/// stop signals no longer held back.
fn enter(user: User, dir: RawFd, parent: libc::pid_t) -> io::Result<()> {
    // SAFETY: each is a system call on plain values, async-signal-safe.
    unsafe {
        check(libc::setsid())?;
        become_user(user)?;
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        // This process may have died before the line above: then nothing would kill
        // RUNNER, which must not start.
        if libc::getppid() != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        check(libc::fchdir(dir))?;
        // Every descriptor from 3 up closes at exec (kernels before 5.11 lack the
        // flag; there casd's own closing of its child's descriptors stands).
        let _ = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    set_stop_signals_blocked(false);
    Ok(())
}

/// Ends every process RUNNER left behind (this process adopted them, see `prepare`),
/// and whatever those start meanwhile, before the result is read: nothing of the
/// action may outlive it, and tamper with the next one's.
fn end_leftovers() {
    let children = format!("/proc/self/task/{}/children", std::process::id());
    // A bound, against a leftover that forks faster than it is killed.
    for _ in 0..1000 {
        let pids: Vec<libc::pid_t> = std::fs::read_to_string(&children)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .collect();
        if pids.is_empty() {
            return;
        }
        for &pid in &pids {
            // SAFETY: kill and waitpid on this process's own children, into a local.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
            }
        }
    }
}

fn set_stop_signals_blocked(blocked: bool) {
    // SAFETY: a sigset_t is plain data that sigemptyset initializes before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in STOP_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

/// Waits for `pid` to end, leaving it to be reaped.
fn wait_unreaped(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data, which waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits on a child of this process, into a local.
        let result = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        match check(result) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            ended => return ended,
        }
    }
}

/// RUNNER's output, from its log, onto this process's stderr (casd's log), up to
/// LOG_LIMIT: root reads it through its own descriptor of the file it made.
pub fn relay_log(log: &File) {
    let mut bytes = vec![0u8; LOG_LIMIT + 1];
    let mut filled = 0;
    while filled < bytes.len() {
        match log.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut stderr = io::stderr().lock();
    let _ = stderr.write_all(&bytes[..filled.min(LOG_LIMIT)]);
    if filled > LOG_LIMIT {
        let _ = writeln!(
            stderr,
            "\nreapi-engine-run-as: (the runner's output goes on past {LOG_LIMIT} bytes)"
        );
    }
}
