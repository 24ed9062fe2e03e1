//! The runner's own command line: its options, its built-in example, its refusals.

use std::process::Command;

fn runner() -> Command {
    crate::util::runner_command()
}

#[test]
fn no_arguments_run_the_built_in_example_and_report_it() {
    let output = runner().output().expect("run dtlto-runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for text in [
        "dtlto-runner example, in ",
        "2 jobs, as a linker would",
        "jobs[0].outputs[0] main.1.",
        "(30 bytes, identical)",
        "jobs[1].outputs[0] helper.2.",
        "nothing else was written",
    ] {
        assert!(stdout.contains(text), "report lacks {text:?}:\n{stdout}");
    }
}

#[test]
fn help_lists_the_runner_options_and_how_a_linker_calls_it() {
    let output = runner().arg("--help").output().expect("run dtlto-runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for text in [
        "--module <FILE.wasm>",
        "--verbose",
        "-fthinlto-distributor=dtlto-runner",
    ] {
        assert!(stdout.contains(text), "help lacks {text:?}:\n{stdout}");
    }
}

#[test]
fn options_after_the_first_distributor_argument_go_to_the_distributor() {
    // `--verbose` after the mode word is a distributor argument, printed by validate.
    let dir = std::env::temp_dir().join(format!("dtlto-runner-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("j.json"),
        r#"{"common":{"linker_output":"a","args":["c"],"inputs":[]},"jobs":[]}"#,
    )
    .unwrap();
    let output = runner()
        .args(["validate", "--verbose", "--module=x", "j.json"])
        .current_dir(&dir)
        .output()
        .expect("run dtlto-runner");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("distributor_args=['--verbose', '--module=x']\n"),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "the runner printed on its own: {stderr}");
}
