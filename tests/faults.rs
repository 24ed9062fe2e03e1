//! Fault injection in mock mode, where a real linker cannot show it: declared extra
//! outputs, an undeclared output without the runner's sandbox, exit statuses, and
//! bad `--fault=` options. (tests/real_llvm.rs shows lld's reaction to each fault.)

use crate::util::{run_runner, wasmtime_run, TestDir};

/// One job whose outputs are `o.native.o` and the declared extra `o.dwo`.
fn scene(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write(
        "job.json",
        r#"{"common":{"linker_output":"app","args":["clang"],"inputs":[]},"jobs":[{"args":[],"inputs":["m.o","m.bc"],"outputs":["o.native.o","o.dwo"]}]}"#,
    );
    dir.write("src.native.o", "native code");
    dir
}

#[test]
fn extra_output_writes_the_declared_extras_under_any_host() {
    for runner in [false, true] {
        let dir = scene("fault-extra");
        let args = ["--fault=extra-output", "src.native.o", "job.json"];
        let run = if runner {
            run_runner(&dir, &args)
        } else {
            wasmtime_run(&dir, &args)
        };
        run.expect_status(0).expect_stderr_has(
            "dtlto-mock: fault injected: --fault=extra-output at jobs[0].outputs[1] \"o.dwo\"",
        );
        assert_eq!(dir.read("o.native.o"), b"native code");
        assert_eq!(
            dir.read("o.dwo"),
            b"dtlto-mock --fault=extra-output: jobs[0].outputs[1]\n"
        );
    }
}

#[test]
fn without_a_sandbox_an_undeclared_output_lands_beside_the_declared_one() {
    let dir = scene("fault-undeclared");
    wasmtime_run(
        &dir,
        &["--fault=undeclared-output", "src.native.o", "job.json"],
    )
    .expect_status(0)
    .expect_stderr_has("fault injected: --fault=undeclared-output at \"o.native.o.undeclared\"");
    assert_eq!(dir.read("o.native.o.undeclared"), b"undeclared\n");
    // The runner's sandbox refuses the same run and commits nothing.
    let dir = scene("fault-undeclared-runner");
    let before = dir.snapshot();
    run_runner(
        &dir,
        &["--fault=undeclared-output", "src.native.o", "job.json"],
    )
    .expect_status(1)
    .expect_stderr_has(&format!(
        "\n  \"{}\"",
        dir.join("o.native.o.undeclared").display()
    ));
    assert_eq!(dir.snapshot(), before);
}

#[test]
fn exit_after_keeps_the_work_without_a_sandbox_and_loses_it_under_the_runner() {
    let dir = scene("fault-exit-after");
    let run = wasmtime_run(&dir, &["--fault=exit-after=4", "src.native.o", "job.json"]);
    run.expect_status(4).expect_stderr_has(
        "dtlto-mock: fault injected: --fault=exit-after=4 at the end, after the work",
    );
    assert!(
        !run.stderr().contains("error:"),
        "an injected exit is not an error: {}",
        run.report()
    );
    assert_eq!(dir.read("o.native.o"), b"native code");
    let dir = scene("fault-exit-after-runner");
    run_runner(&dir, &["--fault=exit-after=4", "src.native.o", "job.json"]).expect_status(4);
    assert!(!dir.exists("o.native.o"));
}

#[test]
fn each_fault_says_which_job_it_hit() {
    let dir = TestDir::new("fault-selection");
    dir.write("job.json", crate::util::job_file_json(3));
    for i in 0..3 {
        dir.write(&format!("s{i}"), format!("source {i}"));
    }
    let run = wasmtime_run(
        &dir,
        &[
            "--fault=skip@0,2",
            "--fault=delay=1@name:m1.*",
            "s0",
            "s1",
            "s2",
            "job.json",
        ],
    );
    run.expect_status(0);
    let lines: Vec<String> = run.stderr().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "dtlto-mock: fault injected: --fault=skip@0,2 at jobs[0].outputs[0] \"m0.0.native.o\"",
            "dtlto-mock: fault injected: --fault=delay=1@name:m1.* at jobs[1].outputs[0] \"m1.1.native.o\"",
            "dtlto-mock: fault injected: --fault=skip@0,2 at jobs[2].outputs[0] \"m2.2.native.o\"",
        ]
    );
    assert!(!dir.exists("m0.0.native.o") && !dir.exists("m2.2.native.o"));
    assert_eq!(dir.read("m1.1.native.o"), b"source 1");
}

#[test]
fn a_bad_fault_is_a_usage_error_that_shows_the_syntax() {
    let dir = scene("fault-usage");
    let before = dir.snapshot();
    wasmtime_run(&dir, &["--fault=explode", "src.native.o", "job.json"])
        .expect_status(2)
        .expect_stderr_has("--fault=explode: unknown fault")
        .expect_stderr_has("--fault=KIND[=VALUE][@JOBS]");
    assert_eq!(dir.snapshot(), before);
}
