//! The run itself: the request from the command line, the user's directory, RUNNER as
//! the user, and the result brought back (see main.rs for why each step is so).

use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicI32, Ordering};

/// What RUNNER may write back and casd reads: an ActionResult, and the status
/// buildbox-run writes beside it when it fails. Both are a few hundred bytes.
const RESULT_LIMIT: u64 = 16 << 20;
/// The results, by their names in the user's directory: `result` is copied to
/// casd's `--action-result` path, `result.error-status` beside it.
const RESULTS: [&str; 2] = ["result", "result.error-status"];
/// The signals casd stops an action with; each is passed on to RUNNER as SIGTERM.
const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(request) = Request::parse(args) else {
        eprintln!("usage: reapi-engine-run-as UID GID PATH RUNNER WORK -- BUILDBOX_RUN_ARGS...");
        return ExitCode::from(2);
    };
    match run(&request) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("reapi-engine-run-as: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Request {
    uid: u32,
    gid: u32,
    path: OsString,
    runner: PathBuf,
    work: PathBuf,
    runner_args: Vec<OsString>,
}

impl Request {
    fn parse(mut args: Vec<OsString>) -> Option<Request> {
        if args.len() < 6 || args[5] != "--" {
            return None;
        }
        let runner_args = args.split_off(6);
        let number = |word: &OsString| word.to_str()?.parse::<u32>().ok();
        Some(Request {
            uid: number(&args[0])?,
            gid: number(&args[1])?,
            path: args[2].clone(),
            runner: PathBuf::from(&args[3]),
            work: PathBuf::from(&args[4]),
            runner_args,
        })
    }
}

/// RUNNER's arguments with its files moved into `private`: the action to read (from
/// `action`, which root copies in), and the files it writes.
struct Rewritten {
    args: Vec<OsString>,
    action: Option<PathBuf>,
    result: Option<PathBuf>,
}

fn rewrite(args: &[OsString], private: &Path) -> Rewritten {
    let inside = |option: &str, name: &str| {
        let mut word = OsString::from(format!("{option}="));
        word.push(private.join(name));
        word
    };
    let mut rewritten = Rewritten {
        args: Vec::with_capacity(args.len()),
        action: None,
        result: None,
    };
    for arg in args {
        let bytes = arg.as_bytes();
        let value = |option: &str| {
            bytes
                .strip_prefix(option.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .map(|v| PathBuf::from(OsStr::from_bytes(v)))
        };
        if let Some(action) = value("--action") {
            rewritten.action = Some(action);
            rewritten.args.push(inside("--action", "action"));
        } else if let Some(result) = value("--action-result") {
            rewritten.result = Some(result);
            rewritten.args.push(inside("--action-result", "result"));
        } else if value("--stdout-file").is_some() {
            // RUNNER puts the command's stdout and stderr into CAS itself and names
            // them in the result: these files need not come back.
            rewritten.args.push(inside("--stdout-file", "stdout-file"));
        } else if value("--stderr-file").is_some() {
            rewritten.args.push(inside("--stderr-file", "stderr-file"));
        } else if value("--partial-execution-metadata-file")
            .is_some_and(|v| !v.as_os_str().is_empty())
        {
            rewritten.args.push(inside(
                "--partial-execution-metadata-file",
                "partial-execution-metadata-file",
            ));
        } else {
            rewritten.args.push(arg.clone());
        }
    }
    rewritten
}

fn run(request: &Request) -> Result<u8, String> {
    die_with_parent()?;
    let private = Private::make(&request.work)
        .map_err(|e| format!("cannot make a directory in {}: {e}", request.work.display()))?;
    let runner = rewrite(&request.runner_args, &private.0);
    if let Some(action) = &runner.action {
        hand_over_copy(action, &private.0.join("action"), request)
            .map_err(|e| format!("cannot copy the action {}: {e}", action.display()))?;
    }
    std::os::unix::fs::chown(&private.0, Some(request.uid), Some(request.gid))
        .map_err(|e| format!("cannot hand {} over: {e}", private.0.display()))?;

    let status = run_runner(request, &runner.args)?;

    if let Some(result) = &runner.result {
        for name in RESULTS {
            let mut back = result.clone().into_os_string();
            back.push(&name["result".len()..]);
            bring_back(&private.0.join(name), Path::new(&back), request.uid)?;
        }
    }
    Ok(status)
}

/// This process dies with casd (SIGKILL when its parent ends), as buildbox-run makes
/// itself when it is casd's own child; RUNNER then dies with it (see `become_user`).
fn die_with_parent() -> Result<(), String> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    if unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(format!(
            "cannot ask to die with casd: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        return Err("casd ended before this action started".to_owned());
    }
    Ok(())
}

/// The user's directory for one action, in WORK; removed, whatever is in it, when
/// the run ends (std's remove_dir_all does not follow links, even ones put in its way
/// while it works).
struct Private(PathBuf);

impl Private {
    /// A new directory of root's (mode 0700): nobody else can put anything into it
    /// until it is handed over.
    fn make(work: &Path) -> io::Result<Private> {
        let template = CString::new(work.join("action.XXXXXX").into_os_string().into_vec())?;
        let mut bytes = template.into_bytes_with_nul();
        // SAFETY: `bytes` is a writable, NUL-terminated template that mkdtemp fills in
        // place and does not keep.
        if unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) }.is_null() {
            return Err(io::Error::last_os_error());
        }
        bytes.pop();
        Ok(Private(PathBuf::from(OsString::from_vec(bytes))))
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `from` (casd's, read as root) copied to `to`, a new file in a directory still
/// root's alone, then given to the user.
fn hand_over_copy(from: &Path, to: &Path, request: &Request) -> io::Result<()> {
    let bytes = fs::read(from)?;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)?;
    file.write_all(&bytes)?;
    std::os::unix::fs::fchown(&file, Some(request.uid), Some(request.gid))
}

/// The PID of RUNNER while it runs, for the signal handler; 0 before.
static RUNNER: AtomicI32 = AtomicI32::new(0);

extern "C" fn pass_stop_on(_signal: libc::c_int) {
    let pid = RUNNER.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and touches no memory of ours.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// RUNNER as the user, to its end; its exit status as a shell gives it (128 + the
/// signal that ended it). casd's stop signals reach it while it runs.
fn run_runner(request: &Request, args: &[OsString]) -> Result<u8, String> {
    let (uid, gid) = (request.uid, request.gid);
    let parent = std::process::id() as libc::pid_t;
    let mut command = Command::new(&request.runner);
    command.args(args).env("PATH", &request.path);
    // SAFETY: the closure runs between fork and exec in a copy of this one-threaded
    // process, and makes only async-signal-safe system calls.
    unsafe { command.pre_exec(move || become_user(uid, gid, parent)) };

    // A stop that arrives between the start and the handler's knowing the PID would
    // be lost: held back until then.
    set_stop_signals_blocked(true);
    for signal in STOP_SIGNALS {
        // SAFETY: a handler that is async-signal-safe, for signals that may be caught.
        unsafe { libc::signal(signal, pass_stop_on as *const () as libc::sighandler_t) };
    }
    let started = command.spawn();
    if let Ok(child) = &started {
        RUNNER.store(child.id() as i32, Ordering::SeqCst);
    }
    set_stop_signals_blocked(false);
    let mut child =
        started.map_err(|e| format!("cannot start {}: {e}", request.runner.display()))?;
    let status = child
        .wait()
        .map_err(|e| format!("cannot wait for {}: {e}", request.runner.display()))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => 1,
    })
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

/// In RUNNER's process before exec: the user's credentials, no supplementary groups
/// of root's, death with this process (set after the switch, which clears it), and
/// the stop signals no longer held back.
fn become_user(uid: u32, gid: u32, parent: libc::pid_t) -> io::Result<()> {
    let check = |result: libc::c_int| {
        if result == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    // SAFETY: each is a system call on plain values, async-signal-safe.
    unsafe {
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(gid, gid, gid))?;
        check(libc::setresuid(uid, uid, uid))?;
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
        set_stop_signals_blocked(false);
    }
    Ok(())
}

/// The user's `from`, if RUNNER wrote it, copied to casd's `to`: only a regular file
/// that the user owns (never a link, a FIFO, or another's file linked in), and
/// within RESULT_LIMIT.
fn bring_back(from: &Path, to: &Path, uid: u32) -> Result<(), String> {
    let refuse = |why: String| format!("refusing {} as a result: {why}", from.display());
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(from)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(e.to_string())),
    };
    let metadata = file.metadata().map_err(|e| refuse(e.to_string()))?;
    if !metadata.file_type().is_file() {
        return Err(refuse("not a regular file".to_owned()));
    }
    if metadata.uid() != uid {
        return Err(refuse(format!(
            "owned by uid {}, not {uid}",
            metadata.uid()
        )));
    }
    let mut bytes = Vec::new();
    File::take(file, RESULT_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(e.to_string()))?;
    if bytes.len() as u64 > RESULT_LIMIT {
        return Err(refuse(format!("larger than {RESULT_LIMIT} bytes")));
    }
    fs::write(to, &bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn words(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_request_is_five_words_then_a_double_dash() {
        let request = Request::parse(words(&["65534", "65533", "/bin", "/r", "/w", "--", "-x"]))
            .expect("a request");
        assert_eq!((request.uid, request.gid), (65534, 65533));
        assert_eq!(request.runner_args, words(&["-x"]));
        assert!(Request::parse(words(&["65534", "65533", "/bin", "/r", "/w", "-x"])).is_none());
        assert!(Request::parse(words(&["nobody", "65533", "/bin", "/r", "/w", "--"])).is_none());
        assert!(Request::parse(words(&["65534", "65533", "/bin", "/r"])).is_none());
    }

    #[test]
    fn the_runners_files_move_into_the_users_directory_and_the_rest_stays() {
        let private = Path::new("/work/action.abc");
        let rewritten = rewrite(
            &words(&[
                "--remote=unix:/c.sock",
                "--action=/casd/x.action",
                "--action-result=/casd/x.result",
                "--stdout-file=/casd/out",
                "--stderr-file=/casd/err",
                "--partial-execution-metadata-file=",
                "--partial-execution-metadata-file=/casd/meta",
                "--actionable",
            ]),
            private,
        );
        assert_eq!(
            rewritten.args,
            words(&[
                "--remote=unix:/c.sock",
                "--action=/work/action.abc/action",
                "--action-result=/work/action.abc/result",
                "--stdout-file=/work/action.abc/stdout-file",
                "--stderr-file=/work/action.abc/stderr-file",
                "--partial-execution-metadata-file=",
                "--partial-execution-metadata-file=/work/action.abc/partial-execution-metadata-file",
                "--actionable",
            ])
        );
        assert_eq!(
            rewritten.action.as_deref(),
            Some(Path::new("/casd/x.action"))
        );
        assert_eq!(
            rewritten.result.as_deref(),
            Some(Path::new("/casd/x.result"))
        );
    }

    #[test]
    fn only_a_regular_file_of_the_users_within_the_limit_comes_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let owner = fs::metadata(dir.path()).expect("stat").uid();
        let to = dir.path().join("back");
        let file = dir.path().join("result");
        fs::write(&file, "a result").expect("write");
        bring_back(&file, &to, owner).expect("the owner's result");
        assert_eq!(fs::read(&to).expect("read back"), b"a result");
        fs::remove_file(&to).expect("rm");

        let refused = |from: &Path, uid: u32, why: &str| {
            let error = bring_back(from, &to, uid).expect_err("refused");
            assert!(error.contains(why), "{error}");
            assert!(!to.exists(), "{error}: came back anyway");
        };
        // Another's file (linked in, where the system lets a user link others' files).
        refused(&file, owner.wrapping_add(1), "owned by uid");
        let link = dir.path().join("link");
        symlink(&file, &link).expect("symlink");
        refused(&link, owner, "refusing");
        let fifo = dir.path().join("fifo");
        let path = CString::new(fifo.as_os_str().as_bytes()).expect("path");
        // SAFETY: a NUL-terminated path that mkfifo only reads.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        refused(&fifo, owner, "not a regular file");
        let huge = dir.path().join("huge");
        File::create(&huge)
            .and_then(|f| f.set_len(RESULT_LIMIT + 1))
            .expect("a sparse file");
        refused(&huge, owner, "larger than");
        // None written: nothing to bring back, and no error.
        bring_back(&dir.path().join("none"), &to, owner).expect("nothing");
        assert!(!to.exists());
    }
}
