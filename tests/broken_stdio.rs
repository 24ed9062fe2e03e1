//! The runner's exit statuses hold whatever its stdio and signal dispositions are:
//! stderr on a full device or a closed pipe, and signals ignored by whoever started
//! it (nohup, a shell's `trap "" INT`), which must stay ignored.

#![cfg(unix)]

use crate::util::hostile::{guest, Step};
use crate::util::unix_host::broken_stderrs;
use crate::util::{
    is_staged, job_file_json, runner_command, send_signal, wait_until, Run, Started, TestDir,
};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// Two jobs, their sources, and the job file.
fn scene(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write("job.json", job_file_json(2));
    dir.write("s0", "zero\n");
    dir.write("s1", "one\n");
    dir
}

fn spawn_with_stderr(dir: &TestDir, args: &[&str], stderr: Stdio) -> Started {
    dir.spawn_with_stderr(runner_command().args(args), stderr)
}

#[test]
fn an_invalid_job_file_or_a_missing_source_with_a_broken_stderr_exits_1_not_101() {
    for (what, stderr) in broken_stderrs() {
        let dir = scene("stdio-invalid");
        dir.write("bad.json", "{\"common\": 1}");
        let run =
            spawn_with_stderr(&dir, &["s0", "s1", "bad.json"], stderr).finish("the runner", LIMIT);
        assert_eq!(run.status, 1, "stderr on {what}: {}", run.report());
    }
    for (what, stderr) in broken_stderrs() {
        let dir = scene("stdio-missing");
        let run = spawn_with_stderr(&dir, &["s0", "nothing-here", "job.json"], stderr)
            .finish("the runner", LIMIT);
        assert_eq!(run.status, 1, "stderr on {what}: {}", run.report());
    }
}

/// Sends `signal` to a running runner, and checks it ends with `status`, soon.
fn ends_with(child: Started, signal: &str, status: i32, what: &str) -> Run {
    let sent = Instant::now();
    send_signal(child.id(), signal);
    let run = child.finish("the signalled runner", LIMIT);
    assert_eq!(
        run.status,
        status,
        "SIG{signal} with stderr on {what}: {}",
        run.report()
    );
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(5), "SIG{signal} took {took:?}");
    run
}

#[test]
fn a_stop_with_a_broken_stderr_ends_with_the_signals_status() {
    for (what, stderr) in broken_stderrs() {
        // The guest waits in a host call (a WASI sleep).
        let dir = scene("stdio-stop-sleep");
        let before = dir.snapshot();
        let child = spawn_with_stderr(
            &dir,
            &["--fault=delay=60000@1", "s0", "s1", "job.json"],
            stderr,
        );
        wait_until("job 0 to be staged", || {
            is_staged(dir.path(), "m0.0.native.o")
        });
        // Staged is not yet asleep: a stop before the sleep would make it trap.
        let pid = child.id();
        wait_until("the guest to sleep", || {
            crate::util::unix_host::in_sleep(pid)
        });
        ends_with(child, "TERM", 143, what);
        // The guest was inside a host call: its staging is left for the next run.
        crate::util::left_then_reclaimed(
            &dir,
            &before,
            &["s0", "s1", "job.json"],
            &["m0.0.native.o", "m1.1.native.o"],
        );
    }
    let modules = TestDir::new("stdio-spin-module");
    let spin = modules.write("spin.wasm", guest(&[Step::Spin]));
    let spin = spin.to_string_lossy().into_owned();
    for (what, stderr) in broken_stderrs() {
        // The guest spins without calling the host.
        let dir = scene("stdio-stop-spin");
        let before = dir.snapshot();
        let child = spawn_with_stderr(&dir, &["--module", &spin, "s0", "job.json"], stderr);
        wait_until("the staging to exist", || {
            !crate::util::staging_dirs(dir.path()).is_empty()
        });
        std::thread::sleep(Duration::from_millis(200));
        ends_with(child, "INT", 130, what);
        assert_eq!(
            crate::util::changes(&before, &dir.snapshot()),
            Vec::<String>::new()
        );
    }
}

/// Starts `program args runner ...` on the scene, with job 1 delayed, and waits
/// until job 0 is staged.
fn delayed_run_through(dir: &TestDir, program: &str, args: &[&str]) -> Started {
    let child = dir.spawn(
        Command::new(program)
            .args(args)
            .arg(crate::util::runner_exe())
            .args(["--fault=delay=1500@1", "s0", "s1", "job.json"]),
    );
    wait_until("job 0 to be staged", || {
        is_staged(dir.path(), "m0.0.native.o")
    });
    child
}

#[test]
fn under_nohup_a_sighup_leaves_the_run_to_finish_and_commit() {
    let dir = scene("stdio-nohup");
    let child = delayed_run_through(&dir, "nohup", &[]);
    send_signal(child.id(), "HUP");
    child.finish("the run under nohup", LIMIT).expect_status(0);
    assert_eq!(dir.read("m0.0.native.o"), b"zero\n");
    assert_eq!(dir.read("m1.1.native.o"), b"one\n");
}

#[test]
fn sigint_and_sigterm_ignored_by_the_parent_stay_ignored() {
    let dir = scene("stdio-ignored");
    // As a shell's `trap "" INT TERM` before starting a command, or make's children.
    let child = delayed_run_through(&dir, "sh", &["-c", "trap '' INT TERM; exec \"$@\"", "sh"]);
    send_signal(child.id(), "INT");
    send_signal(child.id(), "TERM");
    child
        .finish("the run with INT and TERM ignored", LIMIT)
        .expect_status(0);
    assert_eq!(dir.read("m1.1.native.o"), b"one\n");
}
