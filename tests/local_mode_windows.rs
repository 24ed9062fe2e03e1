//! `local` mode as a Windows program (run under wine by tests/all.sh): the jobs'
//! compiles run natively, each in a job object of its own, unconfined (no Landlock),
//! their outputs pointed at staging and committed all or nothing. The "compiler" is
//! tests/windows/stand-in-compiler.c, which tools/setup-windows.sh builds with
//! mingw-w64 and names in DTLTO_STAND_IN_COMPILER: the Unix tests' `sh` scripts
//! cannot run here.
#![cfg(windows)]

use crate::util::{
    changes, local_jobs, run_runner, runner_exe, spawn_runner, staging_left, TestDir,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const STAND_IN_VARIABLE: &str = "DTLTO_STAND_IN_COMPILER";

/// The stand-in compiler. Missing, the test fails where CI is set (CI must run these
/// tests) and is skipped, saying so, elsewhere.
fn stand_in() -> Option<PathBuf> {
    match std::env::var_os(STAND_IN_VARIABLE) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{STAND_IN_VARIABLE}={} is not a file: run `bash tools/setup-windows.sh`",
                path.display()
            );
            Some(path)
        }
        None if std::env::var_os("CI").is_some() => panic!(
            "{STAND_IN_VARIABLE} is not set, and CI is: local mode's Windows tests need the \
             stand-in compiler that `bash tools/setup-windows.sh` builds and names"
        ),
        None => {
            eprintln!(
                "SKIPPED: {STAND_IN_VARIABLE} is not set: `bash tools/setup-windows.sh` builds \
                 the stand-in compiler and prints it (tests/all.sh's Windows stage does)"
            );
            None
        }
    }
}

/// A job file whose compiler is the stand-in: job i's args are `-o out<i>.o` and then
/// `extra[i]`; it reads `in<i>.bc` and `in<i>.thinlto.bc` and writes `out<i>.o`.
fn jobs(dir: &TestDir, compiler: &Path, extra: &[&[&str]]) -> String {
    let compiler = compiler
        .to_str()
        .expect("the stand-in compiler's path is text");
    local_jobs(dir, &[compiler], extra.len(), extra)
}

/// Replaces `from` by `to` in the job file.
fn edit(dir: &TestDir, job: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(dir.join(job)).unwrap();
    assert!(text.contains(from), "{from} not in {text}");
    dir.write(job, text.replace(from, to));
}

fn text(dir: &TestDir, name: &str) -> String {
    String::from_utf8(dir.read(name)).unwrap()
}

/// `dir` as the jobs see it: without the `\\?\` that canonicalizing added.
fn plain(dir: &TestDir) -> String {
    let shown = dir.path().display().to_string();
    shown
        .strip_prefix(r"\\?\")
        .map_or(shown.clone(), str::to_owned)
}

#[test]
fn jobs_run_in_order_with_the_terminal_and_commit_together() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-order");
    let job = jobs(
        &dir,
        &cc,
        &[
            &["--print", "start 0", "--copy", "in0.bc"],
            &["--print", "start 1", "--copy", "in1.bc"],
            &["--print", "start 2", "--copy", "in2.bc"],
        ],
    );
    dir.write("out1.o", "old 1");
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(0);
    assert_eq!(run.stdout(), "start 0\nstart 1\nstart 2\n");
    for i in 0..3 {
        assert_eq!(text(&dir, &format!("out{i}.o")), format!("bitcode {i}"));
    }
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
fn outputs_are_pointed_at_staging_in_both_forms_and_in_each_directory() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-forms");
    let job = jobs(&dir, &cc, &[&["--name"], &["--name"], &["--name"]]);
    edit(&dir, &job, r#""-o","out1.o""#, r#""-oout1.o""#);
    // An output in a subdirectory, written with a backslash as Windows tools do.
    edit(&dir, &job, r#""out2.o""#, r#""sub\\out2.o""#);
    std::fs::create_dir(dir.join("sub")).unwrap();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(0);
    for (output, staged_in) in [
        ("out0.o", plain(&dir)),
        ("out1.o", plain(&dir)),
        (r"sub\out2.o", format!(r"{}\sub", plain(&dir))),
    ] {
        let written = text(&dir, output);
        let staging = written
            .strip_prefix(&format!(r"{staged_in}\.dtlto-staging-"))
            .unwrap_or_else(|| panic!("{output} was written at {written}, not in staging"));
        let name = Path::new(output).file_name().unwrap().to_str().unwrap();
        assert!(
            staging.ends_with(&format!(r"\out\{name}")),
            "{output}: {written}"
        );
    }
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
fn tmp_temp_and_tmpdir_point_inside_staging() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-tmp");
    let job = jobs(
        &dir,
        &cc,
        &[&[
            "--env",
            "TMP",
            "--env",
            "TEMP",
            "--env",
            "TMPDIR",
            "--tmp-file",
        ]],
    );
    run_runner(&dir, &["local", &job]).expect_status(0);
    let written = text(&dir, "out0.o");
    let values: Vec<&str> = written
        .lines()
        .map(|l| l.split_once('=').expect("NAME=value").1)
        .collect();
    assert_eq!(values.len(), 3, "{written}");
    assert!(values.iter().all(|v| *v == values[0]), "{written}");
    assert!(
        values[0].starts_with(&format!(r"{}\.dtlto-staging-", plain(&dir))),
        "{written}"
    );
    assert!(!Path::new(values[0]).exists(), "{} was left", values[0]);
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
fn a_copy_named_dtlto_local_exe_runs_local_mode() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-name");
    let copy = dir.join("dtlto-local.exe");
    std::fs::copy(runner_exe(), &copy).unwrap();
    let job = jobs(&dir, &cc, &[&["--write", "x"]]);
    dir.run(std::process::Command::new(&copy).arg(&job))
        .expect_status(0);
    assert_eq!(text(&dir, "out0.o"), "x");
}

#[test]
fn jobs_2_runs_two_at_once_and_keeps_each_line_whole() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-jobs2");
    // Each job waits for the other to have started (one at a time, jobs[0] would
    // wait in vain and fail), then both write their lines in pieces at once.
    let args: Vec<[&str; 9]> = [
        ("started0", "started1", "job0"),
        ("started1", "started0", "job1"),
    ]
    .map(|(mine, other, tag)| {
        [
            "--mark",
            mine,
            "--wait-for",
            other,
            "--lines",
            "40",
            tag,
            "--write",
            "x",
        ]
    })
    .to_vec();
    let job = jobs(&dir, &cc, &[&args[0], &args[1]]);
    let run = run_runner(&dir, &["local", "--jobs", "2", &job]);
    run.expect_status(0);
    for (text, word) in [(run.stdout(), "line"), (run.stderr(), "err")] {
        assert_eq!(text.lines().count(), 80, "{}", run.report());
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            assert!(
                words.len() == 3 && words[0].starts_with("job") && words[1] == word,
                "a broken line {line:?} in:\n{text}"
            );
        }
    }
    assert_eq!(text(&dir, "out1.o"), "x");
}

#[test]
fn a_failing_job_ends_the_run_names_it_and_changes_no_output() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-fail");
    let job = jobs(
        &dir,
        &cc,
        &[
            &["--print", "ran 0", "--write", "new"],
            &["--print", "ran 1", "--write", "new", "--exit", "3"],
            &["--print", "ran 2", "--write", "new"],
        ],
    );
    dir.write("out0.o", "old 0");
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1)
        .expect_stderr_has(&format!(
            "dtlto-runner: error: jobs[1] (for \"out1.o\") failed with exit status 3: '{}' -o",
            cc.display()
        ))
        .expect_stderr_has("nothing was committed: every output is as it was before the run");
    // jobs[2] never started.
    assert_eq!(run.stdout(), "ran 0\nran 1\n");
    before.assert_unchanged();
}

#[test]
fn an_output_missing_from_its_job_arguments_is_refused_before_anything_runs() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-no-o");
    let job = jobs(&dir, &cc, &[&["--print", "ran"]]);
    edit(&dir, &job, r#""-o","out0.o""#, r#""--print","no -o""#);
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1).expect_stderr_has(
        "jobs[0].outputs[0] \"out0.o\" is not among jobs[0]'s arguments as an output",
    );
    assert_eq!(run.stdout(), "");
    before.assert_unchanged();
}

/// Unconfined on Windows, a job can write beside its output; beside the staged one,
/// that file lands in staging, and the commit refuses what the job file does not
/// declare.
#[test]
fn a_file_written_beside_the_staged_output_fails_the_commit() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-beside");
    let job = jobs(&dir, &cc, &[&["--write", "x", "--beside", "out0.o.stats"]]);
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1)
        .expect_stderr_has("path(s) the job file does not declare")
        .expect_stderr_has("out0.o.stats\"");
    before.assert_unchanged();
}

#[test]
fn without_landlock_verbose_says_not_confined_and_hermetic_refuses() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-unconfined");
    let job = jobs(&dir, &cc, &[&["--write", "x"]]);
    let before = dir.watch();
    let run = run_runner(&dir, &["local", "--hermetic", &job]);
    run.expect_status(1).expect_stderr_has(
        "--hermetic needs Landlock (Linux 5.13 or later), and this system does not have it",
    );
    before.assert_unchanged();

    let run = run_runner(&dir, &["local", "--verbose", &job]);
    run.expect_status(0)
        .expect_stderr_has("NOT confined (no Landlock on this system)")
        .expect_stderr_has("committed ");
    assert_eq!(text(&dir, "out0.o"), "x");
}

/// Each job starts a child of its own, then writes its output and prints a line; both
/// sleep and would then leave a mark in the directory. With `--jobs 2`, `jobs[2]`
/// never starts.
fn sleeping_jobs(dir: &TestDir, cc: &Path, sleep_ms: &str) -> String {
    let marks: Vec<[String; 2]> = (0..3)
        .map(|i| [format!("late{i}"), format!("late{i}-child")])
        .collect();
    let args: Vec<Vec<&str>> = (0..3)
        .map(|i| {
            vec![
                "--spawn",
                "4",
                "--sleep",
                sleep_ms,
                "--mark",
                &marks[i][1],
                "--write",
                "started",
                "--print",
                ["started 0", "started 1", "started 2"][i],
                "--sleep",
                sleep_ms,
                "--mark",
                &marks[i][0],
            ]
        })
        .collect();
    let args: Vec<&[&str]> = args.iter().map(Vec::as_slice).collect();
    jobs(dir, cc, &args)
}

/// Sleeps until `moment` (at once if it is past).
fn wait_past(moment: Instant) {
    std::thread::sleep(moment.saturating_duration_since(Instant::now()));
}

fn no_marks(dir: &TestDir, how: &str) {
    let marks: Vec<String> = dir
        .snapshot()
        .into_keys()
        .filter(|n| n.starts_with("late"))
        .collect();
    assert_eq!(
        marks,
        Vec::<String>::new(),
        "a job or its child outlived the runner ({how})"
    );
}

/// `--timeout` ends every job and its children (their job objects), rolls back and
/// exits 124. The evidence that none lived on is theirs: the marks they would leave
/// after their sleep never appear.
#[test]
fn the_timeout_ends_every_job_and_its_children_and_changes_nothing() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-timeout");
    let sleep = Duration::from_secs(8);
    let job = sleeping_jobs(&dir, &cc, &sleep.as_millis().to_string());
    dir.write("out1.o", "old 1");
    let before = dir.watch();
    let started = Instant::now();
    let child = spawn_runner(&dir, &["--timeout", "3", "local", "--jobs", "2", &job]);
    let run = child.finish("the timed-out runner", Duration::from_secs(20));
    run.expect_status(124)
        .expect_stderr_has("timed out after 3 s (--timeout)")
        .expect_stderr_has("nothing was committed, and the staging was removed");
    assert!(
        started.elapsed() < sleep,
        "the runner waited for its jobs: {:?}\n{}",
        started.elapsed(),
        run.report()
    );
    // The two jobs that ran at once, in either order; jobs[2] never started.
    let mut lines: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    lines.sort();
    assert_eq!(lines, ["started 0", "started 1"], "{}", run.report());
    // Past the moment every mark would have been written, and then some.
    wait_past(started + 2 * sleep + Duration::from_secs(2));
    no_marks(&dir, "timeout");
    before.assert_unchanged();
}

/// A runner that is killed outright cannot roll back, but the system closes its
/// handles, and each job object, closed, ends its job and what that started.
#[test]
fn a_killed_runner_takes_every_job_and_its_children_with_it() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-killed");
    let sleep = Duration::from_secs(8);
    let job = sleeping_jobs(&dir, &cc, &sleep.as_millis().to_string());
    let started = Instant::now();
    let mut child = spawn_runner(&dir, &["local", "--jobs", "2", &job]);
    let staged_both = || {
        crate::util::staging_dirs(dir.path())
            .iter()
            .filter(|s| {
                ["out0.o", "out1.o"].iter().all(|name| {
                    std::fs::metadata(s.join("out").join(name)).is_ok_and(|m| m.len() > 0)
                })
            })
            .count()
            == 1
    };
    // Each job writes its output once it has started its child.
    crate::util::wait_until("both jobs to start their children", staged_both);
    child.kill().expect("kill the runner");
    let run = child.finish("the killed runner", Duration::from_secs(20));
    assert_ne!(run.status, 0, "{}", run.report());
    wait_past(started + 2 * sleep + Duration::from_secs(2));
    no_marks(&dir, "runner killed");
    assert!(!dir.exists("out0.o") && !dir.exists("out1.o"));
}

/// With `--jobs 2`, a failing job ends the one running beside it, and the child that
/// one started (their job objects), at once.
#[test]
fn a_failing_job_ends_the_job_running_beside_it_and_its_child() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-fail-beside");
    let job = jobs(
        &dir,
        &cc,
        &[
            &["--wait-for", "started1", "--exit", "3"],
            &[
                "--spawn",
                "4",
                "--sleep",
                "8000",
                "--mark",
                "late1-child",
                "--mark",
                "started1",
                "--sleep",
                "8000",
                "--mark",
                "late1",
            ],
        ],
    );
    let started = Instant::now();
    let run = run_runner(&dir, &["local", "--jobs", "2", &job]);
    run.expect_status(1)
        .expect_stderr_has("jobs[0] (for \"out0.o\") failed with exit status 3");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the runner waited for jobs[1]: {:?}",
        started.elapsed()
    );
    wait_past(started + Duration::from_secs(18));
    no_marks(&dir, "a failing job");
    assert!(!dir.exists("out0.o") && !dir.exists("out1.o"));
}

/// A job that succeeds and leaves a child running: the child (in the job's object)
/// is ended before the commit, and never leaves the mark it would after its sleep.
#[test]
fn a_successful_job_leaves_no_child_running() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-ok-child");
    let job = jobs(
        &dir,
        &cc,
        &[&[
            "--spawn",
            "4",
            "--sleep",
            "3000",
            "--mark",
            "late0-child",
            "--write",
            "job",
        ]],
    );
    let before = dir.snapshot();
    let started = Instant::now();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(0);
    assert_eq!(text(&dir, "out0.o"), "job", "{}", run.report());
    wait_past(started + Duration::from_secs(5));
    no_marks(&dir, "a successful job");
    assert_eq!(changes(&before, &dir.snapshot()), ["+ out0.o"]);
}

/// The 8.3 short name Windows gives `path`, if it has one.
fn short_name(path: &Path) -> Option<String> {
    use std::os::windows::ffi::{OsStrExt, OsStringExt};
    use windows_sys::Win32::Storage::FileSystem::GetShortPathNameW;
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    let mut buffer = vec![0u16; 1024];
    // SAFETY: `wide` is NUL-terminated, and `buffer` is valid for its length.
    let length = unsafe { GetShortPathNameW(wide.as_ptr(), buffer.as_mut_ptr(), 1024) };
    if length == 0 || length as usize >= buffer.len() {
        return None;
    }
    buffer.truncate(length as usize);
    let short = PathBuf::from(std::ffi::OsString::from_wide(&buffer));
    let name = short.file_name()?.to_str()?.to_owned();
    (name != path.file_name()?.to_str()?).then_some(name)
}

#[test]
fn an_output_named_by_an_inputs_short_name_is_refused_and_the_input_kept() {
    let Some(cc) = stand_in() else { return };
    let dir = TestDir::new("local-win-short-name");
    let job = jobs(&dir, &cc, &[&["--copy", "in0.bc"]]);
    // The output is another name of the job's own input: the planner compares names,
    // the commit compares files.
    let input = dir.join("in0.thinlto.bc");
    let short = short_name(&input).expect("this file system gives in0.thinlto.bc a short name");
    edit(&dir, &job, "out0.o", &short);
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1).expect_stderr_has(
        "is a name of a file the run reads; a distributor must not overwrite what the link reads",
    );
    before.assert_unchanged_with(|| run.report());
}
