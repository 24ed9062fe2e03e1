//! The runner's own command line: its options, its built-in example, its refusals.

use crate::util::{run_runner, Run, TestDir};
use std::process::Command;

fn runner() -> Command {
    crate::util::runner_command()
}

#[test]
fn no_arguments_run_the_built_in_example_and_report_it() {
    let dir = TestDir::new("cli-example");
    let run = run_runner(&dir, &[]);
    run.expect_status(0);
    let stdout = run.stdout();
    for text in [
        "dtlto-runner example, in ",
        "2 jobs, as a linker would",
        "jobs[0].outputs[0] main.1.",
        "(30 bytes, identical)",
        "jobs[1].outputs[0] helper.2.",
        "nothing else was written",
    ] {
        assert!(
            stdout.contains(text),
            "report lacks {text:?}\n{}",
            run.report()
        );
    }
}

#[test]
fn help_lists_the_runner_options_and_how_a_linker_calls_it() {
    let dir = TestDir::new("cli-help");
    let run = run_runner(&dir, &["--help"]);
    run.expect_status(0);
    let stdout = run.stdout();
    for text in [
        "--module <FILE.wasm>",
        "--verbose",
        "-fthinlto-distributor=dtlto-runner",
    ] {
        assert!(
            stdout.contains(text),
            "help lacks {text:?}\n{}",
            run.report()
        );
    }
}

#[test]
fn options_after_the_first_distributor_argument_go_to_the_distributor() {
    // `--verbose` after the mode word is a distributor argument, printed by validate.
    let dir = TestDir::new("cli-distributor-options");
    dir.write(
        "j.json",
        r#"{"common":{"linker_output":"a","args":["c"],"inputs":[]},"jobs":[]}"#,
    );
    let run = run_runner(&dir, &["validate", "--verbose", "--module=x", "j.json"]);
    run.expect_status(0);
    assert!(
        run.stdout()
            .starts_with("distributor_args=['--verbose', '--module=x']\n"),
        "{}",
        run.report()
    );
    assert!(
        run.stderr.is_empty(),
        "the runner printed on its own\n{}",
        run.report()
    );
}

/// A scene with one valid job (`s0` -> `m0.0.native.o`), for the limit tests.
fn limit_scene(name: &str) -> TestDir {
    let dir = TestDir::new(name);
    dir.write("job.json", crate::util::job_file_json(1));
    dir.write("s0", "source\n");
    dir
}

fn run_in(dir: &TestDir, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = runner();
    command.args(args).current_dir(dir.path());
    for (key, value) in env {
        command.env(key, value);
    }
    dir.run(&mut command)
}

#[test]
fn limits_take_any_representable_number_or_say_why_and_where_the_value_came_from() {
    let dir = limit_scene("cli-limits");
    let job = ["s0", "job.json"];
    // A timeout beyond what a clock can count waits as long as it can.
    for seconds in ["1e20", "1e300", "inf", "0.5e1"] {
        run_in(&dir, &[], &["--timeout", seconds, "s0", "job.json"]).expect_status(0);
        run_in(&dir, &[("DTLTO_RUNNER_TIMEOUT", seconds)], &job).expect_status(0);
    }
    for (value, reason) in [
        ("0", "a timeout must be more than 0 seconds"),
        ("-3", "a timeout must be more than 0 seconds"),
        ("NaN", "not a number of seconds"),
        ("ten", "not a number of seconds"),
    ] {
        run_in(&dir, &[], &["--timeout", value, "s0", "job.json"])
            .expect_status(2)
            .expect_stderr_has("--timeout <SECONDS>")
            .expect_stderr_has(reason);
        let run = run_in(&dir, &[("DTLTO_RUNNER_TIMEOUT", value)], &job);
        run.expect_status(2).expect_stderr_has(&format!(
            "invalid value \"{value}\" of the environment variable DTLTO_RUNNER_TIMEOUT \
             (the default of --timeout): {reason}"
        ));
    }
    for (value, reason) in [
        (
            "18446744073709551616",
            "more than 18446744073709551615, the largest limit",
        ),
        ("-1", "not a whole number (digits only)"),
        ("1e6", "not a whole number (digits only)"),
    ] {
        run_in(&dir, &[], &["--max-output-bytes", value, "s0", "job.json"])
            .expect_status(2)
            .expect_stderr_has("--max-output-bytes <N>")
            .expect_stderr_has(reason);
        for variable in ["DTLTO_RUNNER_MAX_OUTPUT_BYTES", "DTLTO_RUNNER_MAX_ENTRIES"] {
            let option = variable
                .trim_start_matches("DTLTO_RUNNER_")
                .to_lowercase()
                .replace('_', "-");
            run_in(&dir, &[(variable, value)], &job)
                .expect_status(2)
                .expect_stderr_has(&format!(
                    "invalid value \"{value}\" of the environment variable {variable} \
                     (the default of --{option}): {reason}"
                ));
        }
    }
    run_in(
        &dir,
        &[],
        &[
            "--max-output-bytes",
            "18446744073709551615",
            "s0",
            "job.json",
        ],
    )
    .expect_status(0);
    // An empty variable is unset; the option wins over the variable.
    let empty = [
        ("DTLTO_RUNNER_TIMEOUT", ""),
        ("DTLTO_RUNNER_MAX_OUTPUT_BYTES", ""),
        ("DTLTO_RUNNER_MAX_ENTRIES", ""),
    ];
    run_in(&dir, &empty, &job).expect_status(0);
    run_in(
        &dir,
        &[("DTLTO_RUNNER_MAX_OUTPUT_BYTES", "junk")],
        &["--max-output-bytes", "100", "s0", "job.json"],
    )
    .expect_status(0);
    assert_eq!(dir.read("m0.0.native.o"), b"source\n");
}

#[test]
fn a_mode_word_with_help_or_version_answers_and_alone_is_a_usage_error() {
    let dir = limit_scene("cli-mode-help");
    for mode in ["mock", "validate"] {
        for flag in ["--help", "-h"] {
            let run = run_in(&dir, &[], &[mode, flag]);
            run.expect_status(0);
            assert!(run.stdout().contains("Usage:"), "{}", run.report());
        }
        for flag in ["--version", "-V"] {
            let run = run_in(&dir, &[], &[mode, flag]);
            run.expect_status(0);
            assert!(run.stdout().starts_with("dtlto-mock "), "{}", run.report());
        }
        let run = run_in(&dir, &[], &[mode]);
        run.expect_status(2);
        assert!(!run.stderr().contains("cannot open"), "{}", run.report());
    }
    // A job file named like an option is still a job file when it is not alone.
    run_in(&dir, &[], &["s0", "job.json"]).expect_status(0);
}

#[test]
fn local_mode_refuses_the_guests_options_and_their_variables_instead_of_ignoring_them() {
    let dir = limit_scene("cli-local-options");
    let before = dir.watch();
    for (options, env, named) in [
        (
            &["--max-output-bytes", "1000"][..],
            None,
            "--max-output-bytes",
        ),
        (&["--max-entries", "5"][..], None, "--max-entries"),
        (&["--read", "."][..], None, "--read"),
        (&["--module", "x.wasm"][..], None, "--module"),
        (
            &[][..],
            Some(("DTLTO_RUNNER_MAX_OUTPUT_BYTES", "1000")),
            "the environment variable DTLTO_RUNNER_MAX_OUTPUT_BYTES",
        ),
    ] {
        let mut args: Vec<&str> = options.to_vec();
        args.extend(["local", "job.json"]);
        let env: Vec<(&str, &str)> = env.into_iter().collect();
        run_in(&dir, &env, &args)
            .expect_status(2)
            .expect_stderr_has(&format!(
                "dtlto-runner: error: {named} applies to the guest, which local mode does not run"
            ))
            .expect_stderr_has("usage: dtlto-runner [--verbose] [--timeout SECONDS] local");
    }
    before.assert_unchanged();
}

#[test]
fn local_mode_with_options_and_no_job_file_is_a_usage_error_and_help_is_help() {
    let dir = limit_scene("cli-local-usage");
    let before = dir.watch();
    for args in [
        &["local", "--hermetic"][..],
        &["local", "--verbose"][..],
        &["local", "--jobs=2"][..],
        &["local"][..],
    ] {
        run_in(&dir, &[], args)
            .expect_status(2)
            .expect_stderr_has("the following required arguments were not provided")
            .expect_stderr_has("<JOB_FILE>")
            .expect_stderr_has("Usage: dtlto-runner [--verbose] [--timeout SECONDS] local");
    }
    // A misspelt option is refused by name, never taken for a word to ignore.
    run_in(&dir, &[], &["local", "--hermtic", "job.json"])
        .expect_status(2)
        .expect_stderr_has("--hermtic");
    run_in(&dir, &[], &["local", "--jobs", "many", "job.json"])
        .expect_status(2)
        .expect_stderr_has("many");
    before.assert_unchanged();
    for args in [&["local", "--help"][..], &["local", "-h", "job.json"][..]] {
        let run = run_in(&dir, &[], args);
        run.expect_status(0);
        assert!(
            run.stdout().contains("Options (after `local`):")
                && run.stdout().contains("--hermetic")
                && run.stdout().contains("Usage: dtlto-runner [--verbose]"),
            "{}",
            run.report()
        );
    }
}

#[test]
fn an_option_that_stands_alone_refuses_distributor_arguments_instead_of_ignoring_them() {
    let dir = TestDir::new("cli-stands-alone");
    let before = dir.watch();
    run_runner(&dir, &["--example", "mock", "s0", "job.json"])
        .expect_status(2)
        .expect_stderr_has("--example takes no distributor arguments, and would ignore \"mock\"");
    run_runner(&dir, &["--guest-wasm", "g.wasm", "job.json"])
        .expect_status(2)
        .expect_stderr_has("--guest-wasm takes no distributor arguments");
    before.assert_unchanged();
}
