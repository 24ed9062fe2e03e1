//! What every integration test needs: its own temporary directory, the runner binary,
//! the guest run in-process under wasmtime (as `wasmtime run --dir .` would), and
//! failures that explain themselves (command, cwd, directory listing, status, output).

pub mod hostile;
#[cfg(unix)]
pub mod llvm;
pub mod oracle;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// A directory for one test, removed when the test passes.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir()
            .join("dtlto-mock-tests")
            .join(format!("{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test directory");
        TempDir {
            path: fs::canonicalize(&path).expect("canonical test directory"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.path.join(name);
        fs::read(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", path.display(), self.listing()))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.path.join(name).symlink_metadata().is_ok()
    }

    /// Every entry under the directory with its kind and size, one per line.
    pub fn listing(&self) -> String {
        let mut out = format!("contents of {}:\n", self.path.display());
        for (name, entry) in self.snapshot() {
            let _ = writeln!(out, "  {name}  {entry:?}");
        }
        out
    }

    /// Names, kinds, sizes, content hashes, mtimes, inode numbers and link counts of
    /// everything under the directory.
    pub fn snapshot(&self) -> BTreeMap<String, Entry> {
        let mut entries = BTreeMap::new();
        snapshot_into(&self.path, &self.path, &mut entries);
        entries
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        size: u64,
        hash: u64,
        modified: Option<std::time::SystemTime>,
        /// Which file it is: (inode number, link count); zero where the host has none.
        inode: (u64, u64),
    },
    Dir,
    Symlink(PathBuf),
    /// A FIFO, device or socket.
    Special,
}

impl Entry {
    /// The same entry without what differs between equal runs (mtime, inode).
    pub fn contents_only(self) -> Entry {
        match self {
            Entry::File { size, hash, .. } => Entry::File {
                size,
                hash,
                modified: None,
                inode: (0, 0),
            },
            other => other,
        }
    }
}

/// What changed between two snapshots, one line an entry, sorted by name:
/// `+ name` added, `- name` removed, `~ name` changed (content, mtime, inode or links).
pub fn changes(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (before.get(name), after.get(name)) {
            (None, Some(_)) => Some(format!("+ {name}")),
            (Some(_), None) => Some(format!("- {name}")),
            (Some(a), Some(b)) if a != b => Some(format!("~ {name}")),
            _ => None,
        })
        .collect()
}

/// Which file `meta` is, where the host says.
fn inode_of(meta: &fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), meta.nlink())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

fn snapshot_into(root: &Path, dir: &Path, entries: &mut BTreeMap<String, Entry>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        // A name that is not Unicode is shown escaped, so that it cannot collide with
        // one that is.
        let name = match relative.to_str() {
            Some(name) => name.to_owned(),
            None => format!("{relative:?}"),
        };
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            entries.insert(
                name,
                Entry::Symlink(fs::read_link(&path).unwrap_or_default()),
            );
        } else if meta.is_dir() {
            entries.insert(name, Entry::Dir);
            snapshot_into(root, &path, entries);
        } else if meta.is_file() {
            let bytes = fs::read(&path).unwrap_or_default();
            entries.insert(
                name,
                Entry::File {
                    size: meta.len(),
                    hash: fnv1a(&bytes),
                    modified: meta.modified().ok(),
                    inode: inode_of(&meta),
                },
            );
        } else {
            entries.insert(name, Entry::Special);
        }
    }
}

/// A content fingerprint for snapshots (FNV-1a; collisions are not a concern here).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// What a finished command did.
pub struct Run {
    pub description: String,
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

    /// Asserts the exit status; on mismatch prints everything needed to understand why.
    pub fn expect_status(&self, status: i32, dir: &TempDir) -> &Self {
        if self.status != status {
            panic!(
                "expected exit status {status}, got {}\n{}\n{}",
                self.status,
                self.report(),
                dir.listing()
            );
        }
        self
    }

    pub fn report(&self) -> String {
        format!(
            "command: {}\nstatus: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.description,
            self.status,
            self.stdout(),
            self.stderr()
        )
    }

    /// Asserts that stderr contains `text`.
    pub fn expect_stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr().contains(text),
            "stderr lacks {text:?}\n{}",
            self.report()
        );
        self
    }
}

/// The `dtlto-runner` binary of this build.
pub fn runner_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dtlto-runner"))
}

/// A copy of the runner that every user may run (the build's own may lie under a
/// home directory others cannot enter), in a directory of its own: keep the
/// `TempDir` while the copy is used.
#[cfg(unix)]
pub fn runner_for_every_user() -> (TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = TempDir::new("runner-for-every-user");
    let runner = bin.join("dtlto-runner");
    fs::copy(runner_exe(), &runner).expect("copy the runner");
    for path in [bin.path(), runner.as_path()] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    }
    (bin, runner)
}

/// A command that runs the runner of this build; see `target_command`.
pub fn runner_command() -> Command {
    target_command(&runner_exe())
}

/// A command that runs `program`, built for the target these tests are built for.
/// When that target is run through an emulator (arm64 under qemu-user, which cannot
/// start a foreign program by itself), DTLTO_TARGET_RUNNER holds the emulator's
/// command line, as cargo's target runner does for the test binary itself.
pub fn target_command(program: &Path) -> Command {
    let emulator = std::env::var("DTLTO_TARGET_RUNNER").unwrap_or_default();
    let mut words = emulator.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut command = Command::new(first);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// The repository's root (these tests are the runner package's).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ sits in the repository")
        .to_path_buf()
}

/// Starts the runner in `dir` with `args`, its output captured; see `finish`.
pub fn spawn_runner(dir: &TempDir, args: &[&str]) -> std::process::Child {
    spawn_command(dir, runner_command().args(args))
}

/// Starts `program` in `dir` with `args`, its output captured; see `finish`.
pub fn spawn_in(dir: &TempDir, program: &Path, args: &[&str]) -> std::process::Child {
    spawn_command(dir, Command::new(program).args(args))
}

fn spawn_command(dir: &TempDir, command: &mut Command) -> std::process::Child {
    command
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    with_spawn_retries(|| command.spawn())
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

/// Waits for a spawned command to end; fails the test if it outlives `limit`.
pub fn finish(child: std::process::Child, description: &str, limit: std::time::Duration) -> Run {
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("wait for the runner"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{description} still ran after {limit:?}; killed it");
        }
    };
    Run {
        description: description.to_owned(),
        status: exit_status(&output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// The exit status, or 128 + the signal that ended the process, as shells report it.
pub fn exit_status(status: &std::process::ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(-1)
}

/// Waits until `ready` holds, for at most 20 s; fails the test naming `what` if not.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("waited 20 s for {what}");
}

/// The runner's staging directories in `dir` (their lock files left out).
pub fn staging_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".dtlto-staging-")
                })
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Whether some staging directory in `dir` holds the staged output `name`.
pub fn is_staged(dir: &Path, name: &str) -> bool {
    staging_dirs(dir)
        .iter()
        .any(|staging| staging.join("out").join(name).exists())
}

/// Sends `signal` (`TERM`, `INT`, `KILL`...) to process `pid`.
#[cfg(unix)]
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Runs the runner in `dir` with `args`.
pub fn run_runner(dir: &TempDir, args: &[&str]) -> Run {
    run_command(runner_command().args(args).current_dir(dir.path()))
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
                std::thread::sleep(std::time::Duration::from_millis(50 * tries));
            }
            other => return other,
        }
    }
}

/// Runs any command to completion, capturing its output.
pub fn run_command(command: &mut Command) -> Run {
    let description = format!(
        "{:?} (in {})",
        command,
        command
            .get_current_dir()
            .map_or_else(|| ".".into(), |d| d.display().to_string())
    );
    let output = with_spawn_retries(|| command.output())
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    Run {
        description,
        status: exit_status(&output.status),
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// Runs the guest in-process under wasmtime exactly as
/// `cd dir && wasmtime run --dir . dtlto-mock.wasm args...` would.
pub fn wasmtime_run(dir: &TempDir, args: &[&str]) -> Run {
    wasmtime_run_with_dirs(args, &[(dir.path(), ".")])
}

/// As `wasmtime_run`, with the preopened directories given as (host, guest name).
pub fn wasmtime_run_with_dirs(args: &[&str], dirs: &[(&Path, &str)]) -> Run {
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    static MODULE: OnceLock<(wasmtime::Engine, wasmtime::Module)> = OnceLock::new();
    let (engine, module) = MODULE.get_or_init(|| {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, dtlto_runner::guest_module::WASM)
            .expect("the embedded guest compiles");
        (engine, module)
    });
    let stdout = MemoryOutputPipe::new(1 << 30);
    let stderr = MemoryOutputPipe::new(1 << 20);
    let mut argv = vec!["dtlto-mock.wasm"];
    argv.extend_from_slice(args);
    let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
    builder
        .args(&argv)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (host, guest) in dirs {
        builder
            .preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadWrite)
            .expect("preopen");
    }
    let mut store = wasmtime::Store::new(engine, builder.build_p1());
    let mut linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("link WASI");
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let status = match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => exit.0,
            None => panic!("the guest trapped: {e:?}"),
        },
    };
    Run {
        description: format!("wasmtime run --dir . dtlto-mock.wasm {}", args.join(" ")),
        status,
        stdout: stdout.contents().to_vec(),
        stderr: stderr.contents().to_vec(),
    }
}

/// A compact job file as lld writes it: job i reads `m{i}.o` and writes `m{i}.native.o`.
pub fn job_file_json(jobs: usize) -> String {
    let jobs: Vec<String> = (0..jobs)
        .map(|i| {
            format!(
                r#"{{"args":["m{i}.o","-fthinlto-index=m{i}.{i}.native.o.thinlto.bc","-o","m{i}.{i}.native.o"],"inputs":["m{i}.o","m{i}.{i}.native.o.thinlto.bc"],"outputs":["m{i}.{i}.native.o"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"common":{{"linker_output":"app","args":["/usr/bin/clang-23","-c","-O2"],"inputs":[]}},"jobs":[{}]}}"#,
        jobs.join(",")
    )
}

/// Whether the tests run as root (some scenes need it: unshare, other users).
#[cfg(unix)]
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Makes a FIFO at `path`.
#[cfg(unix)]
pub fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Makes `command` start with at most `limit` open files (RLIMIT_NOFILE), as both
/// its soft and its hard limit.
#[cfg(unix)]
pub fn limit_open_files(command: &mut Command, limit: u64) {
    limit_open_files_soft(command, limit, limit);
}

/// Makes `command` start with a soft limit of `soft` open files, and a hard one of
/// `hard`, which it may raise its soft limit to.
#[cfg(unix)]
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

/// Runs `command` to completion and also returns the peak resident memory of its
/// process in KiB, from `wait4`.
#[cfg(unix)]
pub fn run_measured(command: &mut Command) -> (Run, u64) {
    use std::io::Read;
    let description = format!("{command:?}");
    // Reaped by wait4 below, which also reports the child's peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
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
        description,
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    };
    (run, usage.ru_maxrss as u64)
}
