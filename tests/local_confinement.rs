//! local mode's confinement, attacked: what `--hermetic` lets a job read (the
//! compiler's real installation, never the project), what a confined job can do on
//! this kernel's Landlock ABI (truncate, device ioctls, signals), and local mode's
//! own messages (a FIFO as the job file, control characters, a command too long).
//!
//! Each scene is a home stand-in (the test's directory) holding the user's notes, a
//! sibling project and `proj`, the jobs' working directory and output directory;
//! the whole of it is snapshotted before and after.
#![cfg(target_os = "linux")]

use crate::util::unix_host::make_fifo;
use crate::util::{changes, runner_command, Run, TestDir};
use std::time::Duration;

/// The scene: `notes.txt` (the user's), `sibling/keep.txt`, and `proj/` with an
/// undeclared `undeclared.h` and the job file's declared inputs.
fn scene(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write("notes.txt", "the user's notes");
    dir.write("sibling/keep.txt", "another project");
    dir.write("proj/undeclared.h", "secret");
    dir.write("proj/in0.bc", "bitcode 0");
    dir.write("proj/in0.thinlto.bc", "index 0");
    dir
}

/// `proj/job.json`: one job, `common` then `-o out0.o` and `extra`; it declares
/// `in0.bc` and `in0.thinlto.bc` and writes `out0.o`.
fn job_file(dir: &TestDir, common: &[&str], extra: &[&str]) {
    let mut args = vec!["-o", "out0.o"];
    args.extend_from_slice(extra);
    let doc = serde_json::json!({
        "common": {"linker_output": "app", "args": common, "inputs": []},
        "jobs": [{"args": args, "inputs": ["in0.bc", "in0.thinlto.bc"], "outputs": ["out0.o"]}],
    });
    dir.write("proj/job.json", doc.to_string());
}

/// Runs the runner in `proj` with `args`.
fn run_in_proj(dir: &TestDir, args: &[&str]) -> Run {
    dir.run(runner_command().args(args).current_dir(dir.join("proj")))
}

/// How a confined job's write outside its staging fails here: "Read-only file
/// system" where the runner seals jobs in a mount namespace (as its `--verbose`
/// says), "Permission denied" (Landlock) elsewhere.
pub fn write_refusal() -> &'static str {
    static REFUSAL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    REFUSAL.get_or_init(|| {
        let dir = scene("confine-which-refusal");
        job_file(&dir, &["sh", "-c", "printf x > \"$2\"", "sh"], &[]);
        let run = run_in_proj(&dir, &["local", "--verbose", "job.json"]);
        run.expect_status(0);
        if run
            .stderr()
            .contains("read-only in a mount namespace of its own")
        {
            "Read-only file system"
        } else {
            "Permission denied"
        }
    })
}

/// Whether this machine lets a process make a mount namespace of its own (as
/// root; otherwise with a user namespace): where it does, the runner must seal jobs.
fn sealed() -> bool {
    let mut unshare = std::process::Command::new("unshare");
    if !crate::util::is_root() {
        unshare.arg("--user");
    }
    unshare
        .args(["--mount", "true"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The mode of every entry under `root`, and of `root`, by relative path.
fn modes(root: &std::path::Path) -> std::collections::BTreeMap<String, u32> {
    use std::os::unix::fs::PermissionsExt;
    let mut modes = std::collections::BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        let name = path.strip_prefix(root).expect("under root");
        modes.insert(
            name.to_string_lossy().into_owned(),
            meta.permissions().mode(),
        );
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).expect("list") {
                pending.push(entry.expect("entry").path());
            }
        }
    }
    modes
}

/// The metadata attack: a job first tries to make its mounts writable again
/// (mount_setattr, which Landlock does not refuse, as root would), then makes the
/// user's notes and an undeclared source mode 000, sets a declared input's mtime to
/// 1970 (an incremental build would then skip it) and makes the output directory
/// and a sibling project's 0555/0700.
const METADATA_ATTACK: &str =
    "perl -e 'for (@ARGV) { my ($p, $a) = ($_, pack(\"QQQQ\", 0, 1, 0, 0)); \
     syscall(442, -100, $p, 0x8000, $a, 32) }' / \"$(df --output=target .. | tail -1)\"; \
     chmod 000 ../notes.txt undeclared.h; touch -d 1970-01-01 in0.bc; \
     chmod 555 .; chmod 700 ../sibling; printf x > \"$2\"";

/// Runs the metadata attack with `command` (the runner, as some user) and checks
/// that nothing but the output changed, modes included.
fn metadata_attack_fails(dir: &TestDir, command: &mut std::process::Command) {
    job_file(dir, &["sh", "-c", METADATA_ATTACK, "sh"], &[]);
    let before = dir.snapshot();
    let modes_before = modes(dir.path());
    let run = dir.run(
        command
            .args(["local", "job.json"])
            .current_dir(dir.join("proj")),
    );
    run.expect_status(0)
        .expect_stderr_has("Read-only file system");
    let mut modes_after = modes(dir.path());
    modes_after.remove("proj/out0.o");
    assert_eq!(modes_before, modes_after, "{}", run.report());
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ proj/out0.o"],
        "{}",
        run.report()
    );
}

/// Landlock has no rights for metadata: where a mount namespace can be made, the
/// job's is read-only outside its staging, and its chmod and utime fail; elsewhere
/// `--verbose` names the gap.
#[test]
fn a_confined_job_cannot_change_metadata_outside() {
    let dir = scene("confine-metadata");
    landlock_abi();
    if !sealed() {
        job_file(&dir, &["sh", "-c", "printf x > \"$2\"", "sh"], &[]);
        run_in_proj(&dir, &["local", "--verbose", "job.json"])
            .expect_status(0)
            .expect_stderr_has("CAN: change the metadata of files outside");
        return;
    }
    metadata_attack_fails(&dir, &mut runner_command());
}

/// The same as another user than root: the runner's child makes a user namespace
/// that maps only that user, and a mount namespace in it.
#[test]
#[ignore = "needs root, to run the runner as another user with setpriv (tests/all.sh runs it as root)"]
fn a_confined_job_of_another_user_cannot_change_metadata_outside() {
    assert!(
        crate::util::is_root(),
        "this test runs the runner as another user with setpriv"
    );
    let dir = scene("confine-metadata-user");
    landlock_abi();
    let (_bin, mut command) = as_owner_of(&dir, 4242);
    metadata_attack_fails(&dir, &mut command);
}

/// This kernel's Landlock ABI; these tests need Landlock (CI has it).
fn landlock_abi() -> i64 {
    // SAFETY: with a null attribute and the version flag, the call only answers.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    assert!(abi >= 1, "this kernel offers no Landlock");
    abi
}

/// A job that reads `undeclared.h` under `--hermetic` with `compiler` as its shell:
/// the read must fail, nothing be committed, nothing change.
fn undeclared_read_fails(dir: &TestDir, compiler: &str) {
    job_file(
        dir,
        &[compiler, "-c", "cat in0.bc undeclared.h > \"$2\"", "sh"],
        &[],
    );
    let before = dir.watch();
    let run = run_in_proj(dir, &["local", "--hermetic", "job.json"]);
    run.expect_status(1)
        .expect_stderr_has("undeclared.h: Permission denied")
        .expect_stderr_has("jobs[0] ran under --hermetic");
    before.assert_unchanged();
}

/// `/bin/sh` as the compiler: its installation is that of its real file
/// (`/usr/bin/dash`: `/usr`), never `/` (the tree above `/bin`).
#[test]
fn hermetic_with_bin_sh_as_the_compiler_does_not_grant_the_root() {
    let dir = scene("confine-bin-sh");
    landlock_abi();
    undeclared_read_fails(&dir, "/bin/sh");
}

/// `~/bin/sh`, a link to the real shell: the installation is the real file's, not
/// the home directory above the link's `bin/`, where the project is.
#[test]
fn hermetic_takes_the_compiler_from_its_real_file_not_a_link_in_home() {
    let dir = scene("confine-home-link");
    landlock_abi();
    std::fs::create_dir(dir.join("bin")).expect("mkdir bin");
    std::os::unix::fs::symlink("/bin/sh", dir.join("bin/sh")).expect("link bin/sh");
    undeclared_read_fails(&dir, &dir.join("bin/sh").to_string_lossy());
}

/// A compiler really installed in `~/bin`: its installation, `~`, holds the
/// project, so `--hermetic` cannot keep its promise and refuses, saying why.
#[test]
fn hermetic_refuses_a_compiler_installation_that_holds_the_project() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scene("confine-home-copy");
    landlock_abi();
    let shell = std::fs::canonicalize("/bin/sh").expect("the real /bin/sh");
    std::fs::create_dir(dir.join("bin")).expect("mkdir bin");
    std::fs::copy(&shell, dir.join("bin/sh")).expect("copy sh");
    std::fs::set_permissions(dir.join("bin/sh"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    job_file(
        &dir,
        &[
            &dir.join("bin/sh").to_string_lossy(),
            "-c",
            "cat in0.bc undeclared.h > \"$2\"",
            "sh",
        ],
        &[],
    );
    let before = dir.watch();
    let run = run_in_proj(&dir, &["local", "--hermetic", "job.json"]);
    run.expect_status(1)
        .expect_stderr_has("--hermetic cannot hold the jobs to their declared inputs")
        .expect_stderr_has("installation")
        .expect_stderr_has("where the jobs' own files are");
    assert!(
        !run.stderr().contains("Permission denied"),
        "{}",
        run.report()
    );
    before.assert_unchanged();
}

/// `-save-temps` makes the working directory writable, and Landlock cannot grant
/// reads of only what a job wrote there: `--hermetic` refuses instead of letting an
/// undeclared read pass.
#[test]
fn hermetic_refuses_save_temps_in_the_working_directory() {
    let dir = scene("confine-save-temps");
    landlock_abi();
    job_file(
        &dir,
        &["sh", "-c", "cat in0.bc undeclared.h > \"$2\"", "sh"],
        &["-save-temps"],
    );
    let before = dir.watch();
    let run = run_in_proj(&dir, &["local", "--hermetic", "job.json"]);
    run.expect_status(1)
        .expect_stderr_has("--hermetic cannot hold")
        .expect_stderr_has("jobs[0] asks for -save-temps");
    before.assert_unchanged();
}

/// A pseudo-terminal of the test's: its master, and its slave's path.
struct Pty {
    master: std::fs::File,
    slave: String,
}

impl Pty {
    fn open() -> Pty {
        use std::os::fd::FromRawFd;
        // SAFETY: plain calls on a descriptor this function owns; ptsname_r writes
        // into the buffer it is given, of the length it is told.
        unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt");
            let master = std::fs::File::from_raw_fd(fd);
            assert_eq!(libc::grantpt(fd), 0, "grantpt");
            assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
            let slave = std::ffi::CStr::from_ptr(name.as_ptr())
                .to_string_lossy()
                .into_owned();
            Pty { master, slave }
        }
    }

    fn size(&self) -> (u16, u16) {
        use std::os::fd::AsRawFd;
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the winsize it is given.
        let done = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(done, 0, "TIOCGWINSZ");
        (size.ws_row, size.ws_col)
    }

    fn set_size(&self, rows: u16, cols: u16) {
        use std::os::fd::AsRawFd;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize it is given.
        let done = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(done, 0, "TIOCSWINSZ");
    }
}

/// A confined job (without --hermetic: it may read everything) tries what this
/// kernel's Landlock ABI forbids: emptying the user's notes with truncate(2) (ABI 3),
/// resizing a terminal it opens by ioctl (ABI 5), and signalling a process of the
/// user's and the runner itself (ABI 6). Each attempt fails; the job goes on and
/// succeeds, and nothing outside its output changed.
#[test]
fn a_confined_job_cannot_truncate_ioctl_or_signal_outside() {
    let dir = scene("confine-abi");
    let abi = landlock_abi();
    let pty = Pty::open();
    pty.set_size(10, 20);
    let mut victim = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("start a process of the user's");
    let notes = dir.join("notes.txt");
    // The job writes into its output which attempts succeeded, so that none can
    // pass unseen (a signal to the runner may land after the commit).
    let mut script = String::from(
        "done=; perl -e 'truncate($ARGV[0], 0) or exit 1' \"$3\" && done=\"$done truncate\";",
    );
    if abi >= 5 {
        script.push_str(" stty -F \"$4\" rows 33 cols 77 && done=\"$done ioctl\";");
    }
    if abi >= 6 {
        script.push_str(
            " kill -TERM \"$5\" && done=\"$done victim\"; kill -TERM \"$PPID\" && done=\"$done runner\";",
        );
    }
    script.push_str(" printf \"x%s\" \"$done\" > \"$2\"");
    job_file(
        &dir,
        &["sh", "-c", &script, "sh"],
        &[
            &notes.to_string_lossy(),
            &pty.slave,
            &victim.id().to_string(),
        ],
    );
    let before = dir.snapshot();
    let run = run_in_proj(&dir, &["local", "job.json"]);
    let victim_alive = victim.try_wait().expect("wait for sleep").is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    run.expect_status(0);
    assert_eq!(
        dir.read("notes.txt"),
        b"the user's notes",
        "{}",
        run.report()
    );
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ proj/out0.o"],
        "{}",
        run.report()
    );
    if abi >= 5 {
        assert_eq!(pty.size(), (10, 20), "{}", run.report());
    }
    if abi >= 6 {
        assert!(
            victim_alive,
            "the job killed a process outside: {}",
            run.report()
        );
    }
}

/// `--verbose` says which promises hold on this kernel's ABI, and which do not.
#[test]
fn verbose_says_what_holds_on_this_kernels_landlock() {
    let dir = scene("confine-verbose");
    let abi = landlock_abi();
    job_file(&dir, &["sh", "-c", "printf x > \"$2\"", "sh"], &[]);
    let run = run_in_proj(&dir, &["local", "--verbose", "job.json"]);
    run.expect_status(0)
        .expect_stderr_has(&format!("confined by Landlock (ABI {abi})"))
        .expect_stderr_has("on this kernel a job still CAN: ")
        .expect_stderr_has("use the network");
    if sealed() {
        run.expect_stderr_has(
            "a job also cannot: change a file outside or its metadata (truncate, chmod, \
             utime, xattrs)",
        );
    } else {
        run.expect_stderr_has("CAN: change the metadata of files outside");
        if abi >= 3 {
            run.expect_stderr_has("a job also cannot: truncate a file outside (ABI 3)");
        } else {
            run.expect_stderr_has("CAN: truncate a file outside with truncate(2)");
        }
    }
    if abi >= 6 {
        run.expect_stderr_has("signal processes outside its job");
    }
}

/// A FIFO named as the job file is refused at once, naming it, instead of waiting
/// for a writer forever.
#[test]
fn a_fifo_as_the_job_file_is_refused_at_once() {
    let dir = scene("confine-fifo");
    make_fifo(&dir.join("proj/job.json"));
    let before = dir.watch();
    let started = dir.spawn(
        runner_command()
            .args(["local", "job.json"])
            .current_dir(dir.join("proj")),
    );
    let run = started.finish(
        "the runner with a FIFO as its job file",
        Duration::from_secs(20),
    );
    run.expect_status(1)
        .expect_stderr_has("job.json: it is a FIFO (named pipe), not a regular file");
    before.assert_unchanged();
}

/// `DTLTO_RUNNER_LANDLOCK=off` says so in a warning, without `--verbose` too.
#[test]
fn landlock_switched_off_is_said_without_verbose() {
    let dir = scene("confine-off");
    job_file(&dir, &["sh", "-c", "printf x > \"$2\"", "sh"], &[]);
    let run = dir.run(
        runner_command()
            .args(["local", "job.json"])
            .env("DTLTO_RUNNER_LANDLOCK", "off")
            .current_dir(dir.join("proj")),
    );
    run.expect_status(0).expect_stderr_has(
        "dtlto-runner: warning: DTLTO_RUNNER_LANDLOCK=off: local mode's jobs run NOT confined",
    );
    assert_eq!(dir.read("proj/out0.o"), b"x");
}

/// Control characters in a job's command (an escape that clears the screen, a bell,
/// a newline that forges a line) are escaped in every message local mode prints of
/// it: the `--verbose` line, the `-save-temps` note (naming a working directory with
/// an escape in its name) and the failure.
#[test]
fn control_characters_in_local_modes_messages_are_escaped() {
    let dir = scene("confine-escapes");
    let cwd = "proj\u{1b}[31m";
    dir.write(&format!("{cwd}/in0.bc"), "bitcode 0");
    dir.write(&format!("{cwd}/in0.thinlto.bc"), "index 0");
    let args = [
        "-o",
        "out0.o",
        "-save-temps",
        "\u{1b}[2J\u{7}\ndtlto-runner: forged",
    ];
    let doc = serde_json::json!({
        "common": {"linker_output": "app", "args": ["sh", "-c", "exit 3", "sh"], "inputs": []},
        "jobs": [{"args": args, "inputs": ["in0.bc", "in0.thinlto.bc"], "outputs": ["out0.o"]}],
    });
    dir.write(&format!("{cwd}/job.json"), doc.to_string());
    let before = dir.watch();
    let run = dir.run(
        runner_command()
            .args(["local", "--verbose", "job.json"])
            .current_dir(dir.join(cwd)),
    );
    run.expect_status(1)
        .expect_stderr_has(r#""\u{1b}[2J\u{7}\ndtlto-runner: forged""#)
        .expect_stderr_has(r#"working directory ""#)
        .expect_stderr_has(r#"proj\u{1b}[31m""#)
        .expect_stderr_has("failed with exit status 3");
    let stderr = run.stderr();
    assert!(
        !stderr.contains(['\u{1b}', '\u{7}']) && !stderr.contains("\ndtlto-runner: forged"),
        "{}",
        run.report()
    );
    before.assert_unchanged();
}

/// A command the system refuses as too long (3 MiB in one argument) is shown in its
/// messages cut, saying how much more there was, not whole.
#[test]
fn a_command_too_long_is_shown_bounded() {
    let dir = scene("confine-too-long");
    let long = "x".repeat(3 << 20);
    job_file(&dir, &["sh", "-c", "printf x > \"$2\"", "sh"], &[&long]);
    let before = dir.watch();
    let run = run_in_proj(&dir, &["local", "--verbose", "job.json"]);
    run.expect_status(1)
        .expect_stderr_has("jobs[0] could not be started")
        .expect_stderr_has("more bytes)");
    assert!(
        run.stderr().len() < 32 * 1024,
        "{} bytes of stderr",
        run.stderr().len()
    );
    before.assert_unchanged();
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, whose jobs could make device nodes (tests/all.sh runs it as root)"]
fn a_root_job_makes_no_device_node_and_commits_no_set_user_id_bit() {
    assert!(crate::util::is_root(), "this test needs a root job");
    landlock_abi();
    let dir = scene("confine-mknod");
    // A device node would reach a disk, or /dev/mem, from inside the staging; a
    // set-user-ID copy of a shell committed as an output would be a root shell.
    job_file(
        &dir,
        &[
            "sh",
            "-c",
            "if mknod \"$TMPDIR/null\" c 1 3 2>/dev/null; then echo made > \"$2\"; \
             else echo refused > \"$2\"; fi; chmod 4755 \"$2\"",
            "sh",
        ],
        &[],
    );
    let before = dir.watch();
    run_in_proj(&dir, &["local", "job.json"]).expect_status(0);
    assert_eq!(dir.read("proj/out0.o"), b"refused\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("proj/out0.o"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o755, "{mode:o}");
    let added: Vec<String> = crate::util::changes(&before, &dir.snapshot());
    assert_eq!(
        added,
        [format!(
            "+ {}",
            std::path::Path::new("proj").join("out0.o").display()
        )]
    );
}

/// A job of a user other than root leaves a directory of mode 000 in its TMPDIR:
/// the staging is still removed (root could remove it anyway).
#[test]
#[ignore = "needs root, to run the runner as another user with setpriv (tests/all.sh runs it as root)"]
fn a_directory_a_job_made_unreadable_does_not_keep_its_staging() {
    assert!(
        crate::util::is_root(),
        "this test runs the runner as another user with setpriv"
    );
    let dir = scene("confine-mode-000");
    job_file(
        &dir,
        &[
            "sh",
            "-c",
            "mkdir -p \"$TMPDIR/a/b\" && chmod 0 \"$TMPDIR/a\" && echo ok > \"$2\"",
            "sh",
        ],
        &[],
    );
    let (_bin, mut command) = as_owner_of(&dir, 4243);
    command
        .args(["local", "job.json"])
        .current_dir(dir.join("proj"));
    let run = dir.run(&mut command);
    run.expect_status(0);
    assert_eq!(dir.read("proj/out0.o"), b"ok\n");
    assert_eq!(
        crate::util::staging_left(&dir),
        Vec::<String>::new(),
        "{}",
        run.report()
    );
}

/// Gives `dir` to user `uid`, and a command that runs the runner as that user
/// (root only): the runner's directory, which must outlive the command, and it.
fn as_owner_of(dir: &TestDir, uid: u32) -> (TestDir, std::process::Command) {
    let status = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{uid}")])
        .arg(dir.path())
        .status()
        .expect("run chown");
    assert!(status.success(), "chown -R failed");
    let (bin, runner) = crate::util::runner_for_every_user();
    let mut command = std::process::Command::new("setpriv");
    command
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={uid}"),
            "--clear-groups",
        ])
        .arg(&runner);
    (bin, command)
}
