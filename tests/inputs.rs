//! Inputs as build systems hand them over: symlink forests (Bazel's sandbox, Nix),
//! FIFOs, devices and directories where files belong, output paths the OS would
//! refuse, job files up to the size limit, and errors a user can act on, through
//! the runner and by hand (`wasmtime run --dir .`, here in-process).

#[cfg(unix)]
use crate::util::changes;
use crate::util::{job_file_json, run_runner, wasmtime_run, Run, TestDir};
use std::time::Duration;

/// Runs the guest by hand on another thread; fails the test if it takes over 20 s
/// (a FIFO that hangs it must fail the test, not the suite).
fn by_hand_promptly(dir: &TestDir, args: &[&str]) -> Run {
    let dir = dir.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = sender.send(wasmtime_run(&dir, &args));
    });
    receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("the guest run by hand still ran after 20 s")
}

/// Runs the runner; fails the test if it takes over 20 s.
fn runner_promptly(dir: &TestDir, args: &[&str]) -> Run {
    crate::util::spawn_runner(dir, args).finish("the runner", Duration::from_secs(20))
}

/// A one-job scene: `job.json` declaring `m0.0.native.o`, and a source `s0`.
fn scene(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write("job.json", job_file_json(1));
    dir.write("s0", "source 0\n");
    dir
}

#[cfg(unix)]
#[test]
fn a_symlink_forest_of_sources_and_job_file_works_through_the_runner() {
    use std::os::unix::fs::symlink;
    // As in Bazel's execroot: the action's directory holds links into the store.
    let root = TestDir::new("inputs-forest");
    root.write("store/job.json", job_file_json(2));
    root.write("store/objects/a.native.o", "native a\n");
    root.write("store/objects/b.native.o", "native b\n");
    std::fs::create_dir(root.join("exec")).unwrap();
    let exec = root.join("exec");
    symlink(root.join("store/objects/a.native.o"), exec.join("a.o")).unwrap();
    symlink("../store/objects/b.native.o", exec.join("b.o")).unwrap();
    symlink("../store/job.json", exec.join("job.json")).unwrap();
    let before = root.snapshot();
    let run = root.run(
        crate::util::runner_command()
            .args(["a.o", "b.o", "job.json"])
            .current_dir(&exec),
    );
    run.expect_status(0);
    assert_eq!(
        changes(&before, &root.snapshot()),
        ["+ exec/m0.0.native.o", "+ exec/m1.1.native.o"],
        "{}",
        run.report()
    );
    assert_eq!(root.read("exec/m0.0.native.o"), b"native a\n");
    assert_eq!(root.read("exec/m1.1.native.o"), b"native b\n");
}

#[cfg(unix)]
#[test]
fn an_output_that_is_the_target_of_a_linked_source_is_refused() {
    let root = TestDir::new("inputs-link-target");
    root.write("store/a.native.o", "native a\n");
    std::os::unix::fs::symlink("store/a.native.o", root.join("a.o")).unwrap();
    root.write(
        "job.json",
        job_file_json(1).replace("m0.0.native.o", "store/a.native.o"),
    );
    let before = root.watch();
    run_runner(&root, &["a.o", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: job.json: jobs[0].outputs[0] \"store/a.native.o\" is also \
             source 1 (for jobs[0]); a distributor must not overwrite what the link reads",
        );
    before.assert_unchanged();
}

#[cfg(unix)]
#[test]
fn by_hand_a_link_out_of_the_sandbox_is_named_with_its_target_and_the_dir_that_reaches_it() {
    let root = TestDir::new("inputs-link-by-hand");
    root.write("store/b.native.o", "native b\n");
    let exec = TestDir::new("inputs-link-by-hand-exec");
    exec.write("job.json", job_file_json(1));
    // Both directories are siblings: a relative link climbs out of `exec` into `root`.
    let root_name = root
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let target = format!("../{root_name}/store/b.native.o");
    std::os::unix::fs::symlink(&target, exec.join("b.o")).unwrap();
    std::os::unix::fs::symlink(root.join("store/b.native.o"), exec.join("abs.o")).unwrap();
    let before = exec.watch();
    wasmtime_run(&exec, &["b.o", "job.json"])
        .expect_status(1)
        .expect_stderr_has(&format!(
            "cannot open source 1 (for jobs[0]) \"b.o\": it is a symbolic link to \"{target}\", and a \
             WASI host follows a link only within the directory it was given (preopened: \".\").\n  \
             Name the target itself and give the sandbox its directory, e.g. `wasmtime run --dir . \
             --dir ../{root_name}/store dtlto-mock.wasm ... {target} ...`"
        ));
    // The host does not tell a guest where a link to an absolute path leads.
    wasmtime_run(&exec, &["abs.o", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open source 1 (for jobs[0]) \"abs.o\": it is a symbolic link that leads out of \
             the directories the sandbox was given (preopened: \".\"), to an absolute path",
        );
    before.assert_unchanged();
    // Doing what the first message says works.
    let store = root.join("store");
    let target = store.join("b.native.o").to_string_lossy().into_owned();
    crate::util::guest_in_process::wasmtime_run_with_dirs(
        &exec,
        &[&target, "job.json"],
        &[(exec.path(), "."), (&store, &store.to_string_lossy())],
    )
    .expect_status(0);
    assert_eq!(exec.read("m0.0.native.o"), b"native b\n");
}

#[cfg(unix)]
#[test]
fn a_fifo_as_the_job_file_or_a_source_is_refused_at_once() {
    let dir = scene("inputs-fifo");
    crate::util::make_fifo(&dir.join("pipe"));
    let before = dir.watch();
    runner_promptly(&dir, &["s0", "pipe"])
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: cannot open the job file \"pipe\": it is a FIFO (named pipe), not a regular file",
        );
    runner_promptly(&dir, &["pipe", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: job.json: cannot open source 1 (for jobs[0]) \"pipe\": it is a FIFO (named pipe), not a regular file",
        );
    runner_promptly(&dir, &["validate", "pipe"])
        .expect_status(1)
        .expect_stderr_has("cannot open the job file \"pipe\": it is a FIFO (named pipe)");
    // WASI reports a FIFO as a file of unknown type, so by hand it is named less exactly.
    by_hand_promptly(&dir, &["s0", "pipe"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open the job file \"pipe\": it is a FIFO, socket or device, not a regular file",
        );
    by_hand_promptly(&dir, &["pipe", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open source 1 (for jobs[0]) \"pipe\": it is a FIFO, socket or device",
        );
    before.assert_unchanged();
}

#[cfg(unix)]
#[test]
fn a_device_or_a_directory_as_the_job_file_is_refused_before_reading() {
    let dir = scene("inputs-device");
    std::fs::create_dir(dir.join("jobs.d")).unwrap();
    let before = dir.watch();
    for (job_file, kind) in [
        ("/dev/zero", "a character device"),
        ("jobs.d", "a directory"),
    ] {
        runner_promptly(&dir, &["s0", job_file])
            .expect_status(1)
            .expect_stderr_has(&format!(
                "dtlto-runner: error: cannot open the job file \"{job_file}\": it is {kind}, not a regular file"
            ));
    }
    by_hand_promptly(&dir, &["s0", "jobs.d"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open the job file \"jobs.d\": it is a directory, not a regular file",
        );
    before.assert_unchanged();
}

#[test]
fn output_paths_that_name_no_file_are_refused_with_their_location() {
    let dir = scene("inputs-output-paths");
    dir.write("keep.txt", "keep me\n");
    std::fs::create_dir(dir.join("adir")).unwrap();
    for (output, runner_says, by_hand_says) in [
        (
            "keep.txt/",
            "it ends in a separator, so it names a directory, not a file",
            "it ends in a separator",
        ),
        (
            "keep.txt/.",
            "it ends in `.` or `..`, so it names a directory, not a file",
            "it ends in `.` or `..`",
        ),
        (
            "newdir/.",
            "it ends in `.` or `..`, so it names a directory, not a file",
            "it ends in `.` or `..`",
        ),
        ("adir", "a directory of that name exists", "is a directory"),
    ] {
        dir.write(
            "job.json",
            job_file_json(1).replace("m0.0.native.o", output),
        );
        let before = dir.watch();
        run_runner(&dir, &["s0", "job.json"])
            .expect_status(1)
            .expect_stderr_has(&format!(
                "dtlto-runner: error: job.json: cannot stage jobs[0].outputs[0] \"{output}\": {runner_says}"
            ));
        let by_hand = wasmtime_run(&dir, &["s0", "job.json"]);
        by_hand.expect_status(1).expect_stderr_has(by_hand_says);
        assert!(
            by_hand.stderr().contains("jobs[0].outputs[0]"),
            "{}",
            by_hand.report()
        );
        before.assert_unchanged_with(|| output.to_string());
        assert_eq!(dir.read("keep.txt"), b"keep me\n");
    }
}

/// A valid job file of `size` bytes: one job, then spaces.
fn padded_job_file(dir: &TestDir, size: usize) {
    use std::io::Write;
    let text = job_file_json(1);
    let mut file = std::fs::File::create(dir.join("job.json")).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let spaces = vec![b' '; 1 << 20];
    let mut left = size - text.len();
    while left > 0 {
        let n = left.min(spaces.len());
        file.write_all(&spaces[..n]).unwrap();
        left -= n;
    }
}

#[test]
fn a_500_mib_job_file_works_in_both_modes_through_the_runner_and_by_hand() {
    let dir = scene("inputs-big");
    padded_job_file(&dir, 500 << 20);
    let validate = run_runner(&dir, &["validate", "job.json"]);
    validate.expect_status(0);
    assert!(
        validate
            .stdout()
            .starts_with("distributor_args=[]\n{\n    \"common\""),
        "{}",
        validate.report()
    );
    let by_hand = wasmtime_run(&dir, &["validate", "job.json"]);
    assert_eq!(by_hand.stdout(), validate.stdout(), "{}", by_hand.report());
    wasmtime_run(&dir, &["s0", "job.json"]).expect_status(0);
    std::fs::remove_file(dir.join("m0.0.native.o")).unwrap();
    run_runner(&dir, &["s0", "job.json"]).expect_status(0);
    assert_eq!(dir.read("m0.0.native.o"), b"source 0\n");
}

#[test]
fn a_job_file_over_1_gib_is_refused_before_it_is_read() {
    let dir = scene("inputs-too-big");
    // Sparse: nothing is written, and reading it would take seconds.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("job.json"))
        .unwrap();
    file.set_len((1 << 30) + 1).unwrap();
    drop(file);
    let before = dir.watch();
    let says = "cannot open the job file \"job.json\": it holds 1073741825 bytes; a job file may hold at most 1073741824 (1 GiB)";
    for mode in ["mock", "validate"] {
        runner_promptly(&dir, &[mode, "s0", "job.json"])
            .expect_status(1)
            .expect_stderr_has(&format!("dtlto-runner: error: {says}"));
    }
    by_hand_promptly(&dir, &["s0", "job.json"])
        .expect_status(1)
        .expect_stderr_has(&says.replace("cannot open", "cannot read"));
    before.assert_unchanged();
}

#[test]
fn only_directories_that_hold_what_the_run_needs_are_preopened() {
    let dir = scene("inputs-least");
    let modules = TestDir::new("inputs-least-module");
    let module = modules.write(
        "m.wasm",
        crate::util::hostile::guest(&[crate::util::hostile::Step::Exit(0)]),
    );
    let module = module.to_string_lossy().into_owned();
    let read_only = |run: &Run| -> Vec<String> {
        run.stderr()
            .lines()
            .filter(|l| l.starts_with("dtlto-runner: read-only"))
            .map(str::to_owned)
            .collect()
    };
    let job_dir = format!(
        "dtlto-runner: read-only  /dtlto/in0 = {}",
        dir.path().display()
    );
    // A path that does not exist opens nothing, least of all `/`.
    let run = run_runner(
        &dir,
        &[
            "--verbose",
            "--module",
            &module,
            "/no-such-file",
            "s0",
            "job.json",
        ],
    );
    run.expect_status(0);
    assert_eq!(
        read_only(&run),
        std::slice::from_ref(&job_dir),
        "{}",
        run.report()
    );
    // validate prints its arguments and opens none of them.
    let run = run_runner(
        &dir,
        &["--verbose", "validate", "/etc/hostname", "/", "job.json"],
    );
    run.expect_status(0);
    assert_eq!(read_only(&run), [job_dir], "{}", run.report());
}

#[test]
fn errors_escape_control_characters_and_name_os_errors_in_words() {
    let dir = scene("inputs-words");
    let output = "no\u{1b}[31mdir/x\n.o";
    dir.write(
        "job.json",
        job_file_json(1).replace(
            "m0.0.native.o",
            &output.replace('\n', "\\n").replace('\u{1b}', "\\u001b"),
        ),
    );
    let run = run_runner(&dir, &["s0", "job.json"]);
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: job.json: cannot stage jobs[0].outputs[0] \"no\\u{1b}[31mdir/x\\n.o\": its directory does not exist",
    );
    assert!(
        !run.stderr().contains('\u{1b}'),
        "a raw escape reached the terminal: {}",
        run.report()
    );
    let by_hand = wasmtime_run(&dir, &["missing.o", "job.json"]);
    by_hand.expect_status(1).expect_stderr_has(
        "cannot open source 1 (for jobs[0]) \"missing.o\": no such file or directory",
    );
    assert!(
        !by_hand.stderr().contains("os error"),
        "{}",
        by_hand.report()
    );
}

#[cfg(unix)]
#[test]
fn an_output_that_a_dangling_input_link_leads_to_is_refused() {
    // The input is a link to a file that does not exist yet; writing the output would
    // make the input read as the output.
    let dir = scene("inputs-dangling");
    std::fs::create_dir(dir.join("o")).unwrap();
    std::os::unix::fs::symlink("o/x.o", dir.join("dangling.o")).unwrap();
    let job = job_file_json(1)
        .replace(r#""inputs":["m0.o","#, r#""inputs":["dangling.o","#)
        .replace("m0.0.native.o", "o/x.o");
    dir.write("job.json", job);
    let before = dir.watch();
    run_runner(&dir, &["s0", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: job.json: jobs[0].outputs[0] \"o/x.o\" is also jobs[0].inputs[0]",
        );
    before.assert_unchanged();
}

#[cfg(unix)]
#[test]
fn control_characters_in_paths_reach_no_message_raw() {
    let dir = scene("inputs-esc");
    let evil = "s\u{1b}[2J\u{7}\nforged: line";
    dir.write(evil, "source 0\n");
    let job = "j\u{1b}]0;title\u{7}.json";
    dir.write(job, job_file_json(2));
    let raw = |run: &Run| {
        let stderr = run.stderr();
        assert!(
            !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
            "a control character reached stderr raw: {}",
            run.report()
        );
        assert!(!stderr.contains("\nforged"), "{}", run.report());
    };
    // --verbose's plan: the map, the preopens, the outputs.
    let run = run_runner(&dir, &["--verbose", evil, job]);
    run.expect_status(1);
    raw(&run);
    // The guest's "has 2 jobs but only 1 source" names the job file.
    run.expect_stderr_has("\"j\\u{1b}]0;title\\u{7}.json\" has 2 jobs but only 1 source");
    // A --module path (the source, which is no module).
    let run = run_runner(&dir, &["--module", evil, "s0", job]);
    run.expect_status(1).expect_stderr_has(
        "error: \"s\\u{1b}[2J\\u{7}\\nforged: line\" is not a usable wasm module",
    );
    raw(&run);
}

#[cfg(unix)]
#[test]
fn an_output_at_the_end_of_a_dangling_chain_of_links_is_refused() {
    // m0.o -> hop1.o -> hop2.o -> m0.0.native.o, which does not exist yet: writing the
    // output would make the input read as the output, whatever the number of hops.
    let dir = scene("inputs-chain");
    std::os::unix::fs::symlink("hop1.o", dir.join("m0.o")).unwrap();
    std::os::unix::fs::symlink("hop2.o", dir.join("hop1.o")).unwrap();
    std::os::unix::fs::symlink("m0.0.native.o", dir.join("hop2.o")).unwrap();
    let before = dir.watch();
    run_runner(&dir, &["s0", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: job.json: jobs[0].outputs[0] \"m0.0.native.o\" is also \
             jobs[0].inputs[0]",
        );
    before.assert_unchanged();
    // A loop is no conflict, and the OS's reason where it must be read.
    std::fs::remove_file(dir.join("hop2.o")).unwrap();
    std::os::unix::fs::symlink("m0.o", dir.join("hop2.o")).unwrap();
    run_runner(&dir, &["m0.o", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open source 1 (for jobs[0]) \"m0.o\": it is a symbolic link that leads \
             nowhere (too many levels of symbolic links)",
        );
}

#[cfg(unix)]
#[test]
#[ignore = "needs root, to run as another user (tests/all.sh runs it with --include-ignored)"]
fn an_input_in_a_directory_the_user_may_not_enter_is_reported_as_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    assert!(crate::util::is_root(), "run as root");
    let dir = scene("inputs-denied");
    dir.write("private/job.json", job_file_json(1));
    dir.write("private/s0", "source 0\n");
    let mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    // Everything open to all but `private`, root's own (0700). The directories up to
    // the temporary directory gain read and search for all, and keep what else they
    // have (the temporary directory's sticky bit above all).
    let mut up = dir.path().to_path_buf();
    while up.parent().is_some() {
        if up.starts_with(std::env::temp_dir()) {
            let had = std::fs::metadata(&up).unwrap().permissions().mode() & 0o7777;
            mode(&up, had | 0o755);
        }
        up.pop();
    }
    mode(&dir.join("private"), 0o700);
    let before = dir.watch();
    let (_bin, runner) = crate::util::runner_for_every_user();
    let as_nobody = |args: &[&str]| {
        let mut command = crate::util::target_command(&runner);
        command
            .args(args)
            .current_dir(dir.path())
            .uid(65534)
            .gid(65534);
        dir.run(&mut command)
    };
    as_nobody(&["private/s0", "job.json"])
        .expect_status(1)
        .expect_stderr_has("cannot open source 1 (for jobs[0]) \"private/s0\": permission denied");
    as_nobody(&["s0", "private/job.json"])
        .expect_status(1)
        .expect_stderr_has("cannot open the job file \"private/job.json\": permission denied");
    mode(&dir.join("private"), 0o755);
    before.assert_unchanged();
}
