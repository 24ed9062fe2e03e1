//! What a distributor may read: the job file, the sources the jobs use, the jobs'
//! declared inputs and, for `--module`, arguments that are regular files; nothing
//! else, not their directories' other names. Hostile `--module` guests try siblings,
//! subdirectories, `..`, the directory itself, listings, a descriptor of the
//! directory, and the parent of a directory argument; each must look absent, be
//! named by `--verbose`, and never reach the committed output.

use crate::util::hostile::{guest, Step, LAST_OPENED};
use crate::util::{changes, job_file_json, runner_command, Run, TestDir};

/// WASI's "no such file or directory".
const NOENT: u32 = 44;
/// The output `job_file_json(1)` declares.
const OUTPUT: &str = "m0.0.native.o";

/// A one-job scene with secrets beside the job file, under it and above it.
struct Scene {
    dir: TestDir,
    modules: TestDir,
}

impl Scene {
    fn new(name: &str) -> Scene {
        let dir = TestDir::new(name);
        dir.write("job.json", job_file_json(1));
        dir.write("s0", "source 0\n");
        dir.write("m0.o", "declared input\n");
        dir.write("secret", "TOKEN beside the job file\n");
        dir.write("sub/secret", "TOKEN in a subdirectory\n");
        Scene {
            dir,
            modules: TestDir::new(&format!("{name}-module")),
        }
    }

    /// `dtlto-runner --verbose [options] --module thief.wasm [args...]`.
    fn run(&self, steps: &[Step<'_>], options: &[&str], args: &[&str]) -> Run {
        let module = self.modules.write("thief.wasm", guest(steps));
        let mut command = runner_command();
        command
            .arg("--verbose")
            .args(options)
            .arg("--module")
            .arg(&module)
            .args(args)
            .current_dir(self.dir.path());
        self.dir.run(&mut command)
    }
}

fn copy<'a>(fd: u32, path: &'a str, to: u32) -> Step<'a> {
    Step::Copy {
        fd,
        path,
        to,
        out: OUTPUT,
    }
}

#[test]
fn a_module_reads_only_the_declared_files_and_everything_else_looks_absent() {
    let scene = Scene::new("scope-thief");
    let outside = scene.dir.path().parent().unwrap().join(format!(
        "{}-above",
        scene.dir.path().file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&outside, "TOKEN above the job file\n").unwrap();
    let above = format!("../{}", outside.file_name().unwrap().to_string_lossy());
    // The job directory is fd 3 (read-only), the staging fd 4. The declared source is
    // copied first; every later copy would overwrite it with a secret.
    let steps = [
        copy(3, "s0", 4),
        copy(3, "secret", 4),
        copy(3, "./secret", 4),
        copy(3, "sub/secret", 4),
        copy(3, "sub/../secret", 4),
        copy(3, &above, 4),
        copy(3, ".", 4),
        copy(3, "", 4),
        copy(3, "s0/", 4),
        Step::Stat {
            fd: 3,
            path: "secret",
        },
        Step::Stat { fd: 3, path: "sub" },
        Step::Stat { fd: 3, path: "." },
        Step::ReadDir { fd: 3 },
        // A descriptor of the directory itself, then a read relative to it.
        Step::OpenRead { fd: 3, path: "." },
        copy(LAST_OPENED, "secret", 4),
        // Declared names stay readable, however they are spelled.
        Step::Stat {
            fd: 3,
            path: "m0.o",
        },
        copy(3, "./m0.o", 4),
        Step::Stat {
            fd: 3,
            path: "job.json",
        },
    ];
    let before = scene.dir.snapshot();
    let run = scene.run(&steps, &[], &["s0", "job.json"]);
    let _ = std::fs::remove_file(&outside);
    run.expect_status(0);
    let errnos = crate::util::hostile::errnos(&run.stdout());
    let absent = NOENT;
    assert_eq!(
        errnos,
        [
            0, absent, absent, absent, absent, absent, absent, absent, absent, // copies
            absent, absent, absent, // stats
            0,      // the listing, empty
            absent, // the directory's descriptor
            8,      // the copy relative to it: a bad descriptor, as none was opened
            0, 0, 0, // declared names
        ],
        "{}",
        run.report()
    );
    assert_eq!(
        crate::util::hostile::growths(&run.stdout()),
        [0],
        "the listing showed names: {}",
        run.report()
    );
    // The output holds the declared input, never a secret.
    assert_eq!(scene.dir.read(OUTPUT), b"declared input\n");
    assert_eq!(
        changes(&before, &scene.dir.snapshot()),
        [format!("+ {OUTPUT}")]
    );
    // --verbose names each refused read by its host path.
    let stderr = run.stderr();
    let secret = scene.dir.join("secret");
    let shown = format!("undeclared input \"{}\"", secret.display());
    assert!(stderr.contains(&shown), "{}", run.report());
    assert!(
        stderr.contains(&format!(
            "undeclared input \"{}\"",
            scene.dir.join("sub/secret").display()
        )),
        "{}",
        run.report()
    );
    assert!(
        !stderr.contains("TOKEN") && !run.stdout().contains("TOKEN"),
        "{}",
        run.report()
    );
}

#[test]
fn a_directory_argument_grants_nothing_unless_read_names_it() {
    let scene = Scene::new("scope-dir-arg");
    let tree = TestDir::new("scope-dir-arg-tree");
    tree.write("inner/key", "TOKEN in a directory argument\n");
    tree.write("key", "TOKEN in a directory argument\n");
    let tree_arg = tree.path().join("inner").to_string_lossy().into_owned();
    // Without --read: only the job directory is preopened (fd 3), staging is fd 4;
    // the directory argument and its parent give the guest nothing.
    let before = (scene.dir.snapshot(), tree.snapshot());
    let run = scene.run(
        &[copy(3, "key", 4), copy(3, "../key", 4), copy(4, "key", 4)],
        &[],
        &[&tree_arg, "s0", "job.json"],
    );
    run.expect_status(0);
    let read_only: Vec<&str> = run
        .stderr()
        .lines()
        .filter(|l| l.starts_with("dtlto-runner: read-only"))
        .map(|l| l.to_owned())
        .collect::<Vec<_>>()
        .leak()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(read_only.len(), 1, "{}", run.report());
    let errnos = crate::util::hostile::errnos(&run.stdout());
    assert!(errnos.iter().all(|&e| e != 0), "{}", run.report());
    assert_eq!((scene.dir.snapshot(), tree.snapshot()), before);
    // With --read: the tree is preopened whole after the job directory (fd 4), the
    // staging moves to fd 5; its parent stays out of reach.
    let run = scene.run(
        &[copy(4, "../key", 5), copy(4, "key", 5)],
        &["--read", &tree_arg],
        &[&tree_arg, "s0", "job.json"],
    );
    run.expect_status(0).expect_stderr_has(&format!(
        "read-only  /dtlto/in1 = {} (the whole tree, --read)",
        tree.path().join("inner").display()
    ));
    // wasmtime-wasi refuses to leave a preopen: "operation not permitted".
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout())[0],
        63,
        "the parent of a --read directory was reached: {}",
        run.report()
    );
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout())[1],
        0,
        "{}",
        run.report()
    );
    assert_eq!(scene.dir.read(OUTPUT), b"TOKEN in a directory argument\n");
}

#[cfg(unix)]
#[test]
fn an_argument_that_is_a_link_grants_its_target_alone() {
    let scene = Scene::new("scope-link-arg");
    let store = TestDir::new("scope-link-arg-store");
    store.write("data.bin", "linked data\n");
    store.write("id_ed25519", "TOKEN private key\n");
    std::os::unix::fs::symlink(store.join("data.bin"), scene.dir.join("data.lnk")).unwrap();
    // fd 3: the job directory; fd 4: the store (the link's target's directory);
    // fd 5: the staging.
    let run = scene.run(
        &[
            copy(4, "id_ed25519", 5),
            copy(3, "data.lnk", 5),
            copy(4, "data.bin", 5),
        ],
        &[],
        &["data.lnk", "s0", "job.json"],
    );
    run.expect_status(0);
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout()),
        [NOENT, NOENT, 0],
        "{}",
        run.report()
    );
    assert_eq!(scene.dir.read(OUTPUT), b"linked data\n");
}

/// The embedded guest reads what it needs through the same checks: a mock run still
/// copies its source, and validate still reads its job file.
#[test]
fn the_embedded_guest_still_reads_its_job_file_and_sources() {
    let scene = Scene::new("scope-embedded");
    let mut command = runner_command();
    command
        .args(["s0", "job.json"])
        .current_dir(scene.dir.path());
    scene.dir.run(&mut command).expect_status(0);
    assert_eq!(scene.dir.read(OUTPUT), b"source 0\n");
    let mut command = runner_command();
    command
        .args(["validate", "job.json"])
        .current_dir(scene.dir.path());
    scene.dir.run(&mut command).expect_status(0);
}
