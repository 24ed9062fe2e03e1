//! Hostile `--module` distributors against the host: memory spread over several
//! memories, huge tables, too many memories, a guest that spins, one that writes
//! without end, one that floods the refusal, refusals of huge paths, iovec tables
//! past memory or too long, a stat of a scoped preopen, modules using proposals
//! this wasmtime build would abort on; and, on Windows, paths Windows would read as
//! drives, devices or streams. Each test states the exit status, the message,
//! (where memory is the point) the runner's peak memory, and an unchanged tree.

use crate::util::hostile::{growths, guest, write, Step};
use crate::util::{changes, job_file_json, run_runner, TestDir};
use std::time::{Duration, Instant};

/// The staging directory's preopen: the job file's directory is fd 3.
const STAGE: u32 = 4;

/// A one-job scene (`job.json` declaring `m0.0.native.o`, source `s0`) and the
/// module for `steps`.
struct Scene {
    dir: TestDir,
    module: String,
    _modules: TestDir,
}

impl Scene {
    fn new(name: &str, steps: &[Step<'_>]) -> Scene {
        let dir = TestDir::new(name);
        dir.write("job.json", job_file_json(1));
        dir.write("s0", "source\n");
        let modules = TestDir::new(&format!("{name}-module"));
        let module = modules.write("hostile.wasm", guest(steps));
        Scene {
            dir,
            module: module.to_string_lossy().into_owned(),
            _modules: modules,
        }
    }

    /// `dtlto-runner [options] --module hostile.wasm s0 job.json`.
    fn command(&self, options: &[&str]) -> std::process::Command {
        let mut command = crate::util::runner_command();
        command
            .args(options)
            .args(["--module", &self.module, "s0", "job.json"])
            .current_dir(self.dir.path());
        command
    }
}

#[cfg(unix)]
const MIB: u64 = 1024;

#[cfg(unix)]
#[test]
fn memory_is_capped_across_all_of_a_guests_memories() {
    // 1.25 GiB in each of two extra memories, every page touched.
    let scene = Scene::new(
        "hostile-memories",
        &[
            write(STAGE, "m0.0.native.o", "x"),
            Step::GrowMemories {
                count: 2,
                pages: 20480,
            },
            Step::Trap,
        ],
    );
    let before = scene.dir.watch();
    let (run, peak_kib) = scene.dir.run_measured(&mut scene.command(&[]));
    assert_eq!(growths(&run.stdout()), [0, -1], "{}", run.report());
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor tried to grow its memory to 2.5 GiB in all, beyond \
         the 2 GiB that a distributor's memories may take together; nothing was committed",
    );
    assert!(
        peak_kib < 2048 * MIB,
        "peak {peak_kib} KiB: past the 2 GiB cap\n{}",
        run.report()
    );
    before.assert_unchanged();
}

#[cfg(unix)]
#[test]
fn table_elements_are_capped_across_all_of_a_guests_tables() {
    let scene = Scene::new(
        "hostile-table",
        &[
            Step::GrowTable {
                elements: 100_000_000,
            },
            Step::Trap,
        ],
    );
    let before = scene.dir.watch();
    let (run, peak_kib) = scene.dir.run_measured(&mut scene.command(&[]));
    assert_eq!(growths(&run.stdout()), [-1], "{}", run.report());
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor tried to grow its tables to 100000000 elements in \
         all, beyond the 1048576 that a distributor's tables may hold together; nothing was committed",
    );
    assert!(
        peak_kib < 256 * MIB,
        "peak {peak_kib} KiB for a refused table\n{}",
        run.report()
    );
    before.assert_unchanged();
}

#[test]
fn a_guest_with_too_many_memories_is_refused_before_it_runs() {
    let scene = Scene::new(
        "hostile-many-memories",
        &[Step::GrowMemories { count: 5, pages: 0 }],
    );
    let before = scene.dir.watch();
    let run = scene.dir.run(&mut scene.command(&[]));
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor declares 6 memories; at most 4 are allowed",
    );
    assert!(run.stdout().is_empty(), "the guest ran\n{}", run.report());
    before.assert_unchanged();
}

#[test]
fn a_guest_with_too_many_tables_is_refused_before_it_runs() {
    let tables: Vec<Step<'_>> = (0..5).map(|_| Step::GrowTable { elements: 0 }).collect();
    let scene = Scene::new("hostile-many-tables", &tables);
    let before = scene.dir.watch();
    let run = scene.dir.run(&mut scene.command(&[]));
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor declares 5 tables; at most 4 are allowed",
    );
    assert!(run.stdout().is_empty(), "the guest ran\n{}", run.report());
    before.assert_unchanged();
}

#[test]
fn a_spinning_guest_is_ended_by_the_timeout_like_a_signal() {
    let scene = Scene::new(
        "hostile-spin",
        &[write(STAGE, "m0.0.native.o", "x"), Step::Spin],
    );
    let before = scene.dir.watch();
    let started = Instant::now();
    let run = scene.dir.run(&mut scene.command(&["--timeout", "1"]));
    let took = started.elapsed();
    run.expect_status(124).expect_stderr_has(
        "dtlto-runner: timed out after 1 s (--timeout): nothing was committed, and the staging was removed\n",
    );
    assert!(took < Duration::from_secs(10), "the timeout took {took:?}");
    before.assert_unchanged();
}

#[test]
fn the_timeout_also_ends_a_guest_waiting_in_a_host_call_and_comes_from_the_environment() {
    let dir = TestDir::new("hostile-timeout-env");
    dir.write("job.json", job_file_json(1));
    dir.write("s0", "source\n");
    let before = dir.snapshot();
    let run = dir.run(
        crate::util::runner_command()
            .args(["--fault=delay=60000", "s0", "job.json"])
            .env("DTLTO_RUNNER_TIMEOUT", "0.5"),
    );
    // The guest is still in its host call when the grace runs out: it could still
    // write, so its staging is left as it is (never removed under a writer), and
    // the next run in the directory reclaims it.
    run.expect_status(124).expect_stderr_has(
        "dtlto-runner: timed out after 0.5 s (--timeout): nothing was committed; the \
         distributor did not stop in time, so its staging is left for the next run in that \
         directory to remove: \"",
    );
    let next = run_runner(&dir, &["--verbose", "s0", "job.json"]);
    next.expect_status(0)
        .expect_stderr_has("reclaimed abandoned staging");
    assert_eq!(changes(&before, &dir.snapshot()), ["+ m0.0.native.o"]);
}

#[test]
fn an_endless_writer_is_stopped_at_the_output_cap() {
    let scene = Scene::new(
        "hostile-writer",
        &[Step::WriteForever {
            fd: STAGE,
            path: "m0.0.native.o",
        }],
    );
    let before = scene.dir.watch();
    let run = scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "1000000"]));
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor tried to stage more than 1000000 bytes of output \
         (--max-output-bytes 1000000); nothing was committed",
    );
    before.assert_unchanged();
}

#[test]
fn the_output_cap_counts_staged_files_not_stdout_and_comes_from_the_environment() {
    let dir = TestDir::new("hostile-cap-env");
    dir.write("job.json", job_file_json(2));
    dir.write("s0", vec![b'a'; 600_000]);
    dir.write("s1", vec![b'b'; 600_000]);
    let before = dir.watch();
    let capped = |cap: &str, args: &[&str]| {
        dir.run(
            crate::util::runner_command()
                .args(args)
                .env("DTLTO_RUNNER_MAX_OUTPUT_BYTES", cap),
        )
    };
    capped("1000000", &["s0", "s1", "job.json"])
        .expect_status(1)
        .expect_stderr_has("(--max-output-bytes 1000000); nothing was committed");
    before.assert_unchanged();
    // validate prints more than the cap, on stdout, which is not staged.
    capped("10", &["validate", "job.json"]).expect_status(0);
    capped("1200000", &["s0", "s1", "job.json"]).expect_status(0);
    assert_eq!(
        changes(&before, &dir.snapshot()),
        ["+ m0.0.native.o", "+ m1.1.native.o"]
    );
}

#[test]
fn a_refusal_of_many_undeclared_paths_lists_twenty_and_counts_the_rest() {
    let scene = Scene::new(
        "hostile-flood",
        &[Step::ManyFiles {
            fd: STAGE,
            count: 5000,
            keep_open: false,
        }],
    );
    let before = scene.dir.watch();
    let run = scene.dir.run(&mut scene.command(&[]));
    run.expect_status(1)
        .expect_stderr_has("the distributor wrote 5000 path(s) the job file does not declare")
        .expect_stderr_has("u00019\"\n  ... and 4980 more\n");
    let lines = run.stderr().lines().count();
    assert_eq!(lines, 22, "{}", run.report());
    before.assert_unchanged();
}

/// Drive prefixes, verbatim and device namespaces, UNC shares, DOS device names,
/// streams and names Windows trims: every WASI path call on each, in the job
/// directory (read-only) and the staging (writable).
#[cfg(windows)]
#[test]
fn windows_drive_device_and_stream_paths_are_refused_in_every_path_call() {
    use crate::util::hostile::PATH_CALLS;
    const PATHS: &[&str] = &[
        "C:foo",
        "C:\\",
        "C:\\Windows\\win.ini",
        "\\\\?\\C:\\",
        "\\\\.\\",
        "\\\\.\\NUL",
        "Z:..",
        "\\\\server\\share\\x",
        "NUL",
        "CON",
        "COM1",
        "aux.txt",
        "m0.0.native.o:stream",
        "x.o.",
    ];
    let mut steps = Vec::new();
    for fd in [3, STAGE] {
        for path in PATHS {
            steps.push(Step::EveryPathCall { fd, path });
        }
    }
    let scene = Scene::new("hostile-windows-paths", &steps);
    let outside = TestDir::new("hostile-windows-outside");
    outside.write("secret", "untouched");
    let before = (scene.dir.snapshot(), outside.snapshot());
    let run = scene.dir.run(&mut scene.command(&["--verbose"]));
    let errnos = crate::util::hostile::errnos(&run.stdout());
    let calls = 2 * PATHS.len() * PATH_CALLS.len();
    assert_eq!(errnos.len(), calls, "{}", run.report());
    assert!(
        errnos.iter().all(|&e| e == 63),
        "a call got past the check: {errnos:?}\n{}",
        run.report()
    );
    let refused = run
        .stderr()
        .matches("dtlto-runner: refused the guest path ")
        .count();
    assert_eq!(refused, calls, "{}", run.report());
    run.expect_status(0);
    assert_eq!((scene.dir.snapshot(), outside.snapshot()), before);
}

// Windows (wine) makes no link to a target that does not exist.
#[cfg(unix)]
#[test]
fn symbolic_links_count_towards_the_output_cap() {
    // 2,000 links with 4,000-byte targets: 8 MB of link content against a 1 MB cap.
    let links = Step::ManyLinks {
        fd: STAGE,
        count: 2000,
        target_len: 4000,
    };
    let scene = Scene::new("hostile-links", &[links]);
    let before = scene.dir.watch();
    let run = scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "1000000"]));
    run.expect_status(1).expect_stderr_has(
        "dtlto-runner: error: the distributor tried to stage more than 1000000 bytes of output",
    );
    before.assert_unchanged();
}

/// 64 GiB, where one byte makes a sparse file of that size (on NTFS a dense one).
const FAR: u64 = 64 << 30;

#[test]
fn a_write_far_past_the_end_is_charged_the_size_it_would_reach() {
    for (name, seek) in [("pwrite", false), ("seek", true)] {
        let scene = Scene::new(
            &format!("hostile-sparse-{name}"),
            &[Step::WriteAt {
                fd: STAGE,
                path: "m0.0.native.o",
                offset: FAR,
                content: "x",
                seek,
            }],
        );
        let before = scene.dir.watch();
        let run = scene
            .dir
            .run(&mut scene.command(&["--max-output-bytes", "1048576"]));
        run.expect_status(1).expect_stderr_has(
            "dtlto-runner: error: the distributor tried to stage more than 1048576 bytes of \
             output (--max-output-bytes 1048576); nothing was committed",
        );
        before.assert_unchanged();
        assert!(crate::util::staging_dirs(scene.dir.path()).is_empty());
    }
    // Growing by set-size is charged alike.
    let scene = Scene::new(
        "hostile-set-size",
        &[Step::SetSize {
            fd: STAGE,
            path: "m0.0.native.o",
            size: FAR,
        }],
    );
    let before = scene.dir.watch();
    scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "1048576"]))
        .expect_status(1)
        .expect_stderr_has("(--max-output-bytes 1048576); nothing was committed");
    before.assert_unchanged();
}

#[test]
fn writes_are_charged_what_they_write_so_an_exact_fit_is_committed() {
    // 64 bytes in two-iovec writes, as wasi-libc's stdio writes: a buffer and the
    // rest; wasmtime-wasi writes the first non-empty one per call.
    let first = "a".repeat(40);
    let second = "b".repeat(24);
    let scene = Scene::new(
        "hostile-two-iovecs",
        &[Step::WriteTwoIovecs {
            fd: STAGE,
            path: "m0.0.native.o",
            first: &first,
            second: &second,
        }],
    );
    let run = scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "64"]));
    run.expect_status(0);
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout()),
        [0],
        "{}",
        run.report()
    );
    assert_eq!(
        scene.dir.read("m0.0.native.o"),
        format!("{first}{second}").as_bytes()
    );
    // Rewriting what is there does not grow it: 64 bytes again, at offset 0.
    let scene = Scene::new(
        "hostile-rewrite",
        &[
            write(STAGE, "m0.0.native.o", &first),
            Step::WriteAt {
                fd: STAGE,
                path: "m0.0.native.o",
                offset: 0,
                content: &first,
                seek: false,
            },
        ],
    );
    scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "40"]))
        .expect_status(0);
    // One byte more is refused.
    let scene = Scene::new(
        "hostile-one-more",
        &[Step::WriteTwoIovecs {
            fd: STAGE,
            path: "m0.0.native.o",
            first: &first,
            second: &second,
        }],
    );
    scene
        .dir
        .run(&mut scene.command(&["--max-output-bytes", "63"]))
        .expect_status(1)
        .expect_stderr_has("(--max-output-bytes 63); nothing was committed");
}

#[test]
fn entries_created_are_bounded_by_max_entries_and_its_variable() {
    let scene = Scene::new(
        "hostile-entries",
        &[Step::ManyFiles {
            fd: STAGE,
            count: 50,
            keep_open: false,
        }],
    );
    let before = scene.dir.watch();
    scene
        .dir
        .run(&mut scene.command(&["--max-entries", "10"]))
        .expect_status(1)
        .expect_stderr_has(
            "dtlto-runner: error: the distributor tried to create more than 10 files, \
             directories and links (--max-entries 10); nothing was committed",
        );
    scene
        .dir
        .run(scene.command(&[]).env("DTLTO_RUNNER_MAX_ENTRIES", "49"))
        .expect_status(1)
        .expect_stderr_has("(--max-entries 49)");
    before.assert_unchanged();
    // Reopening an existing file to write it creates nothing: one entry suffices.
    let scene = Scene::new(
        "hostile-entries-reopen",
        &[
            write(STAGE, "m0.0.native.o", "a"),
            write(STAGE, "m0.0.native.o", "b"),
        ],
    );
    scene
        .dir
        .run(&mut scene.command(&["--max-entries", "1"]))
        .expect_status(0);
    assert_eq!(scene.dir.read("m0.0.native.o"), b"b");
}

#[cfg(unix)]
#[test]
fn a_module_that_is_not_a_regular_file_or_too_big_is_refused_before_reading() {
    let scene = Scene::new("hostile-module-file", &[Step::Exit(0)]);
    let before = scene.dir.watch();
    let refused = |module: &str, says: &str| {
        let started = Instant::now();
        let mut command = crate::util::runner_command();
        command
            .args(["--module", module, "s0", "job.json"])
            .current_dir(scene.dir.path());
        scene
            .dir
            .run(&mut command)
            .expect_status(1)
            .expect_stderr_has(says);
        assert!(started.elapsed() < Duration::from_secs(5));
    };
    refused(
        "/dev/zero",
        "dtlto-runner: error: cannot read module \"/dev/zero\": it is a character device, \
         not a regular file",
    );
    crate::util::make_fifo(&scene.dir.join("fifo.wasm"));
    refused(
        "fifo.wasm",
        "cannot read module \"fifo.wasm\": it is a FIFO",
    );
    let big = std::fs::File::create(scene.dir.join("big.wasm")).unwrap();
    big.set_len((256 << 20) + 1).unwrap();
    refused(
        "big.wasm",
        "cannot read module \"big.wasm\": it holds 268435457 bytes; a module may hold at \
         most 268435456 (256 MiB)",
    );
    let _ = std::fs::remove_file(scene.dir.join("big.wasm"));
    let _ = std::fs::remove_file(scene.dir.join("fifo.wasm"));
    before.assert_unchanged();
}

/// A scene with surroundings: `build/` (the job file, its source and the outputs,
/// the run's working directory), a sibling directory and a home stand-in (`HOME`),
/// all under one root that is snapshotted whole; and a module from outside it.
struct Surroundings {
    root: TestDir,
    module: String,
    _modules: TestDir,
}

impl Surroundings {
    fn new(name: &str, module: Vec<u8>) -> Surroundings {
        let root = TestDir::new(name);
        root.write("build/job.json", job_file_json(1));
        root.write("build/s0", "source\n");
        root.write("sibling/notes.txt", "keep\n");
        root.write("home/.profile", "keep\n");
        let modules = TestDir::new(&format!("{name}-module"));
        let module = modules.write("hostile.wasm", module);
        Surroundings {
            root,
            module: module.to_string_lossy().into_owned(),
            _modules: modules,
        }
    }

    fn with_steps(name: &str, steps: &[Step<'_>]) -> Surroundings {
        Surroundings::new(name, guest(steps))
    }

    /// `dtlto-runner [options] --module hostile.wasm s0 job.json` in `build/`.
    fn command(&self, options: &[&str]) -> std::process::Command {
        let mut command = crate::util::runner_command();
        command
            .args(options)
            .args(["--module", &self.module, "s0", "job.json"])
            .current_dir(self.root.join("build"))
            .env("HOME", self.root.join("home"));
        command
    }
}

/// The job file's directory, a read-only preopen scoped to the job file and `s0`.
const JOB_DIR: u32 = 3;

#[cfg(unix)]
#[test]
fn refused_paths_kept_for_messages_are_bounded_in_bytes() {
    // A guest of 1.19 MiB of memory opens an undeclared path of 1 MiB 300 times.
    const LEN: u32 = 1 << 20;
    let scene = Surroundings::with_steps(
        "hostile-long-refusals",
        &[
            write(STAGE, "m0.0.native.o", "x"),
            Step::LongPathOpens {
                fd: JOB_DIR,
                len: LEN,
                count: 300,
            },
        ],
    );
    let before = scene.root.snapshot();
    let (run, peak_kib) = scene.root.run_measured(&mut scene.command(&["--verbose"]));
    assert!(
        peak_kib < 256 * MIB,
        "peak {peak_kib} KiB for 300 refusals of a 1 MiB path: {} bytes of stderr",
        run.stderr().len()
    );
    run.expect_status(0);
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout()),
        [0, 44],
        "{}",
        run.report()
    );
    // Each refusal is named, its path cut to its first 256 bytes.
    let a256 = "a".repeat(256);
    let line = format!(
        "dtlto-runner: refused the guest path path_open \"{a256}\"... ({LEN} bytes, the first \
         256 shown): undeclared input \""
    );
    assert_eq!(run.stderr().matches(&line).count(), 300, "{}", run.report());
    assert!(
        run.stderr().len() < 300 * 2048,
        "{} bytes of refusals",
        run.stderr().len()
    );
    assert_eq!(
        changes(&before, &scene.root.snapshot()),
        only_the_output_added()
    );
}

#[test]
fn a_write_whose_iovec_table_is_refused_writes_nothing_past_the_cap() {
    // The module's memory is 2 pages: a table at its last 8 bytes holds one iovec
    // (64 KiB from offset 1024) and runs past memory for the rest of its 1024
    // entries; a table of 1025 entries is one more than IOV_MAX.
    let scene = Surroundings::with_steps(
        "hostile-iovecs",
        &[
            write(STAGE, "m0.0.native.o", "x"),
            Step::WriteIovecs {
                fd: STAGE,
                path: "m0.0.native.o",
                table: 2 * 65536 - 8,
                count: 1024,
                len: 65536,
            },
            Step::WriteIovecs {
                fd: STAGE,
                path: "m0.0.native.o",
                table: 65536,
                count: 1025,
                len: 65536,
            },
        ],
    );
    let before = scene.root.snapshot();
    let run = scene
        .root
        .run(&mut scene.command(&["--max-output-bytes", "1000"]));
    // EFAULT for the table past memory, EINVAL for the one too long: before
    // anything is written, so the cap is never passed and the run commits.
    run.expect_status(0);
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout()),
        [0, 21, 28],
        "{}",
        run.report()
    );
    assert_eq!(scene.root.read("build/m0.0.native.o"), b"x");
    assert_eq!(
        changes(&before, &scene.root.snapshot()),
        only_the_output_added()
    );
}

#[test]
fn a_scoped_read_preopen_stats_as_a_directory_with_nothing_of_the_hosts() {
    let scene = Surroundings::with_steps(
        "hostile-preopen-stat",
        &[
            Step::FdFilestat { fd: JOB_DIR },
            write(STAGE, "m0.0.native.o", "x"),
        ],
    );
    let before = scene.root.snapshot();
    let run = scene.root.run(&mut scene.command(&[]));
    run.expect_status(0);
    assert_eq!(
        crate::util::hostile::errnos(&run.stdout()),
        [0, 0],
        "{}",
        run.report()
    );
    // A directory (3), and device, inode, links, size and times all 0.
    assert_eq!(growths(&run.stdout()), [3, 0], "{}", run.report());
    assert_eq!(
        changes(&before, &scene.root.snapshot()),
        only_the_output_added()
    );
}

/// wasmtime 48.0.8 built without `gc` accepts the GC proposal's subtypes, and its
/// run-time subtype check is a stub that aborts the process
/// (GHSA-rc4p-x33f-vpr2): a `call_indirect` for the supertype that finds a function
/// of the subtype in its table. Without `threads`, atomic wait/notify are stubs
/// too (GHSA-2674-w29h-wqvj), reached only if threads are enabled; they and shared
/// memories are refused as well, in case a later default enables them.
const ABORTING_MODULES: &[(&str, &str, &str)] = &[
    (
        "gc-subtype",
        r#"(module
  (type $super (sub (func)))
  (type $sub (sub $super (func)))
  (table 1 funcref)
  (elem (i32.const 0) $f)
  (memory (export "memory") 1)
  (func $f (type $sub))
  (func (export "_start")
    (call_indirect (type $super) (i32.const 0))))"#,
        "gc proposal",
    ),
    (
        "atomic-notify",
        r#"(module
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1)))))"#,
        "threads",
    ),
    (
        "shared-memory",
        r#"(module
  (memory (export "memory") 1 1 shared)
  (func (export "_start")))"#,
        "threads",
    ),
];

#[test]
fn modules_using_proposals_this_build_cannot_run_are_refused_not_aborted() {
    for &(name, wat, says) in ABORTING_MODULES {
        let module = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}"));
        let scene = Surroundings::new(&format!("hostile-{name}"), module);
        let before = scene.root.watch();
        let run = scene.root.run(&mut scene.command(&[]));
        run.expect_status(1)
            .expect_stderr_has(&format!(
                "dtlto-runner: error: \"{}\" is not a usable wasm module: ",
                scene.module
            ))
            .expect_stderr_has(says);
        assert!(run.stdout().is_empty(), "{name} ran\n{}", run.report());
        before.assert_unchanged_with(|| name.to_string());
        assert!(crate::util::staging_dirs(&scene.root.join("build")).is_empty());
    }
}

/// The one change a scene with one staged output may show: `build/m0.0.native.o`
/// added (spelt as the host's snapshot names it).
fn only_the_output_added() -> [String; 1] {
    [format!(
        "+ {}",
        std::path::Path::new("build")
            .join("m0.0.native.o")
            .display()
    )]
}
