//! The sandbox's transaction under the faults CI machines see: a run that races a
//! directory, runs at once with others (of any pid, in any pid namespace), is
//! signalled at any moment or killed outright, and guests that alias their outputs
//! or build trees to exhaust the cleanup. Each test snapshots the tree (names,
//! kinds, sizes, hashes, inodes, link counts) before and after, and states exactly
//! what changed.

use crate::util::hostile::{errnos, guest, link, write};
use crate::util::{
    changes, is_staged, job_file_json, run_runner, spawn_runner, staging_dirs, wait_until, TestDir,
};
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

/// A job directory with `jobs` jobs as lld writes them, and a source `s<i>` for each.
fn scene(name: &str, jobs: usize) -> TestDir {
    let dir = TestDir::new(name);
    dir.write("job.json", job_file_json(jobs));
    for i in 0..jobs {
        dir.write(&format!("s{i}"), format!("new {i}\n"));
    }
    dir
}

fn output(i: usize) -> String {
    format!("m{i}.{i}.native.o")
}

/// The distributor arguments for `jobs` jobs: `s0 ... s<n-1> job.json`.
fn sources_then_job(jobs: usize) -> Vec<String> {
    let mut args: Vec<String> = (0..jobs).map(|i| format!("s{i}")).collect();
    args.push("job.json".to_owned());
    args
}

fn with(first: &[&str], rest: &[String]) -> Vec<String> {
    first
        .iter()
        .map(|s| s.to_string())
        .chain(rest.iter().cloned())
        .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_directory_that_appears_at_an_output_mid_run_leaves_every_output_as_it_was() {
    let dir = scene("txn-dir-appears", 5);
    for i in 0..4 {
        dir.write(&output(i), format!("old {i}\n"));
    }
    let before = dir.snapshot();
    // Job 4 waits, so the test can put a directory where its output goes.
    let args = with(&["--fault=delay=1500@4"], &sources_then_job(5));
    let child = spawn_runner(&dir, &strs(&args));
    wait_until("the first four outputs to be staged", || {
        is_staged(dir.path(), &output(3))
    });
    std::fs::create_dir(dir.join(&output(4))).unwrap();
    let run = child.finish("the runner", LIMIT);
    run.expect_status(1)
        .expect_stderr_has("jobs[4].outputs[0]: \"")
        .expect_stderr_has(
            "m4.4.native.o\" is a directory, not a regular file that an output may replace",
        )
        .expect_stderr_has("every output is as it was before the run");
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ m4.4.native.o"],
        "{}",
        run.report()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_name_that_is_not_utf8_cannot_pass_a_directory_off_as_a_file() {
    use std::os::unix::ffi::OsStrExt;
    // 70 outputs: the planner lists the directory once. A directory has the name of
    // the last output, and a file's name that is not UTF-8 reads the same lossily.
    let dir = scene("txn-not-utf8", 70);
    let last = "m69\u{fffd}.native.o";
    dir.write("job.json", job_file_json(70).replace(&output(69), last));
    std::fs::create_dir(dir.join(last)).unwrap();
    let lookalike = std::ffi::OsStr::from_bytes(b"m69\xff.native.o");
    std::fs::write(dir.path().join(lookalike), "not UTF-8").unwrap();
    let before = dir.watch();
    run_runner(&dir, &strs(&sources_then_job(70)))
        .expect_status(1)
        .expect_stderr_has(&format!(
            "dtlto-runner: error: job.json: cannot stage jobs[69].outputs[0] \"{last}\": a directory of that name exists"
        ));
    before.assert_unchanged();
}

/// Two runs of `program` in one directory, each with its own outputs (`a` and
/// `b`); run a waits in its job until run b has finished.
fn two_runs_at_once(dir: &TestDir, program: &std::path::Path, a_args: &[&str], b_args: &[&str]) {
    for tag in ["a", "b"] {
        let job = job_file_json(1).replace("m0.0.native.o", &format!("{tag}.native.o"));
        dir.write(&format!("{tag}.json"), job);
        dir.write(&format!("{tag}.src"), format!("source of {tag}\n"));
    }
    let before = dir.snapshot();
    let child = dir.spawn(std::process::Command::new(program).args(a_args));
    // Run a has made its staging; its job waits before writing.
    wait_until("run a to start", || staging_dirs(dir.path()).len() == 1);
    let b = dir.run(std::process::Command::new(program).args(b_args));
    b.expect_status(0);
    assert_eq!(
        staging_dirs(dir.path()).len(),
        1,
        "run b removed run a's staging, or left its own\n{}",
        b.report()
    );
    let a = child.finish("run a", LIMIT);
    a.expect_status(0);
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ a.native.o", "+ b.native.o"],
        "{}\n{}",
        a.report(),
        b.report()
    );
    assert_eq!(dir.read("a.native.o"), b"source of a\n");
    assert_eq!(dir.read("b.native.o"), b"source of b\n");
}

#[test]
fn two_runs_at_once_in_one_directory_keep_to_their_own_staging() {
    let dir = TestDir::new("txn-two-runs");
    two_runs_at_once(
        &dir,
        &crate::util::runner_exe(),
        &["--fault=delay=1500", "a.src", "a.json"],
        &["b.src", "b.json"],
    );
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, for unshare (tests/all.sh runs it with --include-ignored)"]
fn two_runs_that_are_both_pid_1_in_their_namespaces_keep_to_their_own_staging() {
    assert!(
        crate::util::is_root(),
        "this test runs dtlto-runner as pid 1 of new pid namespaces with unshare, which needs root"
    );
    let dir = TestDir::new("txn-pid-namespaces");
    let runner = crate::util::runner_exe();
    let runner = runner.to_string_lossy();
    // Each run is pid 1 of a namespace of its own; a pid in a name would collide.
    two_runs_at_once(
        &dir,
        std::path::Path::new("unshare"),
        &[
            "--pid",
            "--fork",
            &runner,
            "--fault=delay=1500",
            "a.src",
            "a.json",
        ],
        &["--pid", "--fork", &runner, "b.src", "b.json"],
    );
}

#[test]
fn staging_left_by_a_killed_run_is_reclaimed_by_the_next_and_others_are_left_alone() {
    let dir = scene("txn-killed", 2);
    // A directory that only looks like staging is someone else's.
    dir.write(".dtlto-staging-notes/out/thesis.tex", "someone's thesis");
    let before = dir.snapshot();
    let args = with(&["--fault=delay=60000@1"], &sources_then_job(2));
    let mut child = spawn_runner(&dir, &strs(&args));
    wait_until("job 0 to be staged", || is_staged(dir.path(), &output(0)));
    // SIGKILL on Unix, TerminateProcess on Windows: no handler runs.
    child.kill().expect("kill the runner");
    let killed = child.finish("the killed run", LIMIT);
    assert_ne!(killed.status, 0, "{}", killed.report());
    let debris = staging_dirs(dir.path());
    assert_eq!(debris.len(), 2, "{debris:?}");
    let rerun = run_runner(&dir, &strs(&with(&["--verbose"], &sources_then_job(2))));
    rerun
        .expect_status(0)
        .expect_stderr_has("dtlto-runner: reclaimed abandoned staging \"");
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ m0.0.native.o", "+ m1.1.native.o"],
        "{}",
        rerun.report()
    );
}

/// What a stop does with the staging.
#[cfg(unix)]
#[derive(PartialEq)]
enum Staging {
    /// The guest stopped (it was running wasm): the staging is removed.
    Removed,
    /// The guest was blocked in a host call and could still write: the staging is
    /// left as it is for the next run, never removed under a writer.
    Left,
}

/// How a signal ends a run: the shell's status, one line, nothing committed, the
/// staging removed or left as `staging` says, and soon. The caller compares the
/// tree with its snapshot.
#[cfg(unix)]
fn stopped_by(child: crate::util::Started, signal: &str, status: i32, staging: Staging) {
    let sent = Instant::now();
    crate::util::send_signal(child.id(), signal);
    let run = child.finish("the signalled runner", LIMIT);
    let took = sent.elapsed();
    run.expect_status(status).expect_stderr_has(&match staging {
        Staging::Removed => format!(
            "dtlto-runner: stopped by SIG{signal}: nothing was committed, and the staging was removed\n"
        ),
        Staging::Left => format!(
            "dtlto-runner: stopped by SIG{signal}: nothing was committed; the distributor did \
             not stop in time, so its staging is left for the next run in that directory to \
             remove: \""
        ),
    });
    assert!(
        took < Duration::from_secs(5),
        "SIG{signal} took {took:?} to end the run"
    );
}

#[cfg(unix)]
#[test]
fn sigint_sigterm_and_sighup_during_a_wasi_sleep_end_the_run_at_once() {
    for (signal, status) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let dir = scene(&format!("txn-sleep-{signal}"), 2);
        let snapshot = dir.snapshot();
        let args = with(&["--fault=delay=60000@1"], &sources_then_job(2));
        let child = spawn_runner(&dir, &strs(&args));
        wait_until("job 0 to be staged", || is_staged(dir.path(), &output(0)));
        // Job 0 staged is not yet the guest asleep: a stop before the sleep makes it
        // trap, and the staging is removed at once.
        let pid = child.id();
        wait_until("the guest to sleep", || {
            crate::util::unix_host::in_sleep(pid)
        });
        // The guest sleeps in a host call: it could still write when it returns.
        stopped_by(child, signal, status, Staging::Left);
        crate::util::left_then_reclaimed(
            &dir,
            &snapshot,
            &["s0", "s1", "job.json"],
            &["m0.0.native.o", "m1.1.native.o"],
        );
    }
}

#[cfg(unix)]
#[test]
fn sigterm_and_sigint_while_the_guest_waits_to_open_a_fifo_end_the_run_at_once() {
    for (signal, status) in [("TERM", 143), ("INT", 130)] {
        let dir = scene(&format!("txn-fifo-{signal}"), 1);
        crate::util::make_fifo(&dir.join("pipe"));
        let modules = TestDir::new("txn-fifo-module");
        // It stages its output, then opens a FIFO in the directory `--read .` gives it
        // whole (fd 4, after the job file's, which grants only declared files; the
        // staging is fd 5).
        let module = modules.write(
            "fifo.wasm",
            guest(&[
                write(5, &output(0), "staged"),
                crate::util::hostile::Step::OpenRead {
                    fd: 4,
                    path: "pipe",
                },
            ]),
        );
        let snapshot = dir.snapshot();
        let module = module.to_string_lossy().into_owned();
        let child = spawn_runner(
            &dir,
            &["--read", ".", "--module", &module, "s0", "job.json"],
        );
        wait_until("the output to be staged", || {
            is_staged(dir.path(), &output(0))
        });
        // The guest is now in, or about to enter, the open that never returns.
        std::thread::sleep(Duration::from_millis(200));
        stopped_by(child, signal, status, Staging::Left);
        crate::util::left_then_reclaimed(&dir, &snapshot, &["s0", "job.json"], &["m0.0.native.o"]);
    }
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_during_a_big_copy_leave_no_staged_or_partial_file() {
    let dir = TestDir::new("txn-big-copy");
    // A 2 GiB sparse source: copying it takes long enough to be caught mid-way.
    let source = std::fs::File::create(dir.join("s0")).unwrap();
    source.set_len(2 << 30).unwrap();
    drop(source);
    dir.write("job.json", job_file_json(1));
    let snapshot = dir.watch();
    for (signal, status) in [("INT", 130), ("TERM", 143)] {
        let child = spawn_runner(&dir, &["s0", "job.json"]);
        wait_until("the copy to start", || {
            staging_dirs(dir.path()).iter().any(|s| {
                s.join("out")
                    .join(output(0))
                    .metadata()
                    .is_ok_and(|m| m.len() > 0)
            })
        });
        stopped_by(child, signal, status, Staging::Removed);
        snapshot.assert_unchanged();
    }
}

#[test]
fn a_guest_that_hard_links_one_output_to_the_others_gets_nothing_committed() {
    let dir = TestDir::new("txn-aliases");
    let job = serde_json::json!({
        "common": {"linker_output": "app", "args": ["clang"], "inputs": []},
        "jobs": [{"args": [], "inputs": ["a.o", "a.bc"], "outputs": ["x.o", "y.o", "z.o"]}],
    });
    dir.write("job.json", job.to_string());
    dir.write("s0", "source");
    let modules = TestDir::new("txn-aliases-module");
    let module = modules.write(
        "alias.wasm",
        guest(&[
            write(4, "x.o", "one inode"),
            link(4, "x.o", "y.o"),
            link(4, "x.o", "z.o"),
        ]),
    );
    let before = dir.watch();
    let module = module.to_string_lossy().into_owned();
    let run = run_runner(&dir, &["--module", &module, "s0", "job.json"]);
    assert_eq!(errnos(&run.stdout()), [0, 0, 0], "{}", run.report());
    run.expect_status(1)
        .expect_stderr_has("nothing was committed:\n  jobs[0].outputs[0]: staged \"")
        .expect_stderr_has("x.o\" has 3 names (hard links); an output must be a file of its own")
        .expect_stderr_has("jobs[0].outputs[2]: staged \"");
    before.assert_unchanged();
}

#[cfg(unix)]
#[test]
fn a_staging_tree_deeper_than_the_open_file_limit_and_path_max_is_removed() {
    let dir = scene("txn-deep", 1);
    let modules = TestDir::new("txn-deep-module");
    // 1,100 levels of 10-character names: 12,100 bytes of path, and far more
    // directories than the 64 files the runner may have open.
    let module = modules.write(
        "deep.wasm",
        guest(&[
            write(4, &output(0), "ok"),
            crate::util::hostile::Step::DeepDirectories {
                fd: 4,
                name: "dddddddddd",
                depth: 1100,
            },
            crate::util::hostile::Step::Exit(0),
        ]),
    );
    let before = dir.watch();
    let module = module.to_string_lossy().into_owned();
    let mut command = crate::util::runner_command();
    command
        .args(["--module", &module, "s0", "job.json"])
        .current_dir(dir.path());
    crate::util::limit_open_files(&mut command, 64);
    let run = dir.run(&mut command);
    assert_eq!(
        errnos(&run.stdout()),
        [0, 0],
        "the guest could not build the tree\n{}",
        run.report()
    );
    run.expect_status(1)
        .expect_stderr_has("the distributor wrote 1 path(s) the job file does not declare")
        .expect_stderr_has("dddddddddd\"");
    assert!(!run.stderr().contains("cannot remove"), "{}", run.report());
    before.assert_unchanged_with(|| run.report());
}

#[test]
fn many_runs_at_once_in_one_directory_never_disturb_each_other() {
    // Runs that start and end while others reclaim, create and remove staging.
    let dir = TestDir::new("txn-many-runs");
    let runs = 4;
    for k in 0..runs {
        let job = job_file_json(1).replace("m0.0.native.o", &format!("out{k}.o"));
        dir.write(&format!("job{k}.json"), job);
        dir.write(&format!("s{k}"), format!("source {k}\n"));
    }
    let loops: Vec<_> = (0..runs)
        .map(|k| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                for _ in 0..60 {
                    let run = dir.run(
                        crate::util::runner_command()
                            .args([format!("s{k}"), format!("job{k}.json")]),
                    );
                    if run.status != 0 {
                        failures.push(run.report());
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = loops.into_iter().flat_map(|l| l.join().unwrap()).collect();
    assert!(
        failures.is_empty(),
        "{} runs failed; the first:\n{}",
        failures.len(),
        failures[0]
    );
    assert!(staging_dirs(dir.path()).is_empty(), "{}", dir.listing());
    for k in 0..runs {
        assert_eq!(
            dir.read(&format!("out{k}.o")),
            format!("source {k}\n").as_bytes()
        );
    }
}

#[cfg(unix)]
#[test]
fn a_stop_ends_the_run_even_when_the_guest_holds_every_file_the_runner_may_open() {
    let dir = scene("txn-fd-exhaustion", 1);
    crate::util::make_fifo(&dir.join("pipe"));
    let modules = TestDir::new("txn-fd-exhaustion-module");
    // It opens staged files until the open-file limit refuses, frees one descriptor,
    // and takes it back to wait on a FIFO: the process has no file left to open. The
    // FIFO is in the directory `--read .` gives it whole (fd 4; the staging is fd 5).
    let module = modules.write(
        "hog.wasm",
        guest(&[
            crate::util::hostile::Step::ManyFiles {
                fd: 5,
                count: 400,
                keep_open: true,
            },
            crate::util::hostile::Step::CloseLastOpened,
            crate::util::hostile::Step::OpenRead {
                fd: 4,
                path: "pipe",
            },
        ]),
    );
    let snapshot = dir.snapshot();
    let module = module.to_string_lossy().into_owned();
    let mut command = crate::util::runner_command();
    command.args(["--read", ".", "--module", &module, "s0", "job.json"]);
    crate::util::limit_open_files(&mut command, 128);
    let child = dir.spawn(&mut command);
    wait_until("the guest to run out of files", || {
        staging_dirs(dir.path())
            .iter()
            .any(|s| std::fs::read_dir(s.join("out")).is_ok_and(|d| d.count() > 50))
    });
    std::thread::sleep(Duration::from_millis(300));
    stopped_by(child, "TERM", 143, Staging::Left);
    crate::util::left_then_reclaimed(&dir, &snapshot, &["s0", "job.json"], &["m0.0.native.o"]);
}

#[cfg(unix)]
#[test]
fn a_link_of_more_jobs_than_the_open_file_limit_works() {
    // Sources are opened one at a time, so 300 jobs need no more than 64 open files.
    let dir = scene("txn-many-jobs", 300);
    let mut command = crate::util::runner_command();
    command.args(sources_then_job(300)).current_dir(dir.path());
    crate::util::limit_open_files(&mut command, 64);
    dir.run(&mut command).expect_status(0);
    assert_eq!(dir.read(&output(299)), b"new 299\n");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, for a bind mount (tests/all.sh runs it with --include-ignored)"]
fn an_input_reached_through_a_bind_mount_is_still_the_input() {
    assert!(
        crate::util::is_root(),
        "this test makes a bind mount, which needs root"
    );
    let dir = scene("txn-bind-mount", 1);
    dir.write("o/in.o", "input\n");
    std::fs::create_dir(dir.join("p")).unwrap();
    let job = job_file_json(1)
        .replace(r#""inputs":["m0.o","#, r#""inputs":["o/in.o","#)
        .replace("m0.0.native.o", "p/in.o");
    dir.write("job.json", job);
    let mount = |args: &[&str]| {
        let status = std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    };
    let (o, p) = (dir.join("o"), dir.join("p"));
    mount(&[
        "mount",
        "--bind",
        &o.to_string_lossy(),
        &p.to_string_lossy(),
    ]);
    let run = run_runner(&dir, &["s0", "job.json"]);
    mount(&["umount", &p.to_string_lossy()]);
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: job.json: jobs[0].outputs[0] \"p/in.o\" is also jobs[0].inputs[0]",
    );
    assert_eq!(dir.read("o/in.o"), b"input\n");
}

/// An exFAT file system through FUSE, on a loop device, mounted at `mnt` in a test
/// directory: neither `renameat2`'s flags nor hard links exist there. Unmounted and
/// detached when dropped.
#[cfg(target_os = "linux")]
struct ExfatMount {
    mnt: std::path::PathBuf,
    device: String,
}

#[cfg(target_os = "linux")]
impl ExfatMount {
    fn new(dir: &TestDir) -> ExfatMount {
        let image = dir.join("exfat.img");
        let run = |program: &str, args: &[&std::ffi::OsStr]| -> String {
            let output = std::process::Command::new(program)
                .args(args)
                .output()
                .unwrap_or_else(|e| panic!("cannot run {program} (tests/all.sh installs it): {e}"));
            assert!(
                output.status.success(),
                "{program} {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).trim().to_owned()
        };
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(64 << 20))
            .unwrap();
        run("mkfs.exfat", &[image.as_os_str()]);
        let device = run(
            "losetup",
            &["-f".as_ref(), "--show".as_ref(), image.as_os_str()],
        );
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let mount = ExfatMount { mnt, device };
        run(
            "mount.exfat-fuse",
            &[mount.device.as_ref(), mount.mnt.as_os_str()],
        );
        mount
    }
}

#[cfg(target_os = "linux")]
impl Drop for ExfatMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.mnt).status();
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.device])
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, a loop device and exfat-fuse (tests/all.sh installs it and runs this)"]
fn outputs_on_exfat_through_fuse_are_created_and_replaced_without_losing_the_previous_file() {
    assert!(
        crate::util::is_root(),
        "this test mounts a file system, which needs root"
    );
    let dir = TestDir::new("txn-exfat");
    let mount = ExfatMount::new(&dir);
    let at = |name: &str| mount.mnt.join(name);
    std::fs::write(at("job.json"), job_file_json(2)).unwrap();
    std::fs::write(at("s0"), "new 0\n").unwrap();
    std::fs::write(at("s1"), "new 1\n").unwrap();
    // One output replaces a file, the other is a new name.
    std::fs::write(at(&output(0)), "old 0\n").unwrap();
    let before = crate::util::tree::snapshot(&mount.mnt);
    let mut command = crate::util::runner_command();
    command
        .args(["s0", "s1", "job.json"])
        .current_dir(&mount.mnt);
    let run = dir.run(&mut command);
    run.expect_status(0);
    assert_eq!(std::fs::read(at(&output(0))).unwrap(), b"new 0\n");
    assert_eq!(std::fs::read(at(&output(1))).unwrap(), b"new 1\n");
    assert_eq!(
        changes(&before, &crate::util::tree::snapshot(&mount.mnt)),
        [format!("~ {}", output(0)), format!("+ {}", output(1))],
        "{}",
        run.report()
    );
}

#[test]
fn a_run_past_its_timeout_never_commits_however_quickly_its_guest_ends() {
    // The guest ends within a millisecond; the clock's thread may not even have run
    // by then. A deadline that has passed is a stop all the same.
    let dir = scene("txn-deadline", 2);
    let before = dir.watch();
    let run = run_runner(
        &dir,
        &strs(&with(&["--timeout", "0.000000001"], &sources_then_job(2))),
    );
    run.expect_status(124).expect_stderr_has(
        "dtlto-runner: timed out after 0.000000001 s (--timeout): nothing was committed",
    );
    before.assert_unchanged_with(|| run.report());
}
