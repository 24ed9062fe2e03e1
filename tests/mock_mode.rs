//! mock mode: copies `src_i` to `jobs[i].outputs[0]`, byte for byte, or writes nothing.
//! Each scenario runs the guest as `wasmtime run --dir .` would and through the runner.

use crate::util::{job_file_json, run_runner, wasmtime_run, Run, TestDir};

/// Which host runs the guest.
#[derive(Clone, Copy, Debug)]
enum Host {
    Wasmtime,
    Runner,
}

const HOSTS: [Host; 2] = [Host::Wasmtime, Host::Runner];

fn run(host: Host, dir: &TestDir, args: &[&str]) -> Run {
    match host {
        Host::Wasmtime => wasmtime_run(dir, args),
        Host::Runner => run_runner(dir, args),
    }
}

/// Distinct binary content, `len` bytes, that crosses copy-block boundaries.
fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn each_source_lands_byte_identical_at_its_jobs_output() {
    for host in HOSTS {
        let dir = TestDir::new("copies");
        dir.write("job.json", job_file_json(3));
        let sources = [content(1, 0), content(2, 3 << 20 | 17), content(3, 4096)];
        for (i, bytes) in sources.iter().enumerate() {
            dir.write(&format!("s{i}.native.o"), bytes);
        }
        run(
            host,
            &dir,
            &["s0.native.o", "s1.native.o", "s2.native.o", "job.json"],
        )
        .expect_status(0);
        for (i, bytes) in sources.iter().enumerate() {
            assert!(
                dir.read(&format!("m{i}.{i}.native.o")) == *bytes,
                "{host:?}: job {i}"
            );
        }
        let leftovers: Vec<String> = dir
            .snapshot()
            .into_keys()
            .filter(|name| name.contains("partial") || name.contains("staging"))
            .collect();
        assert!(leftovers.is_empty(), "{host:?} left {leftovers:?}");
    }
}

#[test]
fn extra_sources_are_ignored_as_mock_py_ignores_them() {
    for host in HOSTS {
        let dir = TestDir::new("extra-sources");
        dir.write("job.json", job_file_json(1));
        dir.write("a", "A");
        dir.write("b", "B");
        run(host, &dir, &["mock", "a", "b", "job.json"]).expect_status(0);
        assert_eq!(dir.read("m0.0.native.o"), b"A");
    }
}

#[test]
fn fewer_sources_than_jobs_says_how_many_and_writes_nothing() {
    for host in HOSTS {
        let dir = TestDir::new("few-sources");
        dir.write("job.json", job_file_json(3));
        dir.write("a", "A");
        let before = dir.snapshot();
        run(host, &dir, &["a", "job.json"])
            .expect_status(1)
            .expect_stderr_has(
                "job.json has 3 jobs but only 1 source was given; mock mode needs one source \
                 per job, in job order: dtlto-mock <src_1> ... <src_3> job.json",
            );
        assert_eq!(dir.snapshot(), before, "{host:?}");
    }
}

#[test]
fn an_invalid_document_reports_every_violation_and_writes_nothing() {
    for host in HOSTS {
        let dir = TestDir::new("invalid");
        let job_file = job_file_json(4)
            .replace(r#""outputs":["m3.3.native.o"]"#, r#""outputs":[]"#)
            .replace(r#""linker_output":"app""#, r#""linker_output":7"#);
        dir.write("job.json", job_file);
        for i in 0..4 {
            dir.write(&format!("s{i}"), "x");
        }
        let before = dir.snapshot();
        let run = run(host, &dir, &["s0", "s1", "s2", "s3", "job.json"]);
        run.expect_status(1)
            .expect_stderr_has("job.json is not a valid DTLTO job file (2 problems):")
            .expect_stderr_has("job.json: common.linker_output: expected a string, found a number")
            .expect_stderr_has("job.json: jobs[3].outputs: expected at least 1 path, found 0");
        assert_eq!(dir.snapshot(), before, "{host:?}");
    }
}

#[test]
fn a_missing_source_is_named_and_no_output_is_written() {
    for host in HOSTS {
        let dir = TestDir::new("missing-source");
        dir.write("job.json", job_file_json(2));
        dir.write("s0", "first");
        let before = dir.snapshot();
        run(host, &dir, &["s0", "nope.native.o", "job.json"])
            .expect_status(1)
            .expect_stderr_has(
                "cannot open source 2 (for jobs[1]) \"nope.native.o\": no such file or directory",
            );
        assert_eq!(
            dir.snapshot(),
            before,
            "{host:?}: job 0's output must not be written"
        );
    }
}

#[test]
fn a_failed_run_leaves_existing_outputs_untouched() {
    // The second output's directory does not exist, so the run fails after the first
    // copy; the first output keeps its old content and no partial file remains.
    let dir = TestDir::new("rollback");
    let job_file = job_file_json(2).replace(
        r#""outputs":["m1.1.native.o"]"#,
        r#""outputs":["no-such-dir/m1.o"]"#,
    );
    dir.write("job.json", job_file);
    dir.write("s0", "new");
    dir.write("s1", "new");
    dir.write("m0.0.native.o", "old");
    let before = dir.snapshot();
    wasmtime_run(&dir, &["s0", "s1", "job.json"])
        .expect_status(1)
        .expect_stderr_has("cannot open jobs[1].outputs[0] \"no-such-dir/m1.o\"");
    assert_eq!(dir.snapshot(), before);
    run_runner(&dir, &["s0", "s1", "job.json"])
        .expect_status(1)
        .expect_stderr_has(
            "cannot stage jobs[1].outputs[0] \"no-such-dir/m1.o\": its directory does not exist",
        );
    assert_eq!(dir.snapshot(), before);
}

#[test]
fn malformed_json_is_reported_with_line_and_column() {
    for host in HOSTS {
        let dir = TestDir::new("malformed");
        dir.write("job.json", "{\"common\": {},\n  \"jobs\": [1,]}");
        run(host, &dir, &["job.json"])
            .expect_status(1)
            .expect_stderr_has("job.json:2:14: not valid JSON: expected a value");
    }
}

#[cfg(unix)]
#[test]
fn a_path_outside_every_preopen_explains_the_fix() {
    let dir = TestDir::new("reach");
    let outside = TestDir::new("reach-outside");
    let source = outside.write("far.native.o", "x");
    dir.write("job.json", job_file_json(1));
    let source = source.to_string_lossy().into_owned();
    let run = wasmtime_run(&dir, &[&source, "job.json"]);
    run.expect_status(1)
        .expect_stderr_has(&format!(
            "cannot open source 1 (for jobs[0]) \"{source}\": no preopened directory holds it (preopened: \".\")"
        ))
        .expect_stderr_has(&format!("wasmtime run --dir {}", outside.path().display()));
    // The runner preopens the source's directory itself.
    run_runner(&dir, &[&source, "job.json"]).expect_status(0);
    assert_eq!(dir.read("m0.0.native.o"), b"x");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let dir = TestDir::new("usage");
    wasmtime_run(&dir, &[])
        .expect_status(2)
        .expect_stderr_has("dtlto-mock: error: the following required arguments were not provided");
    wasmtime_run(&dir, &["validate"]).expect_status(2);
    let help = wasmtime_run(&dir, &["--help"]);
    help.expect_status(0);
    for text in [
        "-fthinlto-distributor=RUNNER",
        "--thinlto-distributor-arg=validate",
        "-dtlto-distributor-arg=a.o,b.o",
        "wasmtime run --dir . dtlto-mock.wasm validate --da1=10",
        "Exit status: 0 success; 1 invalid job file or failed job; 2 usage error.",
    ] {
        assert!(
            help.stdout().contains(text),
            "help lacks {text:?}\n{}",
            help.report()
        );
    }
}

#[test]
fn the_runner_called_dtlto_validate_validates() {
    let dir = TestDir::new("by-name");
    let validate = dir.join(&format!("dtlto-validate{}", std::env::consts::EXE_SUFFIX));
    std::fs::copy(crate::util::runner_exe(), &validate).expect("copy the runner");
    dir.write("job.json", job_file_json(1));
    let run = dir.run(crate::util::target_command(&validate).args(["--da=1", "job.json"]));
    run.expect_status(0);
    assert!(
        run.stdout().starts_with("distributor_args=['--da=1']\n{\n"),
        "{}",
        run.report()
    );
}

#[cfg(windows)]
#[test]
fn a_windows_path_without_the_runner_explains_the_fix() {
    let dir = TestDir::new("reach-windows");
    let outside = TestDir::new("reach-windows-outside");
    let source = outside
        .write("far.native.o", "x")
        .to_string_lossy()
        .into_owned();
    dir.write("job.json", job_file_json(1));
    wasmtime_run(&dir, &[&source, "job.json"])
        .expect_status(1)
        .expect_stderr_has(&format!(
            "cannot open source 1 (for jobs[0]) \"{source}\": a Windows path"
        ))
        .expect_stderr_has("run it through dtlto-runner");
    run_runner(&dir, &[&source, "job.json"]).expect_status(0);
}
