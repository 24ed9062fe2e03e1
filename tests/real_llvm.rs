//! Real DTLTO links with LLVM 23's clang and ld.lld, using dtlto-runner as the
//! distributor: programs that link and run, and failures that surface as lld reports
//! them, with nothing partial left behind.
#![cfg(unix)]

use crate::util::llvm::{llvm, Llvm, PROGRAM, PROGRAM_OUTPUT};
use crate::util::oracle::cpython_validate;
use crate::util::{runner_exe, Run, TestDir};
use std::path::Path;

/// Writes and compiles the program's modules under the given names.
fn build_program(llvm: &Llvm, dir: &TestDir, names: [&str; 3]) {
    for ((_, code), name) in PROGRAM.iter().zip(names) {
        // The callers name their callees by the original symbol names, so only the
        // file names change.
        dir.write(&format!("{name}.c"), code);
        llvm.compile(dir, name);
    }
}

fn runner() -> String {
    runner_exe().to_string_lossy().into_owned()
}

/// `clang -flto=thin -fuse-ld=lld <objects> -o <output> -fthinlto-distributor=<distributor>`
/// with one `-Xthinlto-distributor=` per distributor argument.
fn clang_link(
    distributor: &str,
    llvm: &Llvm,
    dir: &TestDir,
    objects: &[&str],
    output: &str,
    distributor_args: &[&str],
    extra: &[&str],
) -> Run {
    let mut args: Vec<String> = ["-flto=thin", "-fuse-ld=lld"].map(String::from).to_vec();
    args.extend(objects.iter().map(|o| o.to_string()));
    args.extend(["-o".to_owned(), output.to_owned()]);
    args.push(format!("-fthinlto-distributor={distributor}"));
    args.extend(
        distributor_args
            .iter()
            .map(|a| format!("-Xthinlto-distributor={a}")),
    );
    args.extend(extra.iter().map(|a| a.to_string()));
    dir.run(std::process::Command::new(llvm.tool("clang")).args(&args))
}

/// Links the three-module program (`build_program`) into `app` through the runner.
fn link_program(llvm: &Llvm, dir: &TestDir, distributor_args: &[&str], extra: &[&str]) -> Run {
    let objects = ["main.o", "helper.o", "twice.o"];
    clang_link(
        &runner(),
        llvm,
        dir,
        &objects,
        "app",
        distributor_args,
        extra,
    )
}

fn run_program(dir: &TestDir, program: &Path) -> String {
    let run = dir.run(&mut std::process::Command::new(program));
    run.expect_status(0);
    run.stdout()
}

/// The job files a `--save-temps` link kept in `dir`.
fn kept_job_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("list the output directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".dist-file.json"))
        .collect();
    found.sort();
    found
}

/// Files no run may leave: staging directories, partial outputs, undeclared outputs.
fn strays(dir: &TestDir) -> Vec<String> {
    dir.snapshot()
        .into_keys()
        .filter(|name| {
            name.contains(".dtlto-staging")
                || name.contains(".dtlto-partial")
                || name.ends_with(".undeclared")
        })
        .collect()
}

/// Names left by a distributor that must not survive a failed link: strays, and
/// native objects other than the sources.
fn leftovers(dir: &TestDir, sources: &[&str]) -> Vec<String> {
    let mut left = strays(dir);
    left.extend(
        dir.snapshot()
            .into_keys()
            .filter(|name| name.ends_with(".native.o") && !sources.contains(&name.as_str())),
    );
    left
}

const SOURCES: [&str; 3] = ["main.native.o", "helper.native.o", "twice.native.o"];

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn clang_links_and_runs_a_program_whose_jobs_import_other_modules() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-clang");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    link_program(&llvm, &dir, &SOURCES, &["-Wl,--save-temps"]).expect_status(0);
    assert_eq!(run_program(&dir, &dir.join("app")), PROGRAM_OUTPUT);

    let job_files = kept_job_files(dir.path());
    assert_eq!(job_files.len(), 1, "{}", dir.listing());
    let text = std::fs::read_to_string(&job_files[0]).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let inputs = doc["jobs"][0]["inputs"].as_array().unwrap();
    assert!(
        inputs.len() > 2,
        "main's job imports helper and twice: {text}"
    );
    for (job, source) in doc["jobs"].as_array().unwrap().iter().zip(SOURCES) {
        let output = job["outputs"][0].as_str().unwrap();
        assert_eq!(
            dir.read(output),
            dir.read(source),
            "{output} is a copy of {source}"
        );
    }
}

/// As in Bazel's sandbox: the link runs in a directory of links into a store built
/// elsewhere, bitcode by relative links and native objects by absolute ones.
#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn a_symlink_forest_links_through_the_runner() {
    let llvm = llvm();
    let store = TestDir::new("llvm-forest-store");
    build_program(&llvm, &store, ["main", "helper", "twice"]);
    let exec = TestDir::new("llvm-forest-exec");
    let store_name = store
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    for name in ["main", "helper", "twice"] {
        let bitcode = format!("../{store_name}/{name}.o");
        std::os::unix::fs::symlink(bitcode, exec.join(&format!("{name}.o"))).unwrap();
        let native = store.join(&format!("{name}.native.o"));
        std::os::unix::fs::symlink(native, exec.join(&format!("{name}.native.o"))).unwrap();
    }
    let store_before = store.snapshot();
    let objects = ["main.o", "helper.o", "twice.o"];
    clang_link(&runner(), &llvm, &exec, &objects, "app", &SOURCES, &[]).expect_status(0);
    assert_eq!(run_program(&exec, &exec.join("app")), PROGRAM_OUTPUT);
    assert_eq!(store.snapshot(), store_before, "the store changed");
    assert_eq!(strays(&exec), Vec::<String>::new());
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn ld_lld_directly_with_a_response_file_an_absolute_output_dir_and_save_temps() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-lld");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    std::fs::create_dir(dir.join("out")).unwrap();
    let output = dir.join("out/app").to_string_lossy().into_owned();
    let mut args = llvm.lld_args_from_driver(
        &dir,
        &[
            "-flto=thin",
            "-fuse-ld=lld",
            "main.o",
            "helper.o",
            "twice.o",
            "-o",
            &output,
        ],
    );
    args.push(format!("--thinlto-distributor={}", runner()));
    args.push(format!(
        "--thinlto-remote-compiler={}",
        llvm.tool("clang").display()
    ));
    args.extend(
        SOURCES
            .iter()
            .map(|s| format!("--thinlto-distributor-arg={s}")),
    );
    args.push("--save-temps".to_owned());
    let response_file: String = args
        .iter()
        .map(|a| format!("\"{}\"\n", a.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    dir.write("link.rsp", response_file);
    llvm.run_ok(&dir, "ld.lld", &["@link.rsp"]);
    assert_eq!(run_program(&dir, &dir.join("out/app")), PROGRAM_OUTPUT);

    // The kept job file passes validate mode, which prints what CPython prints.
    let job_files = kept_job_files(&dir.join("out"));
    assert_eq!(job_files.len(), 1, "{}", dir.listing());
    let job_file = job_files[0].to_string_lossy().into_owned();
    let ours = crate::util::run_runner(&dir, &["validate", "--from-lld", &job_file]);
    ours.expect_status(0);
    let oracle = cpython_validate(&dir, &["--from-lld"], &job_file);
    assert_eq!(
        ours.stdout(),
        oracle.stdout(),
        "{}\n{}",
        ours.report(),
        oracle.report()
    );
    assert!(ours
        .stdout()
        .contains(&format!("{}/out/main.1.", dir.path().display())));
}

/// Links `main.o` with an archive of the other two modules (named with spaces,
/// parentheses and non-ASCII letters). lld decides the job order, so a first link with
/// validate mode keeps the job file, from which the sources are put in job order.
fn link_with_archive(thin: bool) {
    let llvm = llvm();
    let dir = TestDir::new(if thin {
        "llvm-thin-archive"
    } else {
        "llvm-archive"
    });
    let names = ["main", "hé lper (1)", "twice [Ωμέγα]"];
    build_program(&llvm, &dir, names);
    let members = ["hé lper (1).o", "twice [Ωμέγα].o"];
    let mut ar_args = vec![if thin { "rcsT" } else { "rcs" }, "lib.a"];
    ar_args.extend_from_slice(&members);
    llvm.run_ok(&dir, "llvm-ar", &ar_args);

    let first = clang_link(
        &runner(),
        &llvm,
        &dir,
        &["main.o", "lib.a"],
        "app",
        &["validate"],
        &["-Wl,--save-temps"],
    );
    first.expect_status(1);
    let job_files = kept_job_files(dir.path());
    let text = std::fs::read_to_string(&job_files[0]).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sources: Vec<String> = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            let module = job["inputs"][0].as_str().unwrap();
            let name = names
                .iter()
                .find(|n| module.contains(&format!("{n}.o")))
                .unwrap_or_else(|| panic!("which module is {module}?\n{text}"));
            format!("{name}.native.o")
        })
        .collect();
    if !thin {
        assert!(
            text.contains("lib.a(hé lper (1).o at "),
            "archive member names: {text}"
        );
    }

    let sources: Vec<&str> = sources.iter().map(String::as_str).collect();
    clang_link(
        &runner(),
        &llvm,
        &dir,
        &["main.o", "lib.a"],
        "app",
        &sources,
        &[],
    )
    .expect_status(0);
    assert_eq!(run_program(&dir, &dir.join("app")), PROGRAM_OUTPUT);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn bitcode_in_a_regular_archive_with_odd_member_names() {
    link_with_archive(false);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn bitcode_in_a_thin_archive_with_odd_member_names() {
    link_with_archive(true);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn source_files_with_non_ascii_names() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-unicode");
    let names = ["mäin", "ヘルパー", "twice😀"];
    build_program(&llvm, &dir, names);
    let objects = names.map(|n| format!("{n}.o"));
    let sources = names.map(|n| format!("{n}.native.o"));
    clang_link(
        &runner(),
        &llvm,
        &dir,
        &objects.each_ref().map(String::as_str),
        "äpp",
        &sources.each_ref().map(String::as_str),
        &[],
    )
    .expect_status(0);
    assert_eq!(run_program(&dir, &dir.join("äpp")), PROGRAM_OUTPUT);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn validate_mode_as_distributor_prints_what_cpython_prints_then_lld_cannot_open_the_object() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-validate");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    let args = ["validate", "--da1=10", "--da2=10"];
    let link = link_program(&llvm, &dir, &args, &["-Wl,--save-temps"]);
    link.expect_status(1)
        .expect_stderr_has("DTLTO backend compilation: cannot open native object file: main.1.");
    let job_files = kept_job_files(dir.path());
    let job_file = job_files[0].to_string_lossy().into_owned();
    let oracle = cpython_validate(&dir, &args[1..], &job_file);
    oracle.expect_status(0);
    assert_eq!(link.stdout(), oracle.stdout(), "{}", link.report());
    assert!(link
        .stdout()
        .starts_with("distributor_args=['--da1=10', '--da2=10']\n{\n    \"common\": {\n"));
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn too_few_sources_fail_the_link_with_the_runners_reason() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-few");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    link_program(&llvm, &dir, &SOURCES[..2], &[])
        .expect_status(1)
        .expect_stderr_has("has 3 jobs but only 2 sources were given")
        .expect_stderr_has("DTLTO backend compilation: distributor execution failed");
    assert_eq!(leftovers(&dir, &SOURCES), Vec::<String>::new());
    assert!(!dir.exists("app"));
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn a_missing_source_fails_the_link_and_is_named() {
    let llvm = llvm();
    let dir = TestDir::new("llvm-missing");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    let sources = ["main.native.o", "gone.native.o", "twice.native.o"];
    link_program(&llvm, &dir, &sources, &[])
        .expect_status(1)
        .expect_stderr_has(
            "cannot open source 2 (for jobs[1]) \"gone.native.o\": no such file or directory",
        )
        .expect_stderr_has("DTLTO backend compilation: distributor execution failed");
    assert_eq!(leftovers(&dir, &SOURCES), Vec::<String>::new());
}

#[test]
#[ignore = "needs LLVM 23 from PyPI, and root: tests/all.sh installs it and runs the ignored tests"]
fn an_output_directory_the_distributor_cannot_write_fails_the_link_cleanly() {
    let llvm = llvm();
    // The linker (root) can write the directory; the distributor, run as `nobody`
    // through a wrapper, cannot. Root ignores permission bits, so this needs both.
    assert!(
        crate::util::is_root(),
        "this test runs the distributor as `nobody` with setpriv, which needs root"
    );
    let dir = TestDir::new("llvm-unwritable");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    std::fs::copy(runner_exe(), dir.join("dtlto-runner")).unwrap();
    let wrapper = dir.write(
        "as-nobody.sh",
        "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups \"$(dirname \"$0\")/dtlto-runner\" \"$@\"\n",
    );
    set_mode(&wrapper, 0o755);
    set_mode(dir.path(), 0o755);
    let wrapper = wrapper.to_string_lossy().into_owned();
    let objects = ["main.o", "helper.o", "twice.o"];
    let link = clang_link(&wrapper, &llvm, &dir, &objects, "app", &SOURCES, &[]);
    link.expect_status(1)
        .expect_stderr_has("cannot create a staging directory in output directory")
        .expect_stderr_has("permission denied")
        .expect_stderr_has("DTLTO backend compilation: distributor execution failed");
    assert_eq!(leftovers(&dir, &SOURCES), Vec::<String>::new());
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// What a fault may leave at a job's native object after the link.
#[derive(Clone, Copy)]
enum Left {
    /// A complete copy of the source, or nothing.
    CopyOrNothing,
    /// Nothing at all.
    Nothing,
    /// The first half of the source.
    FirstHalf,
    /// Bytes that are not an object file (the guest's fixed text).
    Garbage,
    /// An empty file.
    Empty,
}

/// Links the program with one `--fault=` among the distributor arguments and checks
/// lld's status and message, the fault's stderr line, and what each output holds.
fn link_with_fault(fault: &str, status: i32, lld_says: &str, left: [Left; 3]) {
    let llvm = llvm();
    let dir = TestDir::new("llvm-fault");
    build_program(&llvm, &dir, ["main", "helper", "twice"]);
    let mut args = vec![fault];
    args.extend_from_slice(&SOURCES);
    let link = link_program(&llvm, &dir, &args, &["-Wl,--save-temps"]);
    link.expect_status(status)
        .expect_stderr_has(&format!("dtlto-mock: fault injected: {fault} at "))
        .expect_stderr_has(lld_says);
    let text = std::fs::read_to_string(&kept_job_files(dir.path())[0]).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for ((job, source), left) in doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(SOURCES)
        .zip(left)
    {
        let output = job["outputs"][0].as_str().unwrap();
        let found = std::fs::read(dir.join(output)).ok();
        let source = dir.read(source);
        let ok = match (left, &found) {
            (Left::CopyOrNothing, None) | (Left::Nothing, None) => true,
            (Left::CopyOrNothing, Some(bytes)) => *bytes == source,
            (Left::FirstHalf, Some(bytes)) => *bytes == source[..source.len() / 2],
            (Left::Garbage, Some(bytes)) => bytes.starts_with(b"dtlto-mock --fault=garbage"),
            (Left::Empty, Some(bytes)) => bytes.is_empty(),
            _ => false,
        };
        assert!(
            ok,
            "{fault}: {output} holds {:?} bytes\n{}\n{}",
            found.map(|b| b.len()),
            link.report(),
            dir.listing()
        );
    }
    let strays = strays(&dir);
    assert!(strays.is_empty(), "{fault} left {strays:?}");
}

const FAILED: &str = "DTLTO backend compilation: distributor execution failed";

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_exit_before_any_work() {
    link_with_fault("--fault=exit-before=3", 1, FAILED, [Left::Nothing; 3]);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_exit_after_the_work_commits_nothing_under_the_runner() {
    link_with_fault("--fault=exit-after=4", 1, FAILED, [Left::Nothing; 3]);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_skip_a_jobs_output() {
    link_with_fault(
        "--fault=skip@1",
        1,
        "DTLTO backend compilation: cannot open native object file: helper.2.",
        [Left::CopyOrNothing, Left::Nothing, Left::CopyOrNothing],
    );
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_truncated_output() {
    link_with_fault(
        "--fault=truncate@0",
        1,
        "app.lto.main.o: section header table goes past the end of the file",
        [Left::FirstHalf, Left::CopyOrNothing, Left::CopyOrNothing],
    );
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_garbage_output_selected_by_name() {
    link_with_fault(
        "--fault=garbage@name:helper.*",
        1,
        "app.lto.helper.o: not an ELF file",
        [Left::CopyOrNothing, Left::Garbage, Left::CopyOrNothing],
    );
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_empty_output() {
    link_with_fault(
        "--fault=empty@2",
        1,
        "undefined symbol: twice",
        [Left::CopyOrNothing, Left::CopyOrNothing, Left::Empty],
    );
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_delay_still_links() {
    link_with_fault("--fault=delay=50@0", 0, "", [Left::CopyOrNothing; 3]);
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_extra_output_when_lld_declares_none() {
    link_with_fault(
        "--fault=extra-output",
        0,
        "which declares no extra output: nothing written",
        [Left::CopyOrNothing; 3],
    );
}

#[test]
#[ignore = "needs LLVM 23 from PyPI: tests/all.sh installs it and runs the ignored tests"]
fn fault_undeclared_output_is_refused_by_the_sandbox() {
    link_with_fault(
        "--fault=undeclared-output@0",
        1,
        "the distributor wrote 1 path(s) the job file does not declare, so nothing was committed",
        [Left::Nothing; 3],
    );
}
