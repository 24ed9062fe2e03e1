//! Runs that meet other runs on the same outputs or in the same directory, and
//! commits whose every step can fail: no run loses, or reverts, another's file.
//! Failures of the commit's own calls are real ones, injected by strace into the
//! runner's renameat2 calls; another user is a second uid, through setpriv.
//! Unix only: on Windows (under wine) the commit's hard-link way is proven by the
//! transaction and mock-mode tests.

#![cfg(unix)]

use crate::util::{
    changes, is_staged, job_file_json, run_runner, spawn_runner, staging_dirs, wait_until, Run,
    TestDir,
};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

fn output(i: usize) -> String {
    format!("m{i}.{i}.native.o")
}

/// Job `i`'s source for run `run`: `r<run>s<i>`, holding "run <run> output <i>".
fn sources(dir: &TestDir, run: usize, jobs: usize) -> Vec<String> {
    let mut args: Vec<String> = (0..jobs)
        .map(|i| {
            let name = format!("r{run}s{i}");
            dir.write(&name, format!("run {run} output {i}\n"));
            name
        })
        .collect();
    args.push("job.json".to_owned());
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn twenty_runs_at_once_on_the_same_outputs_each_commit_whole_and_none_fails_for_nothing() {
    const RUNS: usize = 20;
    const JOBS: usize = 3;
    let dir = TestDir::new("conc-twenty");
    dir.write("job.json", job_file_json(JOBS));
    let args: Vec<Vec<String>> = (0..RUNS).map(|run| sources(&dir, run, JOBS)).collect();
    for round in 0..3 {
        // Outputs exist in some rounds and not in others: both ways of placing race.
        if round == 1 {
            for i in 0..JOBS {
                dir.write(&output(i), "previous\n");
            }
        }
        let children: Vec<_> = args
            .iter()
            .map(|args| spawn_runner(&dir, &strs(args)))
            .collect();
        let runs: Vec<Run> = children
            .into_iter()
            .map(|child| child.finish("a concurrent run", LIMIT))
            .collect();
        for run in &runs {
            run.expect_status(0);
        }
        for i in 0..JOBS {
            let content = String::from_utf8(dir.read(&output(i))).unwrap();
            assert!(
                (0..RUNS).any(|run| content == format!("run {run} output {i}\n")),
                "{} holds {content:?}, which no run wrote whole",
                output(i)
            );
        }
        assert_eq!(staging_dirs(dir.path()), Vec::<std::path::PathBuf>::new());
        assert!(
            !dir.listing().contains(".dtlto-staging-"),
            "debris left: {}",
            dir.listing()
        );
    }
}

/// strace, which tests/all.sh installs; its absence fails the test.
#[cfg(target_os = "linux")]
fn strace() -> std::process::Command {
    let found = std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "strace is not installed: these tests make the commit's calls fail with it \
         (tests/all.sh installs it from Debian)"
    );
    std::process::Command::new("strace")
}

/// The runner under strace, its `renameat2` calls from the `from`-th on failing with
/// EIO, after `delay_ms` in the kernel's entry.
#[cfg(target_os = "linux")]
fn runner_failing_renames(from: usize, delay_ms: u64, args: &[&str]) -> std::process::Command {
    let mut command = strace();
    let delay = if delay_ms > 0 {
        format!(":delay_enter={}", delay_ms * 1000)
    } else {
        String::new()
    };
    command
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=renameat2",
            "-e",
        ])
        .arg(format!("inject=renameat2:error=EIO{delay}:when={from}+"))
        .arg(crate::util::runner_exe())
        .args(args);
    command
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs strace (tests/all.sh installs it)"]
fn a_rollback_leaves_alone_an_output_that_another_run_committed_meanwhile() {
    let dir = TestDir::new("conc-rollback-race");
    dir.write("job.json", job_file_json(2));
    let a = sources(&dir, 0, 2);
    let b = sources(&dir, 1, 2);
    let before = dir.snapshot();
    // Run a places its first output (renameat2 #1), then waits 3 s in its second
    // placement, which fails; meanwhile run b commits both outputs.
    let run_a = dir.spawn(&mut runner_failing_renames(2, 3000, &strs(&a)));
    wait_until("run a to place its first output", || {
        dir.exists(&output(0)) && dir.read(&output(0)) == b"run 0 output 0\n"
    });
    run_runner(&dir, &strs(&b)).expect_status(0);
    let run_a = run_a.finish("run a", LIMIT);
    run_a
        .expect_status(1)
        .expect_stderr_has("jobs[1].outputs[0]: cannot move it into place at \"")
        .expect_stderr_has(&format!(
            "{}\" was left as it is: another run committed it meanwhile",
            output(0)
        ))
        .expect_stderr_has("every other output is as it was before the run");
    assert_eq!(
        dir.read(&output(0)),
        b"run 1 output 0\n",
        "{}",
        run_a.report()
    );
    assert_eq!(
        dir.read(&output(1)),
        b"run 1 output 1\n",
        "{}",
        run_a.report()
    );
    assert_eq!(
        changes(&before, &dir.snapshot()),
        [format!("+ {}", output(0)), format!("+ {}", output(1))],
        "{}",
        run_a.report()
    );
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs strace (tests/all.sh installs it)"]
fn a_failed_rollback_keeps_the_previous_file_and_the_next_run_puts_it_back() {
    let dir = TestDir::new("conc-failed-rollback");
    dir.write("job.json", job_file_json(2));
    dir.write(&output(0), "previous 0\n");
    dir.write(&output(1), "previous 1\n");
    let a = sources(&dir, 0, 2);
    // The next run's job, in the same directory: another output.
    dir.write(
        "other.json",
        job_file_json(1).replace(&output(0), "other.native.o"),
    );
    dir.write("x", "x\n");
    let before = dir.snapshot();
    // Each output exists: a no-replace rename finds it (#1, #3), an exchange
    // replaces it (#2, #4). The second exchange fails, and so does every call of the
    // rollback after it.
    let run = dir.run(&mut runner_failing_renames(4, 0, &strs(&a)));
    run.expect_status(1)
        .expect_stderr_has("the rollback failed; not as before the run:")
        .expect_stderr_has(&format!(
            "jobs[0].outputs[0]: \"{}\" holds this run's file; its previous file is at \"",
            dir.join(&output(0)).display()
        ))
        .expect_stderr_has(
            "the next run in that directory that writes these outputs puts their previous files back",
        );
    // Nothing was deleted: the previous file waits in the staging the message names.
    let staging = staging_dirs(dir.path());
    assert_eq!(staging.len(), 1, "{}", run.report());
    let kept = staging[0].join("out").join(output(0));
    assert_eq!(std::fs::read(&kept).unwrap(), b"previous 0\n");
    assert!(
        run.stderr().contains(&kept.display().to_string()),
        "{}",
        run.report()
    );
    assert_eq!(dir.read(&output(0)), b"run 0 output 0\n");
    assert_eq!(dir.read(&output(1)), b"previous 1\n");

    // A run that writes other outputs leaves the record alone, and says so.
    let other = run_runner(&dir, &["x", "other.json"]);
    other.expect_status(0).expect_stderr_has(&format!(
        "dtlto-runner: warning: left abandoned staging \"{}\" as it is: its recover.json names \
         \"{}\", which this run does not write; a run that does puts its previous file back\n",
        staging[0].display(),
        output(0)
    ));
    assert_eq!(staging_dirs(dir.path()), staging, "{}", other.report());
    // The same link again puts it back, then commits its own outputs, and leaves
    // no staging.
    let mut again = vec!["--verbose"];
    again.extend(strs(&a));
    let next = run_runner(&dir, &again);
    next.expect_status(0).expect_stderr_has(&format!(
        "dtlto-runner: restored \"{}\" as it was before a run that died or failed mid-commit",
        dir.join(&output(0)).display()
    ));
    assert_eq!(
        changes(&before, &dir.snapshot()),
        [
            format!("~ {}", output(0)),
            format!("~ {}", output(1)),
            "+ other.native.o".to_owned()
        ],
        "{}\n{}",
        run.report(),
        next.report()
    );
    assert_eq!(dir.read(&output(0)), b"run 0 output 0\n");
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, to run as two other users with setpriv (tests/all.sh runs it as root)"]
fn another_users_live_staging_is_left_alone_and_their_abandoned_one_is_named_once() {
    use std::os::unix::fs::PermissionsExt;
    assert!(
        crate::util::is_root(),
        "this test runs the runner as two other users with setpriv, which needs root"
    );
    // A shared directory, as /tmp is, and a runner every user may run.
    let (_bin, runner) = crate::util::runner_for_every_user();
    let dir = TestDir::new("conc-users");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    for user in ["a", "b"] {
        dir.write(
            &format!("{user}.json"),
            job_file_json(1).replace(&output(0), &format!("{user}.native.o")),
        );
        dir.write(&format!("{user}.src"), format!("from {user}\n"));
    }
    let spawn = |uid: u32, args: &[&str]| {
        dir.spawn(&mut crate::util::as_user(uid, None, "077", &runner, args))
    };
    let run_b = || {
        dir.run(&mut crate::util::as_user(
            4002,
            None,
            "077",
            &runner,
            &["b.src", "b.json"],
        ))
    };

    // User a's live run: user b's run in the same directory says nothing of it.
    let live = spawn(4001, &["--fault=delay=3000", "a.src", "a.json"]);
    wait_until("user a's run to start", || {
        staging_dirs(dir.path()).len() == 1
    });
    let b = run_b();
    b.expect_status(0);
    assert_eq!(b.stderr(), "", "{}", b.report());
    live.finish("user a's run", LIMIT).expect_status(0);
    assert_eq!(dir.read("a.native.o"), b"from a\n");

    // User a's run is killed: its staging is abandoned, and not b's to remove.
    let mut killed = spawn(4001, &["--fault=delay=60000", "a.src", "a.json"]);
    wait_until("user a's run to start", || {
        staging_dirs(dir.path()).len() == 1
    });
    killed.kill().unwrap();
    let _ = killed.wait();
    let b = run_b();
    b.expect_status(0);
    let stderr = b.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", b.report());
    assert!(
        lines[0].starts_with("dtlto-runner: warning: abandoned staging \"")
            && lines[0].ends_with("\" belongs to uid 4001: not ours to remove"),
        "{}",
        b.report()
    );
    assert_eq!(staging_dirs(dir.path()).len(), 1, "{}", b.report());
}

#[cfg(unix)]
#[test]
fn outputs_in_600_directories_commit_under_a_limit_of_1024_open_files() {
    const JOBS: usize = 600;
    let dir = TestDir::new("conc-600-dirs");
    let jobs: Vec<serde_json::Value> = (0..JOBS)
        .map(|i| {
            std::fs::create_dir(dir.join(&format!("d{i}"))).unwrap();
            serde_json::json!({
                "args": [], "inputs": [format!("m{i}.o"), format!("m{i}.bc")],
                "outputs": [format!("d{i}/m{i}.native.o")],
            })
        })
        .collect();
    let job = serde_json::json!({
        "common": {"linker_output": "app", "args": ["clang"], "inputs": []},
        "jobs": jobs,
    });
    dir.write("job.json", job.to_string());
    let mut args = Vec::new();
    for i in 0..JOBS {
        args.push(format!("s{i}"));
        dir.write(&format!("s{i}"), format!("source {i}\n"));
    }
    args.push("job.json".to_owned());
    // Both limits at 1024, as `ulimit -n 1024` sets them: nothing to raise.
    let mut command = crate::util::runner_command();
    command.args(&args).current_dir(dir.path());
    crate::util::limit_open_files(&mut command, 1024);
    dir.run(&mut command).expect_status(0);
    for i in [0, 299, 599] {
        assert_eq!(
            dir.read(&format!("d{i}/m{i}.native.o")),
            format!("source {i}\n").as_bytes()
        );
    }
    // A soft limit of 256 under a hard one of 4096: the runner raises its own.
    let mut command = crate::util::runner_command();
    command.args(&args).current_dir(dir.path());
    crate::util::limit_open_files_soft(&mut command, 256, 4096);
    dir.run(&mut command).expect_status(0);
    assert!(!is_staged(dir.path(), "m0.native.o"));
}

#[cfg(unix)]
#[test]
fn an_output_or_a_staging_swapped_for_a_link_mid_run_redirects_nothing() {
    use std::os::unix::fs::symlink;
    // An output replaced by a link to someone's file while the guest runs.
    let dir = TestDir::new("conc-swap-output");
    dir.write("job.json", job_file_json(2));
    let args = sources(&dir, 0, 2);
    dir.write(&output(0), "previous\n");
    dir.write("victim", "someone's\n");
    let mut delayed = vec!["--fault=delay=1500@1".to_owned()];
    delayed.extend(args.iter().cloned());
    let child = spawn_runner(&dir, &strs(&delayed));
    wait_until("job 0 to be staged", || is_staged(dir.path(), &output(0)));
    std::fs::remove_file(dir.join(&output(0))).unwrap();
    symlink("victim", dir.join(&output(0))).unwrap();
    let before = dir.snapshot();
    child
        .finish("the runner", LIMIT)
        .expect_status(1)
        .expect_stderr_has("is a symbolic link, not a regular file that an output may replace");
    // The run's own staging went away; nothing else changed.
    let changed: Vec<String> = changes(&before, &dir.snapshot())
        .into_iter()
        .filter(|change| !change.starts_with("- .dtlto-staging-"))
        .collect();
    assert_eq!(changed, Vec::<String>::new());
    assert_eq!(dir.read("victim"), b"someone's\n");

    // The staging directory renamed away and a link to a decoy put in its place.
    let dir = TestDir::new("conc-swap-staging");
    dir.write("job.json", job_file_json(2));
    let args = sources(&dir, 0, 2);
    for i in 0..2 {
        dir.write(&format!("decoy/out/{}", output(i)), "decoy\n");
    }
    let mut delayed = vec!["--fault=delay=1500@1".to_owned()];
    delayed.extend(args.iter().cloned());
    let child = spawn_runner(&dir, &strs(&delayed));
    wait_until("job 0 to be staged", || is_staged(dir.path(), &output(0)));
    let staging = staging_dirs(dir.path()).remove(0);
    std::fs::rename(&staging, dir.join("moved")).unwrap();
    symlink(dir.join("decoy"), &staging).unwrap();
    let before = dir.snapshot();
    let run = child.finish("the runner", LIMIT);
    run.expect_status(1)
        .expect_stderr_has("was moved or replaced during the run");
    // Nothing was committed from the decoy, and nothing of it was removed; the guest
    // wrote on into the staging it had open, wherever that was moved.
    let after = dir.snapshot();
    assert!(
        !dir.exists(&output(0)) && !dir.exists(&output(1)),
        "{}",
        run.report()
    );
    for i in 0..2 {
        assert_eq!(dir.read(&format!("decoy/out/{}", output(i))), b"decoy\n");
    }
    assert!(
        changes(&before, &after)
            .iter()
            .all(|change| change.starts_with("+ moved/out/")),
        "{:?}\n{}",
        changes(&before, &after),
        run.report()
    );
}
