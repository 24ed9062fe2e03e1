//! Paths in the host's own syntax, through the runner, on each host it runs on (Linux
//! natively, Windows under wine in tests/all.sh): absolute paths as linkers write
//! them (drive letters and backslashes on Windows), relative paths that climb with
//! `..`, spaces, parentheses and non-ASCII names. Planning and commit behave the same.

use crate::util::{Run, TestDir};
use std::path::Path;

/// A path as a linker writes it: on Windows without the `\\?\` prefix that
/// canonicalisation adds.
fn as_linker_writes(path: &Path) -> String {
    let text = path.to_string_lossy().into_owned();
    match text.strip_prefix(r"\\?\") {
        Some(rest) if rest.as_bytes().get(1) == Some(&b':') => rest.to_owned(),
        _ => text,
    }
}

/// The host's separator between `parts`.
fn relative(parts: &[&str]) -> String {
    parts.join(std::path::MAIN_SEPARATOR_STR)
}

fn job_file(outputs: &[String]) -> String {
    let jobs: Vec<serde_json::Value> = outputs
        .iter()
        .enumerate()
        .map(|(i, out)| serde_json::json!({"args": [], "inputs": [format!("m{i}.o"), format!("m{i}.bc")], "outputs": [out]}))
        .collect();
    serde_json::json!({"common": {"linker_output": "app", "args": ["clang"], "inputs": []}, "jobs": jobs}).to_string()
}

/// Runs the runner in `cwd`, a directory inside `root`.
fn runner_in(root: &TestDir, cwd: &Path, args: &[&str]) -> Run {
    root.run(crate::util::runner_command().args(args).current_dir(cwd))
}

#[test]
fn outputs_in_other_directories_by_absolute_and_climbing_relative_paths() {
    let root = TestDir::new("host-paths");
    let work = root.join("work (1)");
    let absolute_dir = root.join("out dir");
    let relative_dir = root.join("Ωμέγα dir");
    for d in [&work, &absolute_dir, &relative_dir] {
        std::fs::create_dir(d).unwrap();
    }
    let source_far = root.write("sources/far 😀.o", "far source");
    std::fs::write(work.join("near.o"), "near source").unwrap();
    let outputs = [
        as_linker_writes(&absolute_dir.join("a (1).native.o")),
        relative(&["..", "Ωμέγα dir", "b 😀.native.o"]),
    ];
    std::fs::write(work.join("job.json"), job_file(&outputs)).unwrap();
    // The far source by absolute path; on Windows with forward slashes, as a driver may.
    let far = as_linker_writes(&source_far);
    let far = if cfg!(windows) {
        far.replace('\\', "/")
    } else {
        far
    };
    let run = runner_in(&root, &work, &["near.o", &far, "job.json"]);
    run.expect_status(0);
    assert_eq!(
        std::fs::read(absolute_dir.join("a (1).native.o")).unwrap(),
        b"near source"
    );
    assert_eq!(
        std::fs::read(relative_dir.join("b 😀.native.o")).unwrap(),
        b"far source"
    );
    let staging: Vec<String> = root
        .snapshot()
        .into_keys()
        .filter(|n| n.contains(".dtlto-staging"))
        .collect();
    assert!(staging.is_empty(), "{staging:?}\n{}", run.report());
}

#[test]
fn one_output_spelled_two_ways_is_refused() {
    let root = TestDir::new("host-paths-duplicate");
    let out = root.join("out dir");
    std::fs::create_dir(&out).unwrap();
    let first = as_linker_writes(&out.join("a.native.o"));
    // Another spelling of the same file, by the host's rules.
    let second = if cfg!(windows) {
        first.to_uppercase().replace('\\', "/")
    } else {
        relative(&[".", "out dir", "sub", "..", "a.native.o"])
    };
    std::fs::create_dir(out.join("sub")).unwrap();
    root.write("job.json", job_file(&[first.clone(), second.clone()]));
    root.write("s0", "0");
    root.write("s1", "1");
    let before = root.snapshot();
    let run = crate::util::run_runner(&root, &["s0", "s1", "job.json"]);
    run.expect_status(1).expect_stderr_has(&format!(
        "jobs[1].outputs[0] \"{second}\" is the same file as jobs[0].outputs[0]"
    ));
    assert_eq!(root.snapshot(), before);
}

#[test]
fn an_output_in_a_missing_directory_or_drive_is_refused() {
    let root = TestDir::new("host-paths-missing");
    let missing = if cfg!(windows) {
        r"Q:\no\such\dir\a.native.o".to_owned()
    } else {
        "/no/such/dir/a.native.o".to_owned()
    };
    root.write("job.json", job_file(std::slice::from_ref(&missing)));
    root.write("s0", "0");
    crate::util::run_runner(&root, &["s0", "job.json"])
        .expect_status(1)
        .expect_stderr_has(&format!(
            "cannot stage jobs[0].outputs[0] \"{missing}\": its directory does not exist"
        ));
}
