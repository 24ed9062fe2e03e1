//! The runner's sandbox: a distributor can write only the outputs the job file
//! declares. Hostile guests (tests/util/hostile.rs) each try one escape; every test
//! snapshots the whole tree (names, sizes, hashes, mtimes) before and after.
//! Runs on Linux and, under wine, on Windows; links and signals are Unix-only here.

use crate::util::hostile::{errnos, guest, mkdir, rename, unlink, write, Step};
use crate::util::{run_runner, Entry, Run, TestDir};
use std::collections::BTreeMap;

/// Preopens of the scene: the job file's directory read-only, then its staging.
const READ: u32 = 3;
const STAGE: u32 = 4;

/// A job directory (job.json declaring `out.o`, its inputs, a source) and, beside it,
/// a directory the guest must never reach.
struct Scene {
    dir: TestDir,
    outside: TestDir,
    modules: TestDir,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let dir = TestDir::new(name);
        dir.write(
            "job.json",
            r#"{"common":{"linker_output":"app","args":["clang"],"inputs":[]},"jobs":[{"args":[],"inputs":["in.o","in.bc"],"outputs":["out.o"]}]}"#,
        );
        dir.write("in.o", "input");
        dir.write("in.bc", "index");
        dir.write("src.native.o", "source");
        let outside = TestDir::new(&format!("{name}-outside"));
        outside.write("secret", "untouched");
        Scene {
            dir,
            outside,
            modules: TestDir::new(&format!("{name}-modules")),
        }
    }

    fn snapshot(&self) -> (BTreeMap<String, Entry>, BTreeMap<String, Entry>) {
        (self.dir.snapshot(), self.outside.snapshot())
    }

    /// Runs `steps` as a distributor through the runner, on this scene.
    fn run(&self, steps: &[Step<'_>]) -> Run {
        let module = self.modules.write("hostile.wasm", guest(steps));
        let module = module.to_string_lossy().into_owned();
        run_runner(
            &self.dir,
            &["--module", &module, "src.native.o", "job.json"],
        )
    }

    /// Asserts that nothing changed but `allowed` (name -> content) in the job directory.
    fn assert_only(
        &self,
        before: &(BTreeMap<String, Entry>, BTreeMap<String, Entry>),
        allowed: &[(&str, &str)],
        run: &Run,
    ) {
        let (mut dir_before, outside_before) = before.clone();
        let (mut dir_after, outside_after) = self.snapshot();
        for (name, content) in allowed {
            let entry = dir_after.remove(*name);
            assert!(
                matches!(entry, Some(Entry::File { size, .. }) if size == content.len() as u64),
                "{name} should hold {content:?}\n{}\n{}",
                run.report(),
                self.dir.listing()
            );
            assert_eq!(self.dir.read(name), content.as_bytes());
            dir_before.remove(*name);
        }
        assert_eq!(
            dir_after,
            dir_before,
            "the job directory changed\n{}\n{}",
            run.report(),
            self.dir.listing()
        );
        assert_eq!(
            outside_after,
            outside_before,
            "the outside directory changed\n{}",
            run.report()
        );
    }
}

#[test]
fn an_undeclared_file_beside_an_output_blocks_the_whole_commit() {
    let scene = Scene::new("undeclared");
    let before = scene.snapshot();
    let run = scene.run(&[
        write(STAGE, "out.o", "ok"),
        write(STAGE, "evil.txt", "x"),
        Step::Exit(0),
    ]);
    assert_eq!(errnos(&run.stdout()), [0, 0], "{}", run.report());
    run.expect_status(1)
        .expect_stderr_has("the distributor wrote 1 path(s) the job file does not declare, so nothing was committed:")
        .expect_stderr_has(&format!("\n  \"{}\"", scene.dir.join("evil.txt").display()));
    scene.assert_only(&before, &[], &run);
}

#[test]
fn inputs_and_the_job_file_cannot_be_overwritten() {
    let scene = Scene::new("overwrite");
    let before = scene.snapshot();
    let run = scene.run(&[
        write(STAGE, "out.o", "ok"),
        write(READ, "in.o", "pwned"),
        write(READ, "job.json", "pwned"),
        write(READ, "new-file", "pwned"),
        Step::Exit(0),
    ]);
    let errnos = errnos(&run.stdout());
    assert_eq!(errnos[0], 0, "{}", run.report());
    assert!(
        errnos[1..].iter().all(|&e| e != 0),
        "a write to a read-only preopen succeeded: {errnos:?}"
    );
    run.expect_status(0);
    scene.assert_only(&before, &[("out.o", "ok")], &run);
}

#[test]
fn dot_dot_and_absolute_paths_do_not_leave_the_preopens() {
    let scene = Scene::new("escape");
    let outside_name = scene
        .outside
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let up = format!("../{outside_name}/secret");
    let absolute = scene.outside.join("secret").to_string_lossy().into_owned();
    let before = scene.snapshot();
    let run = scene.run(&[
        write(READ, &up, "pwned"),
        write(STAGE, "../out.o", "pwned"),
        write(STAGE, &format!("../../{outside_name}/secret"), "pwned"),
        write(STAGE, &absolute, "pwned"),
        write(READ, "/etc/dtlto-escape", "pwned"),
        Step::Exit(0),
    ]);
    let errnos = errnos(&run.stdout());
    assert_eq!(errnos.len(), 5, "{}", run.report());
    assert!(
        errnos.iter().all(|&e| e != 0),
        "an escape succeeded: {errnos:?}\n{}",
        run.report()
    );
    run.expect_status(0);
    scene.assert_only(&before, &[], &run);
}

#[cfg(unix)]
#[test]
fn symlinks_do_not_lead_out_of_a_preopen() {
    use crate::util::hostile::symlink;
    let scene = Scene::new("symlinks");
    let secret = scene.outside.join("secret");
    std::os::unix::fs::symlink(&secret, scene.dir.join("escape")).unwrap();
    let secret = secret.to_string_lossy().into_owned();
    let before = scene.snapshot();
    let run = scene.run(&[
        // Through a link the host made; an absolute link; a relative link that climbs out.
        write(READ, "escape", "pwned"),
        symlink(&secret, STAGE, "abs"),
        symlink("../in.o", STAGE, "up"),
        write(STAGE, "up", "pwned"),
        Step::Exit(0),
    ]);
    let errnos = errnos(&run.stdout());
    assert_eq!(errnos.len(), 4, "{}", run.report());
    assert_ne!(
        errnos[0],
        0,
        "wrote through the host's link\n{}",
        run.report()
    );
    assert_ne!(
        errnos[1],
        0,
        "created a link to an absolute path\n{}",
        run.report()
    );
    assert_eq!(
        errnos[2],
        0,
        "a relative link inside the staging is allowed\n{}",
        run.report()
    );
    assert_ne!(
        errnos[3],
        0,
        "wrote through a link that leaves the staging\n{}",
        run.report()
    );
    // The link stays in the staging, undeclared, so nothing is committed.
    run.expect_status(1)
        .expect_stderr_has("nothing was committed")
        .expect_stderr_has(&format!("\n  \"{}\"", scene.dir.join("up").display()));
    scene.assert_only(&before, &[], &run);
}

#[test]
fn created_directories_are_undeclared_and_read_only_dirs_refuse_them() {
    let scene = Scene::new("mkdir");
    let before = scene.snapshot();
    let run = scene.run(&[
        mkdir(STAGE, "sub"),
        write(STAGE, "sub/x.o", "x"),
        mkdir(READ, "sub2"),
        write(STAGE, "out.o", "ok"),
        Step::Exit(0),
    ]);
    let errnos = errnos(&run.stdout());
    assert_eq!(errnos[0..2], [0, 0], "{}", run.report());
    assert_ne!(errnos[2], 0, "mkdir in a read-only preopen succeeded");
    run.expect_status(1)
        .expect_stderr_has(&format!("\n  \"{}\"", scene.dir.join("sub").display()));
    scene.assert_only(&before, &[], &run);
}

#[test]
fn inputs_cannot_be_deleted_or_renamed() {
    let scene = Scene::new("unlink");
    let before = scene.snapshot();
    let run = scene.run(&[
        unlink(READ, "in.o"),
        rename(READ, "in.bc", "moved.bc"),
        unlink(READ, "job.json"),
        Step::Exit(0),
    ]);
    let errnos = errnos(&run.stdout());
    assert!(
        errnos.len() == 3 && errnos.iter().all(|&e| e != 0),
        "{errnos:?}\n{}",
        run.report()
    );
    run.expect_status(0);
    scene.assert_only(&before, &[], &run);
}

#[test]
fn a_write_then_a_failure_exit_commits_nothing() {
    let scene = Scene::new("exit1");
    let before = scene.snapshot();
    let run = scene.run(&[write(STAGE, "out.o", "ok"), Step::Exit(3)]);
    assert_eq!(errnos(&run.stdout()), [0], "{}", run.report());
    run.expect_status(3);
    assert!(
        run.stderr().is_empty(),
        "the runner adds nothing to a guest's own failure: {}",
        run.report()
    );
    scene.assert_only(&before, &[], &run);
}

#[test]
fn a_write_then_a_trap_commits_nothing() {
    let scene = Scene::new("trap");
    let before = scene.snapshot();
    let run = scene.run(&[write(STAGE, "out.o", "ok"), Step::Trap]);
    run.expect_status(1)
        .expect_stderr_has("the distributor trapped, so nothing was committed")
        .expect_stderr_has("unreachable");
    scene.assert_only(&before, &[], &run);
}

#[test]
fn exhausting_memory_hits_the_limit_and_commits_nothing() {
    let scene = Scene::new("memory");
    let before = scene.snapshot();
    let run = scene.run(&[write(STAGE, "out.o", "ok"), Step::ExhaustMemory]);
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor tried to grow its memory to 2 GiB and 128 KiB \
         in all, beyond the 2 GiB that a distributor's memories may take together; \
         nothing was committed",
    );
    scene.assert_only(&before, &[], &run);
}

#[test]
fn a_well_behaved_foreign_distributor_gets_its_output_committed() {
    let scene = Scene::new("foreign");
    let before = scene.snapshot();
    let run = scene.run(&[write(STAGE, "out.o", "native")]);
    run.expect_status(0);
    scene.assert_only(&before, &[("out.o", "native")], &run);
}

/// A job file whose single job reads `inputs` and writes `outputs`.
fn job_file(jobs: &[(&[&str], &[&str])]) -> String {
    let jobs: Vec<String> = jobs
        .iter()
        .map(|(inputs, outputs)| {
            serde_json::json!({"args": [], "inputs": inputs, "outputs": outputs}).to_string()
        })
        .collect();
    format!(
        r#"{{"common":{{"linker_output":"app","args":["clang"],"inputs":[]}},"jobs":[{}]}}"#,
        jobs.join(",")
    )
}

/// Runs a distributor that prints as soon as it starts, and expects a refusal.
fn expect_refusal(dir: &TestDir, args: &[&str], message: &str) {
    let modules = TestDir::new("refusal-module");
    // Its one step prints an errno line, so stdout shows whether it ran.
    let module = modules.write("prints.wasm", guest(&[unlink(99, "x")]));
    let module = module.to_string_lossy().into_owned();
    let before = dir.snapshot();
    let mut all = vec!["--module", &module];
    all.extend_from_slice(args);
    let run = run_runner(dir, &all);
    run.expect_status(1)
        .expect_stderr_has(&format!("dtlto-runner: error: job.json: {message}"));
    assert!(
        run.stdout().is_empty(),
        "the distributor ran\n{}",
        run.report()
    );
    assert_eq!(dir.snapshot(), before);
}

#[test]
fn an_output_that_is_an_input_is_refused_before_anything_runs() {
    let dir = TestDir::new("plan-input");
    dir.write("a.o", "a");
    dir.write(
        "job.json",
        job_file(&[
            (&["a.o", "a.bc"], &["b.o"]),
            (&["c.o", "c.bc"], &["sub/../a.o"]),
        ]),
    );
    std::fs::create_dir(dir.join("sub")).unwrap();
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[1].outputs[0] \"sub/../a.o\" is also jobs[0].inputs[0]; a distributor must not overwrite what the link reads",
    );
}

#[test]
fn two_jobs_with_one_output_are_refused() {
    let dir = TestDir::new("plan-duplicate");
    dir.write(
        "job.json",
        job_file(&[(&["a", "b"], &["x.o"]), (&["c", "d"], &["e.o", "./x.o"])]),
    );
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[1].outputs[1] \"./x.o\" is the same file as jobs[0].outputs[0]; two jobs cannot produce one output",
    );
}

#[test]
fn the_job_file_and_the_sources_cannot_be_outputs() {
    let dir = TestDir::new("plan-job-file");
    dir.write("src.o", "s");
    dir.write("job.json", job_file(&[(&["a", "b"], &["job.json"])]));
    expect_refusal(
        &dir,
        &["src.o", "job.json"],
        "jobs[0].outputs[0] \"job.json\" is also the job file",
    );
    dir.write("job.json", job_file(&[(&["a", "b"], &["src.o"])]));
    expect_refusal(
        &dir,
        &["src.o", "job.json"],
        "jobs[0].outputs[0] \"src.o\" is also a file named on the distributor's command line",
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_to_an_input_is_the_input() {
    let dir = TestDir::new("plan-symlink");
    dir.write("a.o", "a");
    std::os::unix::fs::symlink("a.o", dir.join("alias.o")).unwrap();
    dir.write("job.json", job_file(&[(&["a.o", "a.bc"], &["alias.o"])]));
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[0].outputs[0] \"alias.o\" is also jobs[0].inputs[0]",
    );
}

#[cfg(unix)]
/// A job file with 40 jobs before `last`, which puts enough paths in one directory
/// that the planner lists it instead of looking up each path.
fn crowded_job_file(last: (&[&str], &[&str])) -> String {
    let crowd: Vec<([String; 2], [String; 1])> = (0..40)
        .map(|i| ([format!("m{i}.o"), format!("m{i}.bc")], [format!("o{i}.o")]))
        .collect();
    let crowd: Vec<([&str; 2], [&str; 1])> = crowd
        .iter()
        .map(|([input, summary], [output])| ([input.as_str(), summary.as_str()], [output.as_str()]))
        .collect();
    let mut jobs: Vec<(&[&str], &[&str])> = crowd
        .iter()
        .map(|(inputs, outputs)| (&inputs[..], &outputs[..]))
        .collect();
    jobs.push(last);
    job_file(&jobs)
}

#[cfg(unix)]
#[test]
fn a_crowded_directory_is_planned_like_a_sparse_one() {
    let dir = TestDir::new("plan-crowded");
    for i in 0..40 {
        dir.write(&format!("m{i}.o"), "m");
    }
    dir.write("a.o", "a");
    std::os::unix::fs::symlink("a.o", dir.join("alias.o")).unwrap();
    std::fs::create_dir(dir.join("sub.o")).unwrap();
    dir.write(
        "job.json",
        crowded_job_file((&["a.o", "a.bc"], &["alias.o"])),
    );
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[40].outputs[0] \"alias.o\" is also jobs[40].inputs[0]",
    );
    dir.write("job.json", crowded_job_file((&["a.o", "a.bc"], &["sub.o"])));
    expect_refusal(
        &dir,
        &["job.json"],
        "cannot stage jobs[40].outputs[0] \"sub.o\": a directory of that name exists",
    );
    dir.write("job.json", crowded_job_file((&["a.o", "a.bc"], &["m7.o"])));
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[40].outputs[0] \"m7.o\" is also jobs[7].inputs[0]",
    );
}

#[cfg(target_os = "linux")]
#[test]
fn names_differing_in_case_are_different_files_on_linux() {
    let dir = TestDir::new("plan-case");
    dir.write("A.o", "a");
    dir.write("src", "s");
    dir.write("job.json", job_file(&[(&["A.o", "a.bc"], &["a.o"])]));
    run_runner(&dir, &["src", "job.json"]).expect_status(0);
    assert_eq!(dir.read("a.o"), b"s");
    assert_eq!(dir.read("A.o"), b"a");
}

#[cfg(windows)]
#[test]
fn names_differing_in_case_are_one_file_on_windows() {
    let dir = TestDir::new("plan-case-windows");
    dir.write("A.o", "a");
    dir.write("job.json", job_file(&[(&["A.o", "a.bc"], &["a.o"])]));
    expect_refusal(
        &dir,
        &["job.json"],
        "jobs[0].outputs[0] \"a.o\" is also jobs[0].inputs[0]",
    );
}

#[test]
fn verbose_prints_the_plan_and_the_commit() {
    let dir = TestDir::new("verbose");
    dir.write("src", "s");
    std::fs::create_dir(dir.join("out")).unwrap();
    dir.write("job.json", job_file(&[(&["a", "b"], &["out/x.o"])]));
    let run = run_runner(&dir, &["--verbose", "src", "job.json"]);
    run.expect_status(0);
    let out = dir.join("out");
    for line in [
        format!(
            "dtlto-runner: read-only  /dtlto/in0 = {}",
            dir.path().display()
        ),
        format!(
            "dtlto-runner: writable   /dtlto/out0 = {}",
            out.join(".dtlto-staging-").display()
        ),
        "dtlto-runner: map        out/x.o -> /dtlto/out0/x.o".to_owned(),
        "dtlto-runner: map        src -> /dtlto/in0/src".to_owned(),
        format!(
            "dtlto-runner: may write  jobs[0].outputs[0] = {}",
            out.join("x.o").display()
        ),
        format!("dtlto-runner: committed {}", out.join("x.o").display()),
    ] {
        run.expect_stderr_has(&line);
    }
    // The embedded guest's precompiled code ran where the binary holds it.
    assert!(
        !run.stderr().contains("code was copied"),
        "{}",
        run.report()
    );
}

/// Signals are POSIX; a Windows console sends Ctrl-C, which the same handler takes.
#[cfg(unix)]
mod interrupt {
    use super::*;

    use std::path::PathBuf;

    #[test]
    fn a_signal_mid_copy_leaves_no_staged_or_partial_file() {
        let dir = TestDir::new("interrupt");
        // A 2 GiB sparse source: copying it takes long enough to be caught mid-way.
        let source = std::fs::File::create(dir.join("big.native.o")).unwrap();
        source.set_len(2 << 30).unwrap();
        drop(source);
        dir.write("job.json", crate::util::job_file_json(1));
        let before = dir.snapshot();
        let child = crate::util::runner_command()
            .args(["big.native.o", "job.json"])
            .current_dir(dir.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let partial = wait_for_partial_output(&dir);
        crate::util::send_signal(child.id(), "TERM");
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(143), "{stderr}");
        assert!(
            stderr.contains(
                "dtlto-runner: stopped by SIGTERM: nothing was committed, and the staging was removed"
            ),
            "{stderr}"
        );
        assert!(!partial.exists(), "{} survived", partial.display());
        assert_eq!(dir.snapshot(), before, "{}", dir.listing());
    }

    /// Waits until the guest has started writing its output in the staging directory.
    fn wait_for_partial_output(dir: &TestDir) -> PathBuf {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".dtlto-staging-")
                {
                    let partial = entry.path().join("out/m0.0.native.o");
                    if partial.metadata().is_ok_and(|m| m.len() > 0) {
                        return partial;
                    }
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        panic!("the copy never started\n{}", dir.listing());
    }
}
