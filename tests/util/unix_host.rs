//! What a Unix host lets a scene arrange: root, FIFOs, open-file limits, signals.

use std::path::Path;
use std::process::Command;

/// Whether the tests run as root (some scenes need it: unshare, other users).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Sends `signal` (`TERM`, `INT`, `KILL`...) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Makes a FIFO at `path`.
pub fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Makes `command` start with at most `limit` open files (RLIMIT_NOFILE), as both
/// its soft and its hard limit.
pub fn limit_open_files(command: &mut Command, limit: u64) {
    limit_open_files_soft(command, limit, limit);
}

/// Makes `command` start with a soft limit of `soft` open files, and a hard one of
/// `hard`, which it may raise its soft limit to.
pub fn limit_open_files_soft(command: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe, as code between fork and exec must be.
    unsafe {
        command.pre_exec(move || {
            let rlimit = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs `program args` as user and group `uid` (in `group` too, if given, and no
/// other), with `umask`, through setpriv (root only).
#[cfg(target_os = "linux")]
pub fn as_user(
    uid: u32,
    group: Option<u32>,
    umask: &str,
    program: &Path,
    args: &[&str],
) -> Command {
    let groups = match group {
        Some(group) => format!("--groups={group}"),
        None => "--clear-groups".to_owned(),
    };
    let mut command = Command::new("setpriv");
    command
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            &groups,
            "sh",
            "-c",
            &format!("umask {umask}; exec \"$@\""),
            "sh",
        ])
        .arg(program)
        .args(args);
    command
}

/// Whether a thread of process `pid` is asleep in nanosleep or clock_nanosleep (a
/// guest's WASI sleep): a stop from then on meets the guest inside a host call.
/// Where /proc/PID/task/TID/syscall cannot tell (not Linux on x86_64 or arm64), true.
pub fn in_sleep(pid: u32) -> bool {
    let sleeps: &[&str] = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        &["35", "230"]
    } else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
        &["101", "115"]
    } else {
        return true;
    };
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("syscall")).is_ok_and(|call| {
            call.split_whitespace()
                .next()
                .is_some_and(|n| sleeps.contains(&n))
        })
    })
}

/// Makes every command a test starts begin with the default action for the signals
/// that stop a run (SIGHUP, SIGINT, SIGTERM), however the test run itself started.
/// Under nohup, or as a background job of a script, those come ignored, an ignored
/// signal stays ignored across exec, and the runner rightly keeps it so: the tests
/// that stop a run with one would then see it finish. A handler that does nothing
/// leaves this process as it was, and exec resets a handled signal to its default.
/// A test that wants one ignored asks for it (`nohup`, a shell's `trap`).
pub fn default_stop_signals_for_children() {
    extern "C" fn nothing(_: libc::c_int) {}
    for signal in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid out-parameter, and a null new
        // action only reads the current one.
        let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
        assert_eq!(read, 0, "sigaction({signal}) cannot be read");
        if current.sa_sigaction != libc::SIG_IGN {
            continue;
        }
        let mut handled = current;
        handled.sa_sigaction = nothing as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `nothing` is async-signal-safe (it does nothing); the mask and
        // flags are the ones read above.
        let set = unsafe { libc::sigaction(signal, &handled, std::ptr::null_mut()) };
        assert_eq!(set, 0, "sigaction({signal}) cannot be set");
    }
}

/// The two broken stderrs: `/dev/full` (every write fails with ENOSPC) and a pipe
/// whose reading end is closed (EPIPE).
pub fn broken_stderrs() -> Vec<(&'static str, std::process::Stdio)> {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let (reader, writer) = std::io::pipe().expect("make a pipe");
    drop(reader);
    vec![("/dev/full", full.into()), ("a closed pipe", writer.into())]
}
