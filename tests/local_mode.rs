//! `local` mode: the jobs' compiles run for real, natively, each confined to its
//! staging (Landlock), committed all or nothing. The first tests use `sh` as the
//! "compiler" (a job is `common.args + jobs[i].args`, whatever program that is), so
//! they need no LLVM; the last ones link real programs with LLVM 23's clang and lld.
#![cfg(unix)]

use crate::local_confinement::write_refusal;
use crate::util::llvm::{
    assert_objects_as_local_py_makes, bitcode, job_file, llvm, run_app, Llvm, PROGRAM_OUTPUT,
};
use crate::util::{
    changes, local_jobs, run_runner, runner_exe, send_signal, spawn_runner, staging_dirs,
    staging_left, wait_until, Run, TestDir,
};
use std::path::Path;
use std::time::{Duration, Instant};

/// A job file whose "compiler" is `sh -c SCRIPT sh`: job i's args are `-o out<i>.o`
/// plus `extra[i]`, so the script sees `$2` = its output.
fn sh_jobs(dir: &TestDir, script: &str, jobs: usize, extra: &[&[&str]]) -> String {
    local_jobs(dir, &["sh", "-c", script, "sh"], jobs, extra)
}

/// Landlock must be there where these tests run (this machine, CI): a kernel
/// without it fails the test rather than skipping it.
fn expect_landlock(dir: &TestDir) {
    let job = sh_jobs(dir, "printf x > \"$2\"", 1, &[]);
    let run = run_runner(dir, &["local", "--verbose", &job]);
    run.expect_status(0)
        .expect_stderr_has("confined by Landlock");
}

#[test]
fn jobs_run_in_order_one_at_a_time_with_the_terminal_and_commit_together() {
    let dir = TestDir::new("local-order");
    let job = sh_jobs(
        &dir,
        "echo \"start $3\"; printf \"object $3\" > \"$2\"; echo \"end $3\" >&2",
        3,
        &[&["0"], &["1"], &["2"]],
    );
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(0);
    assert_eq!(
        run.stdout(),
        "start 0\nstart 1\nstart 2\n",
        "{}",
        run.report()
    );
    assert_eq!(run.stderr(), "end 0\nend 1\nend 2\n", "{}", run.report());
    for i in 0..3 {
        assert_eq!(
            dir.read(&format!("out{i}.o")),
            format!("object {i}").as_bytes()
        );
    }
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
fn a_copy_named_dtlto_local_runs_local_mode_and_tmpdir_is_inside_staging() {
    let dir = TestDir::new("local-name");
    let copy = dir.join("dtlto-local");
    // A link, not a copy: a copy's write descriptor, inherited for a moment by a
    // process another test forks, can make exec fail with ETXTBSY.
    std::os::unix::fs::symlink(runner_exe(), &copy).unwrap();
    let job = sh_jobs(
        &dir,
        "echo \"$TMPDIR\" > \"$2\"; : > \"$TMPDIR/scratch\"",
        1,
        &[],
    );
    let run = dir.run(std::process::Command::new(&copy).arg(&job));
    run.expect_status(0);
    let tmpdir = String::from_utf8(dir.read("out0.o")).unwrap();
    assert!(
        tmpdir.starts_with(&format!("{}/.dtlto-staging-", dir.path().display())),
        "TMPDIR {tmpdir}"
    );
    assert!(
        !Path::new(tmpdir.trim_end()).exists(),
        "TMPDIR {tmpdir} was left"
    );
}

#[test]
fn outputs_in_several_directories_are_staged_in_each_and_committed_together() {
    let dir = TestDir::new("local-dirs");
    std::fs::create_dir(dir.join("sub")).unwrap();
    let job = sh_jobs(&dir, "echo \"$TMPDIR\" > \"$2\"", 2, &[]);
    let text = std::fs::read_to_string(dir.join(&job)).unwrap();
    dir.write(&job, text.replace("\"out1.o\"", "\"sub/out1.o\""));
    run_runner(&dir, &["local", &job]).expect_status(0);
    for (output, staging_in) in [
        ("out0.o", dir.path().to_owned()),
        ("sub/out1.o", dir.join("sub")),
    ] {
        let tmpdir = String::from_utf8(dir.read(output)).unwrap();
        assert!(
            tmpdir.starts_with(&format!("{}/.dtlto-staging-", staging_in.display())),
            "{output}: TMPDIR {tmpdir}"
        );
    }
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
fn a_failing_job_ends_the_run_names_it_and_changes_no_output() {
    let dir = TestDir::new("local-fail");
    let job = sh_jobs(
        &dir,
        "echo \"ran $3\"; printf new > \"$2\"; [ \"$3\" != 1 ] || exit 3",
        3,
        &[&["0"], &["1"], &["2"]],
    );
    dir.write("out0.o", "old 0");
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: jobs[1] (for \"out1.o\") failed with exit status 3: sh -c ",
        )
        .expect_stderr_has("nothing was committed: every output is as it was before the run");
    assert!(!run.stderr().contains("Traceback"), "{}", run.report());
    // jobs[2] never started.
    assert_eq!(run.stdout(), "ran 0\nran 1\n", "{}", run.report());
    before.assert_unchanged();
}

#[test]
fn an_output_missing_from_its_job_arguments_is_refused_before_anything_runs() {
    let dir = TestDir::new("local-no-o");
    let job = sh_jobs(&dir, "echo ran", 1, &[]);
    let text = std::fs::read_to_string(dir.join(&job)).unwrap();
    dir.write(&job, text.replace("\"-o\",\"out0.o\"", "\"-c\",\"x\""));
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1).expect_stderr_has(
        "jobs[0].outputs[0] \"out0.o\" is not among jobs[0]'s arguments as an output",
    );
    assert_eq!(run.stdout(), "", "{}", run.report());
    before.assert_unchanged();
}

#[test]
fn the_joined_form_of_the_output_option_is_pointed_at_staging_too() {
    let dir = TestDir::new("local-joined");
    let job = sh_jobs(&dir, "printf '%s' \"$1\" > \"${1#-o}\"", 1, &[]);
    let text = std::fs::read_to_string(dir.join(&job)).unwrap();
    dir.write(&job, text.replace("\"-o\",\"out0.o\"", "\"-oout0.o\""));
    run_runner(&dir, &["local", &job]).expect_status(0);
    let written = String::from_utf8(dir.read("out0.o")).unwrap();
    assert!(written.contains("/.dtlto-staging-"), "{written}");
}

#[test]
fn jobs_2_runs_two_at_once_and_keeps_each_line_whole() {
    let dir = TestDir::new("local-jobs2");
    // Each job writes its lines in pieces, while the other writes too.
    let script = "i=0; while [ $i -lt 40 ]; do printf \"job $3 \"; printf \"line $i\\n\"; \
                  printf \"err $3 \" >&2; printf \"line $i\\n\" >&2; i=$((i+1)); done; \
                  sleep 1; printf x > \"$2\"";
    let job = sh_jobs(&dir, script, 2, &[&["0"], &["1"]]);
    let started = Instant::now();
    let run = run_runner(&dir, &["local", "--jobs", "2", &job]);
    let took = started.elapsed();
    run.expect_status(0);
    assert!(
        took < Duration::from_millis(1900),
        "two 1 s jobs took {took:?}"
    );
    for (text, prefix) in [(run.stdout(), "job"), (run.stderr(), "err")] {
        assert_eq!(text.lines().count(), 80, "{text}");
        for line in text.lines() {
            let words: Vec<&str> = line.split(' ').collect();
            assert!(
                words.len() == 4 && words[0] == prefix && words[2] == "line",
                "a broken line {line:?} in:\n{text}"
            );
        }
    }
}

/// A stop ends every job, its children too, and changes nothing.
#[test]
fn a_stop_in_the_middle_ends_every_job_and_changes_nothing() {
    for (how, status) in [("INT", 130), ("TERM", 143), ("HUP", 129), ("timeout", 124)] {
        let dir = TestDir::new(&format!("local-stop-{how}"));
        // Each job prints its pid and a grandchild's, then waits on it.
        let job = sh_jobs(
            &dir,
            "sleep 60 & echo \"pids $$ $!\"; printf started > \"$2\"; wait",
            3,
            &[],
        );
        dir.write("out1.o", "old 1");
        let before = dir.watch();
        let mut args = vec!["local", "--jobs", "2", job.as_str()];
        if how == "timeout" {
            args.splice(0..0, ["--timeout", "3"]);
        }
        let child = spawn_runner(&dir, &args);
        let pid = child.id();
        let staged = || {
            staging_dirs(dir.path())
                .iter()
                .filter(|s| {
                    s.join("out").join("out0.o").exists() && s.join("out").join("out1.o").exists()
                })
                .count()
                == 1
        };
        wait_until("both jobs to start", staged);
        if how != "timeout" {
            send_signal(pid, how);
        }
        let run = child.finish("the stopped runner", Duration::from_secs(10));
        run.expect_status(status)
            .expect_stderr_has("nothing was committed, and the staging was removed");
        let pids: Vec<String> = run
            .stdout()
            .lines()
            .flat_map(|l| {
                l.strip_prefix("pids ")
                    .unwrap_or("")
                    .split(' ')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            pids.len(),
            4,
            "two jobs, each with a child: {}",
            run.report()
        );
        // A process that was sent SIGKILL may take a moment to be gone: allow it one.
        let gone = |pid: &str| {
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while !pids.iter().all(|pid| gone(pid)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for pid in &pids {
            assert!(gone(pid), "process {pid} outlived the runner ({how})");
        }
        before.assert_unchanged_with(|| how.to_string());
    }
}

#[test]
fn landlock_refuses_a_write_outside_the_staging() {
    let dir = TestDir::new("local-beside");
    expect_landlock(&dir);
    let outside = dir.join("beside.txt");
    let job = sh_jobs(
        &dir,
        "printf x > \"$2\"; printf y > \"$3\"",
        1,
        &[&[&outside.to_string_lossy()]],
    );
    let before = dir.watch();
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1)
        .expect_stderr_has(write_refusal())
        .expect_stderr_has("jobs[0] (for \"out0.o\") failed with exit status");
    assert!(!outside.exists());
    before.assert_unchanged();
}

/// Where Landlock is missing (here: switched off), writes still go through staging,
/// `--verbose` says the jobs are not confined, and `--hermetic` refuses to run.
#[test]
fn without_landlock_writes_still_go_through_staging_and_hermetic_refuses() {
    let dir = TestDir::new("local-no-landlock");
    let job = sh_jobs(&dir, "printf x > \"$2\"; printf y > beside.txt", 1, &[]);
    let run = dir.run(
        crate::util::runner_command()
            .args(["local", "--verbose", &job])
            .env("DTLTO_RUNNER_LANDLOCK", "off"),
    );
    run.expect_status(0)
        .expect_stderr_has("NOT confined (DTLTO_RUNNER_LANDLOCK=off)")
        .expect_stderr_has("committed ");
    assert_eq!(dir.read("out0.o"), b"x");
    assert_eq!(dir.read("beside.txt"), b"y", "unconfined, as said");
    assert_eq!(staging_left(&dir), Vec::<String>::new());

    std::fs::remove_file(dir.join("out0.o")).unwrap();
    let before = dir.watch();
    let run = dir.run(
        crate::util::runner_command()
            .args(["local", "--hermetic", &job])
            .env("DTLTO_RUNNER_LANDLOCK", "off"),
    );
    run.expect_status(1).expect_stderr_has(
        "--hermetic needs Landlock (Linux 5.13 or later), and DTLTO_RUNNER_LANDLOCK=off turns it off",
    );
    before.assert_unchanged();
}

#[test]
fn an_output_that_is_also_an_input_is_refused_as_the_guest_planner_refuses_it() {
    let dir = TestDir::new("local-output-input");
    let job = sh_jobs(&dir, "printf x > \"$2\"", 1, &[]);
    let text = std::fs::read_to_string(dir.join(&job)).unwrap();
    dir.write(
        &job,
        text.replace("\"inputs\":[\"in0.bc\"", "\"inputs\":[\"out0.o\""),
    );
    let before = dir.watch();
    run_runner(&dir, &["local", &job])
        .expect_status(1)
        .expect_stderr_has("jobs[0].outputs[0] \"out0.o\" is also jobs[0].inputs[0]");
    before.assert_unchanged();
}

/// LLVM's own tests pass `--save-temps` to the backend compile
/// (`--thinlto-remote-compiler-arg`) and expect its temporaries in the working
/// directory, as local.py leaves them: a job that asks for them may write there.
#[test]
fn a_job_asking_for_save_temps_may_write_them_in_the_working_directory() {
    let dir = TestDir::new("local-save-temps");
    expect_landlock(&dir);
    let job = sh_jobs(
        &dir,
        "printf x > \"$2\"; printf t > kept.s",
        2,
        &[&["-save-temps"], &["-c"]],
    );
    let run = run_runner(&dir, &["local", &job]);
    run.expect_status(1)
        .expect_stderr_has(&format!("kept.s: {}", write_refusal()))
        .expect_stderr_has("jobs[1] (for \"out1.o\") failed");
    assert_eq!(
        dir.read("kept.s"),
        b"t",
        "jobs[0] asked for its temporaries"
    );
}

#[test]
fn hermetic_lets_a_job_read_only_what_it_declares() {
    let dir = TestDir::new("local-hermetic-sh");
    expect_landlock(&dir);
    dir.write("undeclared.h", "secret");
    let job = sh_jobs(
        &dir,
        "cat in0.bc \"$3\" > \"$2\"",
        1,
        &[&["in0.thinlto.bc"]],
    );
    run_runner(&dir, &["local", "--hermetic", &job]).expect_status(0);
    assert_eq!(dir.read("out0.o"), b"bitcode 0index 0");
    let job = sh_jobs(&dir, "cat in0.bc \"$3\" > \"$2\"", 1, &[&["undeclared.h"]]);
    let before = dir.watch();
    let run = run_runner(&dir, &["local", "--hermetic", &job]);
    run.expect_status(1)
        .expect_stderr_has("undeclared.h: Permission denied")
        .expect_stderr_has("jobs[0] ran under --hermetic");
    before.assert_unchanged();
    // Without --hermetic it reads what it likes.
    run_runner(&dir, &["local", &job]).expect_status(0);
    assert_eq!(dir.read("out0.o"), b"bitcode 0secret");
}

// Real links with LLVM 23.

/// `clang -flto=thin -fuse-ld=lld INPUTS -o app` through `dtlto-runner local`.
fn link(llvm: &Llvm, dir: &TestDir, inputs: &[&str], local_args: &[&str], extra: &[&str]) -> Run {
    let mut args: Vec<String> = ["-flto=thin", "-fuse-ld=lld", "-o", "app"]
        .map(String::from)
        .to_vec();
    args.extend(inputs.iter().map(|s| s.to_string()));
    args.push(format!("-fthinlto-distributor={}", runner_exe().display()));
    args.push("-Xthinlto-distributor=local".to_owned());
    args.extend(
        local_args
            .iter()
            .map(|a| format!("-Xthinlto-distributor={a}")),
    );
    args.extend(extra.iter().map(|a| a.to_string()));
    dir.run(std::process::Command::new(llvm.tool("clang")).args(&args))
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn clang_links_through_local_mode_with_the_objects_local_py_makes() {
    let llvm = llvm();
    let dir = TestDir::new("local-llvm");
    bitcode(&llvm, &dir);
    link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &[],
        &["-Wl,--save-temps"],
    )
    .expect_status(0);
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT);
    assert_eq!(staging_left(&dir), Vec::<String>::new());

    // What local.py does: common.args + jobs[i].args, in order, in the same
    // directory, with no shell; the objects must be the same bytes.
    let (_, doc) = job_file(&dir);
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 3);
    assert_objects_as_local_py_makes(&dir, &doc, "local mode");
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn archives_and_thin_archives_link_through_local_mode() {
    let llvm = llvm();
    for thin in [false, true] {
        let dir = TestDir::new(if thin { "local-thin-ar" } else { "local-ar" });
        bitcode(&llvm, &dir);
        llvm.run_ok(
            &dir,
            "llvm-ar",
            &[
                if thin { "rcT" } else { "rc" },
                "lib.a",
                "helper.o",
                "twice.o",
            ],
        );
        link(&llvm, &dir, &["main.o", "lib.a"], &[], &[]).expect_status(0);
        assert_eq!(run_app(&dir), PROGRAM_OUTPUT);
        assert_eq!(staging_left(&dir), Vec::<String>::new());
    }
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn clang_links_with_jobs_2() {
    let llvm = llvm();
    let dir = TestDir::new("local-llvm-jobs2");
    bitcode(&llvm, &dir);
    link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &["--jobs=2"],
        &[],
    )
    .expect_status(0);
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn a_failing_compile_fails_the_link_and_leaves_no_object() {
    let llvm = llvm();
    let dir = TestDir::new("local-llvm-fail");
    bitcode(&llvm, &dir);
    let run = link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &[],
        &["-Wl,--thinlto-remote-compiler-arg=-fno-such-option"],
    );
    run.expect_status(1)
        .expect_stderr_has("dtlto-runner: error: jobs[0] (for \"main.1.")
        .expect_stderr_has("failed with exit status 1: ")
        .expect_stderr_has("-fno-such-option")
        .expect_stderr_has("distributor execution failed");
    let left: Vec<String> = dir
        .snapshot()
        .into_keys()
        .filter(|n| n.ends_with(".native.o") || n.contains(".dtlto-staging") || n == "app")
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn hermetic_catches_an_import_missing_from_inputs_and_passes_the_real_job_file() {
    let llvm = llvm();
    let dir = TestDir::new("local-llvm-hermetic");
    expect_landlock(&dir);
    bitcode(&llvm, &dir);
    link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &["--hermetic"],
        &["-Wl,--save-temps"],
    )
    .expect_status(0);
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT);

    let (name, mut doc) = job_file(&dir);
    // Run again by hand on the job file the link kept: it passes as it is.
    let mut command = crate::util::runner_command();
    command
        .args(["local", "--hermetic", &name])
        .current_dir(dir.path());
    dir.run(&mut command).expect_status(0);

    let inputs = doc["jobs"][0]["inputs"].as_array_mut().unwrap();
    let before_len = inputs.len();
    inputs.retain(|i| i != "twice.o");
    assert_eq!(inputs.len() + 1, before_len, "main's job imports twice.o");
    dir.write("cut.json", doc.to_string());
    let before = dir.watch();
    let mut command = crate::util::runner_command();
    command
        .args(["local", "--hermetic", "cut.json"])
        .current_dir(dir.path());
    let run = dir.run(&mut command);
    run.expect_status(1)
        .expect_stderr_has("Error loading imported file twice.o")
        .expect_stderr_has("dtlto-runner: error: jobs[0] read outside what it declares");
    before.assert_unchanged();
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn a_compile_that_writes_beside_its_output_is_refused() {
    let llvm = llvm();
    let dir = TestDir::new("local-llvm-beside");
    expect_landlock(&dir);
    bitcode(&llvm, &dir);
    let beside = dir.join("beside.json");
    let arg = format!(
        "-Wl,--thinlto-remote-compiler-arg=-ftime-trace={}",
        beside.display()
    );
    let run = link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &[],
        &[&arg],
    );
    run.expect_stderr_has(&format!(
        "unable to open output file '{}': '{}'",
        beside.display(),
        write_refusal()
    ));
    assert!(!beside.exists());
    // Beside the staged output (the staging's own directory) it lands in staging,
    // and the commit refuses what the job file does not declare.
    let run = link(
        &llvm,
        &dir,
        &["main.o", "helper.o", "twice.o"],
        &[],
        &["-Wl,--thinlto-remote-compiler-arg=-save-stats=obj"],
    );
    run.expect_status(1)
        .expect_stderr_has("path(s) the job file does not declare")
        .expect_stderr_has(".stats\"");
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

// Nothing a job starts outlives it.

/// A job (`sh -c`, Landlock off: the worst case, as where there is none) that opens
/// its staged output as fd 3 and leaves four processes that would, 30 s later,
/// append to it (committed by then) and to a file outside (`$4`): one in its
/// process group, one `setsid`, one double-forked, one both (`setsid -f`). Each
/// prints `left KIND PID` and marks itself ready in TMPDIR; once all are, the job
/// writes `job` and then, by `$3`: `ok` exits 0, `hold` sleeps, `fail` (run beside
/// a `hold` job) waits for that job's output and exits 3.
const LINGERING: &str = r#"
if [ "$3" = fail ]; then
  until [ "$(cat "$(dirname "$2")/out0.o" 2>/dev/null)" = job ]; do sleep 0.01; done
  exit 3
fi
exec 3>>"$2"
late='echo "left $0 $$"; : > "$TMPDIR/ready.$0"; exec </dev/null >/dev/null 2>&1; sleep 30; printf late >&3; printf late >> "$1"'
sh -c "$late" group "$4" &
setsid sh -c "$late" setsid "$4" &
( sh -c "$late" double "$4" & )
setsid -f sh -c "$late" daemon "$4"
for kind in group setsid double daemon; do
  until [ -e "$TMPDIR/ready.$kind" ]; do sleep 0.01; done
done
printf job >&3
if [ "$3" = hold ]; then exec sleep 60 </dev/null >/dev/null 2>&1; fi
"#;

/// A scene for `LINGERING`: outputs in `build/`, a home stand-in with a file the
/// lingering processes would append to, everything snapshotted.
struct Lingering {
    dir: TestDir,
    job: String,
    outside: std::path::PathBuf,
}

impl Lingering {
    fn new(name: &str, modes: &[&str]) -> Lingering {
        let dir = TestDir::new(name);
        let outside = dir.write("home/notes.txt", "mine\n");
        let outside_arg = outside.to_string_lossy().into_owned();
        let extra: Vec<Vec<&str>> = modes.iter().map(|m| vec![*m, &outside_arg]).collect();
        let extra: Vec<&[&str]> = extra.iter().map(Vec::as_slice).collect();
        let job = sh_jobs(&dir, LINGERING, modes.len(), &extra);
        let text = std::fs::read_to_string(dir.join(&job)).unwrap();
        let text = (0..modes.len()).fold(text, |text, i| {
            text.replace(&format!("\"out{i}.o\""), &format!("\"build/out{i}.o\""))
        });
        dir.write(&job, text);
        std::fs::create_dir(dir.join("build")).unwrap();
        dir.write("build/sibling.o", "a sibling");
        Lingering { dir, job, outside }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = crate::util::runner_command();
        command
            .args(["local"])
            .args(args)
            .arg(&self.job)
            .env("DTLTO_RUNNER_LANDLOCK", "off");
        command
    }

    /// The processes the jobs left, by the lines they printed: all four kinds.
    fn left(&self, run: &Run) -> Vec<(String, u32)> {
        let left: Vec<(String, u32)> = run
            .stdout()
            .lines()
            .filter_map(|l| {
                let mut words = l.strip_prefix("left ")?.split(' ');
                Some((words.next()?.to_owned(), words.next()?.parse().ok()?))
            })
            .collect();
        let mut kinds: Vec<&str> = left.iter().map(|(k, _)| k.as_str()).collect();
        kinds.sort();
        if kinds != ["daemon", "double", "group", "setsid"] {
            run.fail("the job did not leave its four processes");
        }
        left
    }

    /// Fails the test if any of `left` still runs (after killing it, so that it
    /// writes nothing later), allowing a process sent SIGKILL a moment to go.
    fn expect_all_gone(&self, run: &Run, left: &[(String, u32)]) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while left.iter().any(|(_, pid)| !gone(*pid)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let alive: Vec<String> = left
            .iter()
            .filter(|(_, pid)| !gone(*pid))
            .map(|(kind, pid)| {
                // SAFETY: plain kill(2) of a process this test's job started.
                unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
                format!("{kind} ({pid})")
            })
            .collect();
        if !alive.is_empty() {
            run.fail(&format!(
                "still running after the runner exited: {}",
                alive.join(", ")
            ));
        }
        assert_eq!(std::fs::read(&self.outside).unwrap(), b"mine\n");
    }
}

/// Whether process `pid` has ended (gone, or a zombie: it runs no more).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_successful_job_leaves_no_process_running_in_its_group_or_out_of_it() {
    let scene = Lingering::new("local-lingering-ok", &["ok"]);
    let before = scene.dir.snapshot();
    let run = scene.dir.run(&mut scene.command(&[]));
    run.expect_status(0);
    let left = scene.left(&run);
    scene.expect_all_gone(&run, &left);
    assert_eq!(scene.dir.read("build/out0.o"), b"job", "{}", run.report());
    assert_eq!(
        changes(&before, &scene.dir.snapshot()),
        ["+ build/out0.o"],
        "{}",
        run.report()
    );
}

#[test]
fn a_stop_ends_what_a_job_left_in_its_group_or_out_of_it() {
    let scene = Lingering::new("local-lingering-term", &["hold"]);
    let before = scene.dir.watch();
    let child = scene.dir.spawn(&mut scene.command(&[]));
    let pid = child.id();
    let build = scene.dir.join("build");
    wait_until("the job and its leftovers to start", || {
        staging_dirs(&build)
            .iter()
            .any(|s| std::fs::read(s.join("out").join("out0.o")).is_ok_and(|b| b == b"job"))
    });
    send_signal(pid, "TERM");
    let run = child.finish("the stopped runner", Duration::from_secs(10));
    run.expect_status(143)
        .expect_stderr_has("nothing was committed, and the staging was removed");
    let left = scene.left(&run);
    scene.expect_all_gone(&run, &left);
    before.assert_unchanged_with(|| run.report());
}

#[test]
fn another_jobs_failure_ends_what_a_job_left_in_its_group_or_out_of_it() {
    let scene = Lingering::new("local-lingering-fail", &["hold", "fail"]);
    let before = scene.dir.watch();
    let run = scene.dir.run(&mut scene.command(&["--jobs", "2"]));
    run.expect_status(1)
        .expect_stderr_has("jobs[1] (for \"build/out1.o\") failed with exit status 3");
    let left = scene.left(&run);
    scene.expect_all_gone(&run, &left);
    before.assert_unchanged_with(|| run.report());
}

/// SIGKILL leaves the runner no chance to end anything: the job dies with it
/// (`PR_SET_PDEATHSIG`), and its staging stays for the next run to reclaim.
#[test]
fn a_job_dies_with_a_runner_killed_by_sigkill() {
    let dir = TestDir::new("local-sigkill");
    let job = sh_jobs(
        &dir,
        "printf $$ > \"$2\"; exec sleep 60 </dev/null >/dev/null 2>&1",
        1,
        &[],
    );
    let before = dir.snapshot();
    let child = spawn_runner(&dir, &["local", &job]);
    let pid = child.id();
    let mut job_pid = None;
    wait_until("the job to start", || {
        job_pid = staging_dirs(dir.path()).iter().find_map(|s| {
            let text = std::fs::read_to_string(s.join("out").join("out0.o")).ok()?;
            text.parse::<u32>().ok()
        });
        job_pid.is_some()
    });
    let job_pid = job_pid.unwrap();
    send_signal(pid, "KILL");
    let run = child.finish("the killed runner", Duration::from_secs(10));
    run.expect_status(137);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone(job_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !gone(job_pid) {
        // SAFETY: plain kill(2) of the job this test started.
        unsafe { libc::kill(job_pid as i32, libc::SIGKILL) };
        run.fail(&format!(
            "the job ({job_pid}) outlived the runner's SIGKILL"
        ));
    }
    let changed = changes(&before, &dir.snapshot());
    assert!(
        changed.iter().all(|c| c.starts_with("+ .dtlto-staging-")),
        "only the staging may be left: {changed:?}"
    );
}

/// A job has no controlling terminal: it cannot push input into the terminal the
/// runner runs on (TIOCSTI), as into the user's shell. The runner runs on a
/// pseudo-terminal that is its controlling terminal, without CAP_SYS_ADMIN (which
/// lets a process push input into any terminal); the job tries on its stdin.
#[test]
fn a_job_cannot_push_input_into_the_runners_terminal() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let dir = TestDir::new("local-tiocsti");
    let script = "import errno, fcntl, sys, termios\n\
                  try:\n    fcntl.ioctl(0, termios.TIOCSTI, b'#')\n    r = 'injected'\n\
                  except OSError as e:\n    r = 'refused ' + errno.errorcode.get(e.errno, '?')\n\
                  open(sys.argv[2], 'w').write(r)\n";
    let job = local_jobs(&dir, &["python3", "-c", script], 1, &[]);
    // SAFETY: posix_openpt, grantpt, unlockpt, ptsname_r and open on our own
    // descriptors and buffer; each result is checked.
    let (master, terminal) = unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            master >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let master = OwnedFd::from_raw_fd(master);
        assert_eq!(libc::grantpt(master.as_raw_fd()), 0);
        assert_eq!(libc::unlockpt(master.as_raw_fd()), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()),
            0
        );
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        assert!(
            slave >= 0,
            "open the terminal: {}",
            std::io::Error::last_os_error()
        );
        (master, OwnedFd::from_raw_fd(slave))
    };
    // linux/capability.h's number for CAP_SYS_ADMIN.
    const CAP_SYS_ADMIN: libc::c_ulong = 21;
    let root = crate::util::is_root();
    let mut command = crate::util::runner_command();
    command
        .args(["local", &job])
        .stdin(terminal.try_clone().unwrap());
    // SAFETY: setsid, ioctl and prctl are async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0
                || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0
                || (root && libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let before = dir.snapshot();
    let run = dir.run(&mut command);
    run.expect_status(0);
    let result = String::from_utf8(dir.read("out0.o")).unwrap();
    assert!(result.starts_with("refused "), "{result}\n{}", run.report());
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD into a c_int of ours, on our own descriptor.
    let asked = unsafe { libc::ioctl(terminal.as_raw_fd(), libc::FIONREAD, &mut pending) };
    assert_eq!(asked, 0);
    assert_eq!(pending, 0, "input was pushed into the terminal");
    drop(master);
    assert_eq!(changes(&before, &dir.snapshot()), ["+ out0.o"]);
}

/// `--jobs 2` relays whole lines; a job printing 64 MiB without a newline makes the
/// runner hold no more than a line's bound of it (64 KiB), not the whole.
#[test]
fn a_job_printing_no_newline_is_relayed_in_bounded_memory() {
    let dir = TestDir::new("local-relay-bound");
    let measure = |bytes: u64| {
        let job = sh_jobs(
            &dir,
            &format!("head -c {bytes} /dev/zero; printf x > \"$2\""),
            2,
            &[],
        );
        let (run, peak_kib) =
            dir.run_measured(crate::util::runner_command().args(["local", "--jobs", "2", &job]));
        run.expect_status(0);
        assert_eq!(run.stdout.len() as u64, 2 * bytes, "{}", run.command);
        peak_kib
    };
    let small = measure(1024);
    let large = measure(64 << 20);
    assert!(
        large < small + 16 * 1024,
        "relaying 2 x 64 MiB without a newline took {large} KiB at peak, against {small} KiB \
         for 2 x 1 KiB"
    );
}
