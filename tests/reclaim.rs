//! What a run finds beside its outputs and may not trust: staging directories and
//! recovery records that another user, or a hand, made. Each scene is a whole tree
//! (the output directory, its parent and siblings, a home stand-in), snapshotted
//! before and after an ordinary run, which may add its own output and nothing else.

#![cfg(unix)]

use crate::util::{changes, job_file_json, TestDir};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const OUTPUT: &str = "build/m0.0.native.o";
const STAGING: &str = ".dtlto-staging-00000000000000f1";

/// `top/build` (the job's directory, with job.json and s0), `top/outside/{x,y}`
/// and `top/home/config.sh` (the user's files elsewhere).
fn scene(name: &str) -> TestDir {
    let top = TestDir::new(name);
    top.write("build/job.json", job_file_json(1));
    top.write("build/s0", "new 0\n");
    top.write("outside/x", "the user's x\n");
    top.write("outside/y", "the user's y\n");
    top.write("home/config.sh", "the user's config\n");
    top
}

/// A record's entry as the runner writes it, for the file at `target`, whose
/// previous file is said to be in the staging's `aside/`.
fn record(name: &str, target: &Path) -> serde_json::Value {
    let meta = fs::symlink_metadata(target).unwrap();
    serde_json::json!({
        "name": name,
        "placed": [meta.dev(), meta.ino()],
        "fingerprint": [meta.size(), i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())],
        "previous": "aside",
    })
}

/// A dead run's staging in `build/`: its empty title, the directory with `mode`,
/// and `files` in it.
fn plant_staging(top: &TestDir, mode: u32, files: &[(&str, &[u8])]) {
    let lock = top.write(&format!("build/{STAGING}.lock"), "");
    let lock = fs::metadata(lock).unwrap();
    // The staging's mark of its lock, as the runner makes it.
    top.write(
        &format!("build/{STAGING}/lock-id"),
        format!("{}:{}", lock.dev(), lock.ino()),
    );
    for (name, bytes) in files {
        top.write(&format!("build/{STAGING}/{name}"), bytes);
    }
    fs::set_permissions(
        top.join(&format!("build/{STAGING}")),
        fs::Permissions::from_mode(mode),
    )
    .unwrap();
}

fn run_in_build(top: &TestDir) -> crate::util::Run {
    let mut command = crate::util::runner_command();
    command
        .args(["s0", "job.json"])
        .current_dir(top.join("build"));
    top.run(&mut command)
}

#[test]
fn a_record_naming_paths_outside_its_directory_is_left_alone_and_named() {
    let top = scene("reclaim-climbing");
    std::os::unix::fs::symlink("../outside", top.join("build/L")).unwrap();
    // Each entry points at a user's file outside, with its real identity, and a
    // forged "previous file" for it in the staging.
    let entries = serde_json::json!([
        record("../outside/x", &top.join("outside/x")),
        record("L/y", &top.join("outside/y")),
    ]);
    plant_staging(
        &top,
        0o700,
        &[
            ("recover.json", entries.to_string().as_bytes()),
            ("outside/x", b"forged x\n"),
            ("aside/L/y", b"forged y\n"),
            ("out/partial", b"partial"),
        ],
    );
    let before = top.snapshot();
    let run = run_in_build(&top);
    run.expect_status(0).expect_stderr_has(&format!(
        "dtlto-runner: warning: left abandoned staging \"{}\" as it is: its recover.json \
         cannot be used: \"../outside/x\" is not a file name in the output directory\n",
        top.join(&format!("build/{STAGING}")).display()
    ));
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.report());
    only_the_output_added(&top, &before, &run);
    assert_eq!(top.read("outside/x"), b"the user's x\n");
    assert_eq!(top.read("outside/y"), b"the user's y\n");
}

#[test]
fn a_fifo_or_a_link_to_dev_zero_for_a_record_neither_hangs_nor_feeds_the_run() {
    for (what, plant) in [
        (
            "fifo",
            &(|path: &Path| crate::util::make_fifo(path)) as &dyn Fn(&Path),
        ),
        ("link", &|path: &Path| {
            std::os::unix::fs::symlink("/dev/zero", path).unwrap()
        }),
    ] {
        let top = scene(&format!("reclaim-{what}"));
        plant_staging(&top, 0o700, &[("out/partial", b"partial")]);
        plant(&top.join(&format!("build/{STAGING}/recover.json")));
        let before = top.snapshot();
        let mut command = crate::util::runner_command();
        command
            .args(["--timeout", "20", "s0", "job.json"])
            .current_dir(top.join("build"));
        let run = top.run(&mut command);
        run.expect_status(0)
            .expect_stderr_has("as it is: its recover.json cannot be used: ");
        only_the_output_added(&top, &before, &run);
    }
}

#[test]
fn an_output_written_anew_with_the_dead_runs_file_number_is_kept() {
    let top = scene("reclaim-reused-inode");
    top.write(OUTPUT, "the dead run's output\n");
    let dead_runs = fs::symlink_metadata(top.join(OUTPUT)).unwrap();
    // The user removes the output and writes another, which gets the dead run's
    // file number (ext4 often hands it out again at once; the record is written
    // with the new file's number, so that the scene does not depend on it). Only
    // its size and time tell the two apart.
    fs::remove_file(top.join(OUTPUT)).unwrap();
    top.write(OUTPUT, "the user's own output, longer\n");
    let mut entry = record("m0.0.native.o", &top.join(OUTPUT));
    entry["fingerprint"] = serde_json::json!([
        dead_runs.size(),
        i128::from(dead_runs.mtime()) * 1_000_000_000 + i128::from(dead_runs.mtime_nsec()) - 1
    ]);
    plant_staging(
        &top,
        0o700,
        &[
            (
                "recover.json",
                serde_json::json!([entry]).to_string().as_bytes(),
            ),
            ("aside/m0.0.native.o", b"stale previous\n"),
            ("out/partial", b"partial"),
        ],
    );
    let mut command = crate::util::runner_command();
    command
        .args(["--verbose", "s0", "job.json"])
        .current_dir(top.join("build"));
    let run = top.run(&mut command);
    run.expect_status(0).expect_stderr_has("kept \"");
    assert!(
        !run.stderr().contains("restored"),
        "the stale previous file was put back\n{}",
        run.report()
    );
    // This run's own output replaced the user's, as any run does; the stale
    // previous file never came back, and the staging is gone.
    assert_eq!(top.read(OUTPUT), b"new 0\n");
    assert!(!top.exists(&format!("build/{STAGING}")), "{}", run.report());
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "needs root, to run as two users with setpriv (tests/all.sh runs it as root)"]
fn another_users_planted_lock_staging_and_record_never_swap_your_files() {
    assert!(
        crate::util::is_root(),
        "this test runs the runner as two users with setpriv, which needs root"
    );
    let chown = |path: &Path, uid: u32, gid: u32| {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    };
    let (_bin, runner) = crate::util::runner_for_every_user();
    let top = scene("reclaim-two-users");
    fs::set_permissions(top.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // The victim (4001) and the planter (4002) share build/ (group 4000, 2775).
    let build = top.join("build");
    for entry in [
        "build",
        "build/job.json",
        "build/s0",
        "home",
        "home/config.sh",
    ] {
        chown(&top.join(entry), 4001, 4000);
    }
    fs::set_permissions(&build, fs::Permissions::from_mode(0o2775)).unwrap();
    fs::set_permissions(top.join("home"), fs::Permissions::from_mode(0o775)).unwrap();
    fs::set_permissions(
        top.join("home/config.sh"),
        fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    // The planter's lock is a hard link to the victim's own group-writable file (so
    // it is the victim's, by owner), beside a staging of the planter's, open to the
    // group, whose record points at the victim's home through a link.
    fs::hard_link(
        top.join("home/config.sh"),
        top.join(&format!("build/{STAGING}.lock")),
    )
    .unwrap();
    std::os::unix::fs::symlink("../home", top.join("build/H")).unwrap();
    let entries = serde_json::json!([record("H/config.sh", &top.join("home/config.sh"))]);
    for (name, bytes) in [
        ("recover.json", entries.to_string()),
        ("aside/H/config.sh", "echo planted\n".to_owned()),
    ] {
        top.write(&format!("build/{STAGING}/{name}"), bytes);
    }
    for entry in [
        STAGING.to_owned(),
        format!("{STAGING}/recover.json"),
        format!("{STAGING}/aside"),
        format!("{STAGING}/aside/H"),
        format!("{STAGING}/aside/H/config.sh"),
        "H".to_owned(),
    ] {
        chown(&build.join(&entry), 4002, 4000);
    }
    for dir in ["", "/aside", "/aside/H"] {
        fs::set_permissions(
            build.join(format!("{STAGING}{dir}")),
            fs::Permissions::from_mode(0o2775),
        )
        .unwrap();
    }
    let before = top.snapshot();
    let mut victims_run =
        crate::util::as_user(4001, Some(4000), "002", &runner, &["s0", "job.json"]);
    let run = top.run(victims_run.current_dir(&build));
    run.expect_status(0)
        .expect_stderr_has("dtlto-runner: warning: left abandoned staging \"");
    assert_eq!(top.read("home/config.sh"), b"the user's config\n");
    only_the_output_added(&top, &before, &run);
}

#[test]
fn a_directory_of_yours_renamed_to_a_staging_name_beside_a_lock_is_never_emptied() {
    // What a group member can do in a shared directory without the sticky bit: give
    // one of your private directories a staging's name, and one of your empty files
    // (a build stamp) a lock's. Each is yours; neither was made by the runner.
    let top = scene("reclaim-renamed-pair");
    top.write("build/tmp.private/notes", "your notes\n");
    top.write("build/.ninja_stamp", "");
    fs::set_permissions(
        top.join("build/tmp.private"),
        fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    fs::rename(
        top.join("build/tmp.private"),
        top.join(&format!("build/{STAGING}")),
    )
    .unwrap();
    fs::rename(
        top.join("build/.ninja_stamp"),
        top.join(&format!("build/{STAGING}.lock")),
    )
    .unwrap();
    let before = top.snapshot();
    let run = run_in_build(&top);
    run.expect_status(0).expect_stderr_has(&format!(
        "dtlto-runner: warning: left abandoned staging \"{}\" as it is: it does not name its lock \
         in a lock-id file, so this runner did not make it\n",
        top.join(&format!("build/{STAGING}")).display()
    ));
    only_the_output_added(&top, &before, &run);
    assert_eq!(top.read(&format!("build/{STAGING}/notes")), b"your notes\n");
}

/// Asserts that the run added its output and changed nothing else in the scene.
fn only_the_output_added(
    top: &TestDir,
    before: &std::collections::BTreeMap<String, crate::util::Entry>,
    run: &crate::util::Run,
) {
    assert_eq!(
        changes(before, &top.snapshot()),
        [format!("+ {OUTPUT}")],
        "{}",
        run.report()
    );
}
