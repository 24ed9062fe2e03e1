//! Running a command in a test's directory, and a finished run that owns that
//! directory: every failed assertion on it prints the command, the cwd, a listing of
//! the directory, the status, stdout and stderr.

use super::dir::TestDir;
use super::tree;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What a finished command did, and where.
pub struct Run {
    /// The test directory it ran in, listed when an assertion fails; `None` for a
    /// tool that works outside any test's directory (see `run_tool`).
    dir: Option<TestDir>,
    /// The command line, as `Command`'s `Debug` shows it.
    pub command: String,
    /// Where it ran; `None`: the test process's own working directory.
    pub cwd: Option<PathBuf>,
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Asserts the exit status.
    pub fn expect_status(&self, status: i32) -> &Self {
        if self.status != status {
            self.fail(&format!(
                "expected exit status {status}, got {}",
                self.status
            ));
        }
        self
    }

    /// Asserts that stderr contains `text`.
    pub fn expect_stderr_has(&self, text: &str) -> &Self {
        if !self.stderr().contains(text) {
            self.fail(&format!("stderr lacks {text:?}"));
        }
        self
    }

    /// A run of the guest inside the test process, in `dir`.
    pub(super) fn in_process(
        dir: &TestDir,
        command: String,
        status: i32,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    ) -> Run {
        Run {
            dir: Some(dir.clone()),
            command,
            cwd: Some(dir.path().to_path_buf()),
            status,
            stdout,
            stderr,
        }
    }

    /// Fails the test: `what` went wrong, then the whole report.
    pub fn fail(&self, what: &str) -> ! {
        panic!("{what}\n{}", self.report())
    }

    /// Everything needed to understand a run: the command, where it ran, the
    /// directory's contents now, the status and both outputs.
    pub fn report(&self) -> String {
        let cwd = self.cwd.as_ref().map_or_else(
            || "(the tests' own)".to_owned(),
            |d| d.display().to_string(),
        );
        let listing = match (&self.dir, &self.cwd) {
            (Some(dir), _) => dir.listing(),
            (None, Some(cwd)) => tree::listing(cwd),
            (None, None) => "no directory of its own to list\n".to_owned(),
        };
        format!(
            "===== {} =====\ncwd: {cwd}\nstatus: {}\n--- {listing}--- stdout ---\n{}\n--- stderr ---\n{}\n=====",
            self.command,
            self.status,
            self.stdout(),
            self.stderr()
        )
    }
}

impl TestDir {
    /// Runs `command` to completion in this directory (unless it names a cwd of its
    /// own, such as a subdirectory), capturing its output.
    pub fn run(&self, command: &mut Command) -> Run {
        run_captured(Some(self), command)
    }

    /// Starts `command` in this directory (unless it names a cwd of its own), its
    /// output captured; see `Started::finish`.
    pub fn spawn(&self, command: &mut Command) -> Started {
        self.spawn_with_stderr(command, Stdio::piped())
    }

    /// As `spawn`, with stderr going to `stderr` (a broken one, say) instead of
    /// being captured.
    pub fn spawn_with_stderr(&self, command: &mut Command, stderr: Stdio) -> Started {
        if command.get_current_dir().is_none() {
            command.current_dir(self.path());
        }
        command.stdout(Stdio::piped()).stderr(stderr);
        let child = with_spawn_retries(|| command.spawn())
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Started {
            child,
            dir: self.clone(),
            command: format!("{command:?}"),
            cwd: command.get_current_dir().map(Path::to_path_buf),
        }
    }

    /// Runs `command` to completion in this directory, as `run` does, and also
    /// returns the peak resident memory of its process in KiB, from `wait4`.
    #[cfg(unix)]
    pub fn run_measured(&self, command: &mut Command) -> (Run, u64) {
        use std::io::Read;
        if command.get_current_dir().is_none() {
            command.current_dir(self.path());
        }
        let description = format!("{command:?}");
        // Reaped by wait4 below, which also reports the child's peak memory.
        #[allow(clippy::zombie_processes)]
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("piped")));
        let stderr = drain(Box::new(child.stderr.take().expect("piped")));
        let mut status = 0;
        // SAFETY: rusage is plain data, valid when zeroed.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = child.id() as libc::pid_t;
        // SAFETY: wait4 on our own child, which std has not reaped; both out-parameters
        // are valid for writes.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(waited, pid, "wait4 failed");
        let status = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        };
        let run = Run {
            dir: Some(self.clone()),
            command: description,
            cwd: command.get_current_dir().map(Path::to_path_buf),
            status,
            stdout: stdout.join().expect("stdout"),
            stderr: stderr.join().expect("stderr"),
        };
        (run, usage.ru_maxrss as u64)
    }
}

/// Runs a tool that works in no test's directory (a checksum of release files, a
/// signal sent), capturing its output; its report lists its cwd, if it has one.
// Its only users so far inspect release files, on Unix.
#[cfg_attr(windows, allow(dead_code))]
pub fn run_tool(command: &mut Command) -> Run {
    run_captured(None, command)
}

fn run_captured(dir: Option<&TestDir>, command: &mut Command) -> Run {
    if let (Some(dir), None) = (dir, command.get_current_dir()) {
        command.current_dir(dir.path());
    }
    let output = with_spawn_retries(|| command.output())
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    Run {
        dir: dir.cloned(),
        command: format!("{command:?}"),
        cwd: command.get_current_dir().map(Path::to_path_buf),
        status: exit_status(&output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// A started command, its output captured, in a test's directory.
pub struct Started {
    child: Child,
    dir: TestDir,
    command: String,
    cwd: Option<PathBuf>,
}

impl std::ops::Deref for Started {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Started {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Started {
    /// Waits for the command to end; fails the test, naming it `what`, if it
    /// outlives `limit`.
    pub fn finish(self, what: &str, limit: Duration) -> Run {
        let Started {
            child,
            dir,
            command,
            cwd,
        } = self;
        let pid = child.id();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(child.wait_with_output());
        });
        let output = match receiver.recv_timeout(limit) {
            Ok(output) => output.unwrap_or_else(|e| panic!("wait for {what}: {e}")),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!(
                    "{what} still ran after {limit:?}; killed it\ncommand: {command}\n{}",
                    dir.listing()
                );
            }
        };
        Run {
            dir: Some(dir),
            command,
            cwd,
            status: exit_status(&output.status),
            stdout: output.stdout,
            stderr: output.stderr,
        }
    }
}

/// The exit status, or 128 + the signal that ended the process, as shells report it.
fn exit_status(status: &std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(-1)
}

/// Starts a process with `start`, again if wine's CreateProcess fails with its
/// sporadic ERROR_INTERNAL_ERROR (1359) when many processes start at once: the
/// process never ran, so starting it again changes nothing of what a test checks.
fn with_spawn_retries<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    const ERROR_INTERNAL_ERROR: i32 = 1359;
    let mut tries = 1;
    loop {
        match start() {
            Err(e)
                if cfg!(windows) && e.raw_os_error() == Some(ERROR_INTERNAL_ERROR) && tries < 5 =>
            {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50 * tries));
            }
            other => return other,
        }
    }
}
