//! remote mode against a real REAPI engine (buildbox-casd and buildbox-run, started
//! with tools/reapi-engine.sh: one for the test run, which each test uses in a cache
//! namespace of its own, and one more for each test that stops, kills or reconfigures
//! it), with real clang and lld 23: the links, the cache, and the service failing in
//! every way the issue names.

use crate::util::job_file::write_job_file;
use crate::util::llvm::{
    assert_objects_as_local_py_makes, bitcode, job_file, llvm, run_app, strings, Llvm, PROGRAM,
    PROGRAM_OUTPUT,
};
use crate::util::reapi::{
    engine_bin, engine_script, free_port, Engine, Service, ThrottlingProxy, TlsProxy, TOKEN,
};
use crate::util::unix_host::{is_root, send_signal};
use crate::util::{
    left_then_reclaimed, run_runner, runner_exe, spawn_runner, staging_left, wait_until, Run,
    TestDir,
};
use std::process::Command;
use std::time::Duration;

/// `clang -flto=thin -fuse-ld=lld main.o helper.o twice.o -o app` through
/// `dtlto-runner --verbose remote --endpoint ENDPOINT [--cache-salt SALT] --jobs=2`.
fn link(llvm: &Llvm, dir: &TestDir, service: &Service, extra: &[&str]) -> Run {
    link_jobs(llvm, dir, service, 2, extra)
}

/// `link`, with `--jobs=JOBS`.
fn link_jobs(llvm: &Llvm, dir: &TestDir, service: &Service, jobs: usize, extra: &[&str]) -> Run {
    let words = link_words(
        llvm,
        &remote_words(service, &["--jobs", &jobs.to_string()]),
        extra,
    );
    dir.run(Command::new(&words[0]).args(&words[1..]))
}

/// `--verbose`, then the service's `remote` words and `more`.
fn remote_words(service: &Service, more: &[&str]) -> Vec<String> {
    let mut words = vec!["--verbose".to_owned()];
    words.extend(service.remote(more));
    words
}

/// The runner with these words, in `dir`.
fn run_words(dir: &TestDir, words: &[String]) -> Run {
    run_runner(dir, &words.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The words of `clang -flto=thin -fuse-ld=lld -o app main.o helper.o twice.o`
/// through the runner with `distributor` arguments, then `extra`.
fn link_words(llvm: &Llvm, distributor: &[String], extra: &[&str]) -> Vec<String> {
    let mut words = vec![llvm.tool("clang").display().to_string()];
    let program = [
        "-flto=thin",
        "-fuse-ld=lld",
        "-o",
        "app",
        "main.o",
        "helper.o",
        "twice.o",
    ];
    words.extend(program.map(String::from));
    words.push(format!("-fthinlto-distributor={}", runner_exe().display()));
    words.extend(
        distributor
            .iter()
            .map(|a| format!("-Xthinlto-distributor={a}")),
    );
    words.extend(extra.iter().map(|a| a.to_string()));
    words
}

/// Whether the engine's CAS holds a blob with these bytes.
fn in_cas(engine: &Engine, bytes: &[u8]) -> bool {
    use std::io::Write;
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    sha.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = sha.wait_with_output().unwrap();
    let hash = String::from_utf8_lossy(&out.stdout)[..64].to_owned();
    let listing = Command::new("find")
        .arg(engine.cache())
        .args(["-type", "f", "-name"])
        .arg(format!("*{}", &hash[2..]))
        .output()
        .unwrap();
    !listing.stdout.is_empty()
}

/// A job file of hand-made jobs in `dir`: (args, inputs, outputs) each, after
/// `common_args`. Each job also reads a stand-in summary index, `jobK.thinlto.bc`
/// (a job file's jobs read at least a module and its index).
fn jobs_json(dir: &TestDir, common_args: &[&str], jobs: &[(&[&str], &[&str], &[&str])]) -> String {
    let jobs: Vec<serde_json::Value> = jobs
        .iter()
        .enumerate()
        .map(|(k, (args, inputs, outputs))| {
            let index = format!("job{k}.thinlto.bc");
            dir.write(&index, format!("index {k}\n"));
            let mut inputs: Vec<String> = inputs.iter().map(|i| i.to_string()).collect();
            inputs.push(index);
            serde_json::json!({"args": args, "inputs": inputs, "outputs": outputs})
        })
        .collect();
    write_job_file(dir, common_args, jobs)
}

#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn clang_links_through_remote_mode_with_the_objects_local_mode_makes_and_sends_nothing_undeclared()
{
    let llvm = llvm();
    let (engine, service) = Engine::shared("link");
    let dir = TestDir::new("remote-link");
    bitcode(&llvm, &dir);
    // Beside the inputs, never declared: it must not reach the service.
    let secret = b"a file beside the inputs that no job declares 8d1f\n";
    dir.write("undeclared.txt", secret);
    let run = link(&llvm, &dir, &service, &["-Wl,--save-temps"]);
    run.expect_status(0).expect_stderr_has("executed");
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT, "{}", engine.log());
    assert_eq!(staging_left(&dir), Vec::<String>::new());
    assert!(
        !in_cas(engine, secret),
        "an undeclared file reached the CAS"
    );

    // The same jobs compiled here, as local mode (and local.py) would: the same bytes.
    let (_, doc) = job_file(&dir);
    let jobs = doc["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3);
    for job in jobs {
        assert!(in_cas(engine, &dir.read(&strings(&job["inputs"])[0])));
    }
    assert_objects_as_local_py_makes(&dir, &doc, "remote mode");
}

/// The names in `dir` that clang's -save-temps gives a backend compile's temporaries.
fn temporaries(dir: &TestDir) -> Vec<String> {
    let names = dir.snapshot().into_keys();
    names
        .filter(|n| !n.contains('/') && n.contains(".s"))
        .collect()
}

/// LLVM's own tests pass `--save-temps` to the backend compiles and expect their
/// temporaries in the working directory, as local.py leaves them: remote mode brings
/// them back, the same files local mode leaves, replacing a link there without
/// following it and leaving standing what it must not replace.
#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn save_temps_temporaries_come_back_as_local_mode_leaves_them_and_replace_no_link_target() {
    let llvm = llvm();
    let (_, service) = Engine::shared("save-temps");
    let here = TestDir::new("remote-save-temps-local");
    bitcode(&llvm, &here);
    let save_temps = "-Wl,--thinlto-remote-compiler-arg=--save-temps";
    let words = link_words(&llvm, &["local".to_owned()], &[save_temps]);
    here.run(Command::new(&words[0]).args(&words[1..]))
        .expect_status(0);
    let expected = temporaries(&here);
    assert_eq!(expected.len(), 3 * 8, "{}", here.listing());

    let there = TestDir::new("remote-save-temps");
    for (name, _) in PROGRAM {
        let object = format!("{name}.o");
        there.write(&object, here.read(&object));
    }
    // A link where a temporary lands, to a file that must stay as it is; a
    // directory where another lands, which must stand.
    there.write("elsewhere/kept.txt", "not to be written through a link\n");
    std::os::unix::fs::symlink("elsewhere/kept.txt", there.join("helper.s.resolution.txt"))
        .unwrap();
    std::fs::create_dir(there.join("twice.s.4.opt.bc")).unwrap();
    let run = link(&llvm, &there, &service, &[save_temps]);
    run.expect_status(0)
        .expect_stderr_has("23 -save-temps temporaries brought back")
        .expect_stderr_has("warning: a -save-temps temporary was not brought back")
        .expect_stderr_has("twice.s.4.opt.bc\": a directory is there");
    assert_eq!(run_app(&there), PROGRAM_OUTPUT);
    assert_eq!(staging_left(&there), Vec::<String>::new());
    assert_eq!(temporaries(&there), expected, "{}", there.listing());
    assert_eq!(
        there.read("elsewhere/kept.txt"),
        b"not to be written through a link\n"
    );
    assert!(there.join("twice.s.4.opt.bc").is_dir());
    let link = std::fs::symlink_metadata(there.join("helper.s.resolution.txt")).unwrap();
    assert!(link.is_file(), "the link was not replaced by the temporary");
    // The same temporaries, byte for byte.
    for name in expected.iter().filter(|n| *n != "twice.s.4.opt.bc") {
        assert!(
            there.read(name) == here.read(name),
            "{name} differs from local mode's"
        );
    }
}

/// `tools/reapi-engine.sh start --fuse-staging` (what the benchmark measures): each
/// action's input root mounted through FUSE, shipped compiler and all; the link's
/// objects are still local.py's.
#[test]
#[ignore = "needs the REAPI engine, LLVM 23 and /dev/fuse: tests/all.sh installs them and runs the ignored tests"]
fn an_engine_staging_through_fuse_links_the_same() {
    let llvm = llvm();
    let engine = Engine::start_with(
        TestDir::new("remote-engine-fuse"),
        &["--fuse-staging"],
        &["--log-level=debug"],
    );
    let dir = TestDir::new("remote-fuse");
    bitcode(&llvm, &dir);
    link(&llvm, &dir, &engine.service(), &["-Wl,--save-temps"])
        .expect_status(0)
        .expect_stderr_has("executed");
    assert!(
        engine.log().contains("FUSE stager running"),
        "the engine did not stage through FUSE:\n{}",
        engine.log()
    );
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT);
    let (_, doc) = job_file(&dir);
    assert_objects_as_local_py_makes(&dir, &doc, "remote mode through FUSE staging");
}

/// A busy service refuses calls with UNAVAILABLE (an HTTP 503 from its proxy) or
/// RESOURCE_EXHAUSTED: each is tried again after a bounded backoff (ByteStream's
/// uploads of the toolchain and reads included), and the links succeed, with the
/// objects local.py makes. One job at a time: a refused call's retry comes at least
/// 100 ms later, when the proxy lets one through.
#[test]
#[ignore = "needs the REAPI engine, LLVM 23 and nginx: tests/all.sh installs them and runs the ignored tests"]
fn calls_a_busy_service_refuses_are_tried_again_and_the_links_succeed() {
    let llvm = llvm();
    let (engine, service) = Engine::shared("busy");
    let proxy = ThrottlingProxy::start(engine);
    for (endpoint, name) in [
        (&proxy.unavailable, "remote-busy-unavailable"),
        (&proxy.exhausted, "remote-busy-exhausted"),
    ] {
        let dir = TestDir::new(name);
        bitcode(&llvm, &dir);
        let (_, refused_before) = proxy.calls();
        let run = link_jobs(
            &llvm,
            &dir,
            &service.through(endpoint),
            1,
            &["-Wl,--save-temps"],
        );
        run.expect_status(0);
        let (passed, refused) = proxy.calls();
        assert!(
            refused > refused_before,
            "the proxy refused no call ({passed} passed): nothing was tried again\n{}",
            run.report()
        );
        assert_eq!(run_app(&dir), PROGRAM_OUTPUT);
        let (_, doc) = job_file(&dir);
        assert_objects_as_local_py_makes(&dir, &doc, name);
    }
}

/// On a terminal (a pseudo-terminal from util-linux's `script`), remote mode keeps
/// one line on stderr up to date (done, cached, running, failed) and ends it; on
/// anything else it prints none.
#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn a_terminal_gets_one_progress_line_that_updates_and_a_pipe_gets_none() {
    let llvm = llvm();
    let (_, service) = Engine::shared("progress");
    let dir = TestDir::new("remote-progress");
    bitcode(&llvm, &dir);
    let words = link_words(&llvm, &service.remote(&[]), &[]);
    let line = words
        .iter()
        .map(|w| format!("'{}'", w.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let on_a_terminal = || {
        let run = dir.run(Command::new("script").args(["-qefc", &line, "/dev/null"]));
        run.expect_status(0);
        run.stdout()
    };
    let shown = on_a_terminal();
    for update in [
        "\r\x1b[Kdtlto-runner: remote: 0/3 done, 0 cached, 1 running, 0 failed",
        "\r\x1b[Kdtlto-runner: remote: 3/3 done, 0 cached, 0 running, 0 failed\r\n",
    ] {
        assert!(shown.contains(update), "no {update:?} in {shown:?}");
    }
    // Each update rewrites the one line: no line ends between them.
    let progress = &shown[shown.find("\r\x1b[K").unwrap()..];
    assert_eq!(progress.matches("\r\n").count(), 1, "{progress:?}");
    assert_eq!(run_app(&dir), PROGRAM_OUTPUT);

    // The same link again: every job a cache hit.
    let shown = on_a_terminal();
    assert!(
        shown.contains("remote: 3/3 done, 3 cached, 0 running, 0 failed"),
        "{shown:?}"
    );

    // Not a terminal: no progress line.
    let run = dir.run(Command::new(&words[0]).args(&words[1..]));
    run.expect_status(0);
    assert!(!run.stderr().contains("done,"), "{}", run.report());
}

#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn a_relink_elsewhere_is_served_by_the_action_cache_alone_of_a_cache_only_engine() {
    let llvm = llvm();
    let engine = Engine::start("remote-engine-cache");
    let first = TestDir::new("remote-cache-first");
    bitcode(&llvm, &first);
    link(&llvm, &first, &engine.service(), &[]).expect_status(0);

    // The engine restarted without its execution service, on the same cache; the
    // same bitcode linked from another directory (another checkout, another pid).
    let engine = Engine::start_in(engine.stop(), true);
    let second = TestDir::new("remote-cache-second");
    for (name, _) in PROGRAM {
        let object = format!("{name}.o");
        second.write(&object, first.read(&object));
    }
    let run = link(&llvm, &second, &engine.service(), &[]);
    run.expect_status(0)
        .expect_stderr_has("is cache-only")
        .expect_stderr_has("jobs[2]: cache hit, 0 bytes uploaded");
    assert_eq!(
        run.stderr().matches("cache hit, 0 bytes uploaded").count(),
        3,
        "{}",
        run.report()
    );
    assert!(!run.stderr().contains("executed"), "{}", run.report());
    assert_eq!(run_app(&second), PROGRAM_OUTPUT);

    // A job it has no result for cannot run there: the run fails, naming why.
    second.write("twice.c", "int twice(int x) { return 3 * x; }\n");
    llvm.run_ok(&second, "clang", &["-flto=thin", "-O2", "-c", "twice.c"]);
    // (The linker removes its own output when a link fails.)
    std::fs::remove_file(second.join("app")).unwrap();
    let before = second.watch();
    link(&llvm, &second, &engine.service(), &[])
        .expect_status(1)
        .expect_stderr_has("cannot execute actions (cache only)");
    before.assert_unchanged();
}

/// `--cache-salt` (or its variable) puts a link's actions in a cache namespace of
/// their own: the same jobs under another salt are executed again, not served the
/// first salt's results, and under the same salt they are cache hits. The tests
/// that share one engine rely on it.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn a_cache_salt_keeps_results_apart_on_a_shared_service() {
    let (_, service) = Engine::shared("salt");
    let dir = TestDir::new("remote-salt");
    dir.write("in0.bin", "salted\n");
    let job = jobs_json(
        &dir,
        &["cp"],
        &[(&["in0.bin", "out0.o"], &["in0.bin"], &["out0.o"])],
    );
    let run = |salt: &str| {
        let run = dir.run(
            crate::util::runner_command()
                .args(["--verbose", "remote", "--endpoint", &service.endpoint, &job])
                .env("DTLTO_REMOTE_CACHE_SALT", salt),
        );
        run.expect_status(0);
        assert_eq!(dir.read("out0.o"), b"salted\n");
        run
    };
    let first = format!("{}-first", service.salt);
    let second = format!("{}-second", service.salt);
    run(&first).expect_stderr_has("jobs[0]: executed");
    run(&first).expect_stderr_has("jobs[0]: cache hit");
    run(&second).expect_stderr_has("jobs[0]: executed");
    // Unsalted is a namespace of its own too.
    run("").expect_stderr_has("jobs[0]: executed");
    run(&second).expect_stderr_has("jobs[0]: cache hit");
}

/// Remote mode's stderr on a full device or a closed pipe (a CI log that is gone):
/// a run whose jobs succeed still commits and exits 0, and one whose job fails still
/// exits 1 with nothing committed; what could not be said changes neither.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn a_broken_stderr_changes_neither_the_status_nor_what_is_committed() {
    let (_, service) = Engine::shared("broken-stderr");
    for k in 0..2 {
        // A fresh broken stderr for each run: (name, Stdio).
        let broken = || crate::util::unix_host::broken_stderrs().swap_remove(k);
        let (what, stderr) = broken();
        let dir = TestDir::new("remote-broken-stderr");
        dir.write("in0.bin", "through a broken stderr\n");
        dir.write("out1.o", "the object from before\n");
        jobs_json(
            &dir,
            &["cp"],
            &[(&["in0.bin", "out0.o"], &["in0.bin"], &["out0.o"])],
        );
        std::fs::rename(dir.join("job.json"), dir.join("good.json")).unwrap();
        let bad = jobs_json(
            &dir,
            &["cp"],
            &[(&["missing.bin", "out1.o"], &["in0.bin"], &["out1.o"])],
        );
        let mut args = remote_words(&service, &[]);
        args.push("good.json".to_owned());
        let good = dir
            .spawn_with_stderr(crate::util::runner_command().args(&args), stderr)
            .finish(what, Duration::from_secs(60));
        good.expect_status(0);
        assert_eq!(dir.read("out0.o"), b"through a broken stderr\n", "{what}");
        let before = dir.watch();
        *args.last_mut().unwrap() = bad.clone();
        dir.spawn_with_stderr(crate::util::runner_command().args(&args), broken().1)
            .finish(what, Duration::from_secs(60))
            .expect_status(1);
        before.assert_unchanged();
    }
}

#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn a_failing_compile_names_its_job_and_shows_its_stderr_and_changes_nothing() {
    let llvm = llvm();
    let (_, service) = Engine::shared("fail");
    let dir = TestDir::new("remote-fail");
    dir.write("good.c", "int good(void) { return 1; }\n");
    dir.write("bad.c", "int bad(void) { return undeclared_name; }\n");
    dir.write("bad.o", "the object from before\n");
    let clang = llvm.tool("clang").display().to_string();
    let job = jobs_json(
        &dir,
        &[&clang, "-c", "-O2"],
        &[
            (&["good.c", "-o", "good.o"], &["good.c"], &["good.o"]),
            (&["bad.c", "-o", "bad.o"], &["bad.c"], &["bad.o"]),
        ],
    );
    let before = dir.watch();
    run_words(&dir, &service.remote(&["--jobs", "1", &job]))
        .expect_status(1)
        .expect_stderr_has("jobs[1] (for \"bad.o\") failed remotely with exit status 1:")
        .expect_stderr_has("its stderr:")
        .expect_stderr_has("use of undeclared identifier 'undeclared_name'")
        .expect_stderr_has("nothing was committed");
    before.assert_unchanged();
}

/// A job whose inputs leave out a module it imports: that module is not sent, the
/// worker's compile cannot read it (clang's ThinLTO backend then exits 0 and leaves
/// the native object empty), and what remote mode says points at `local
/// --hermetic`, which finds such reads.
#[test]
#[ignore = "needs the REAPI engine and LLVM 23: tests/all.sh installs them and runs the ignored tests"]
fn a_job_that_reads_an_undeclared_module_points_at_local_hermetic() {
    let llvm = llvm();
    let (_, service) = Engine::shared("undeclared");
    let dir = TestDir::new("remote-undeclared");
    bitcode(&llvm, &dir);
    link(&llvm, &dir, &service, &["-Wl,--save-temps"]).expect_status(0);
    let (_, mut doc) = job_file(&dir);
    // A module a job imports: an input that is another job's module.
    let modules: Vec<String> = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| strings(&job["inputs"])[0].clone())
        .collect();
    let (job, import) = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .find_map(|(k, job)| {
            let inputs = strings(&job["inputs"]);
            let import = inputs[1..].iter().find(|i| modules.contains(i)).cloned();
            import.map(|i| (k, i))
        })
        .expect("a job that imports another's module");
    let inputs = doc["jobs"][job]["inputs"].as_array_mut().unwrap();
    inputs.retain(|i| i.as_str() != Some(import.as_str()));
    dir.write("undeclared.json", doc.to_string());
    let run = run_words(&dir, &service.remote(&["undeclared.json"]));
    let native_object = strings(&doc["jobs"][job]["outputs"])[0].clone();
    run.expect_stderr_has(&format!("Error loading imported file {import}"))
        .expect_stderr_has(&format!(
            "warning: jobs[{job}] exited 0 remotely but left its native object \"{native_object}\" empty"
        ))
        .expect_stderr_has("`local --hermetic` finds such reads");
}

#[test]
fn an_unreachable_endpoint_fails_within_seconds_naming_it_with_nothing_written() {
    let dir = TestDir::new("remote-unreachable");
    dir.write("module.bc", "a module\n");
    let job = jobs_json(
        &dir,
        &["cc"],
        &[(&["-o", "out.o"], &["module.bc"], &["out.o"])],
    );
    let before = dir.watch();
    // A port nothing listens on: taken, then let go.
    let port = free_port();
    let endpoint = format!("grpc://127.0.0.1:{port}");
    spawn_runner(&dir, &["remote", "--endpoint", &endpoint, &job])
        .finish("an unreachable endpoint", Duration::from_secs(30))
        .expect_status(1)
        .expect_stderr_has(&format!("cannot connect to the remote endpoint {endpoint}"));
    before.assert_unchanged();
    // A link named dtlto-remote is remote mode too, its endpoint from the variable.
    let bin = TestDir::new("remote-name");
    let named = bin.join("dtlto-remote");
    std::os::unix::fs::symlink(runner_exe(), &named).unwrap();
    dir.run(
        Command::new(&named)
            .arg(&job)
            .env("DTLTO_REMOTE_ENDPOINT", &endpoint),
    )
    .expect_status(1)
    .expect_stderr_has(&format!("cannot connect to the remote endpoint {endpoint}"));
    before.assert_unchanged();
}

#[test]
fn remote_mode_refuses_the_guests_options_and_answers_help_and_usage() {
    let dir = TestDir::new("remote-cli");
    let before = dir.watch();
    run_runner(
        &dir,
        &[
            "--max-output-bytes",
            "5",
            "remote",
            "--endpoint",
            "grpc://h:1",
            "j.json",
        ],
    )
    .expect_status(2)
    .expect_stderr_has("--max-output-bytes applies to the guest, which remote mode does not run");
    run_runner(&dir, &["remote", "--endpoint", "grpc://h:1"])
        .expect_status(2)
        .expect_stderr_has("<JOB_FILE>");
    run_runner(&dir, &["remote", "j.json"])
        .expect_status(2)
        .expect_stderr_has("--endpoint <URL>");
    run_runner(
        &dir,
        &[
            "remote",
            "--endpoint",
            "grpc://h:1",
            "--header",
            "token-only",
            "j.json",
        ],
    )
    .expect_status(2)
    .expect_stderr_has("is not NAME=VALUE");
    before.assert_unchanged();
    let help = run_runner(&dir, &["remote", "--help"]);
    help.expect_status(0);
    assert!(
        help.stdout().contains("Options (after `remote`)")
            && help.stdout().contains("DTLTO_REMOTE_ENDPOINT"),
        "{}",
        help.report()
    );
}

/// An engine whose directory `nobody` cannot reach (a directory above it is its
/// owner's alone): started by root with the default, it says why and runs its
/// actions as root, with buildbox-run itself; told `--actions-as nobody`, it does
/// not start, and says why; nor below a directory others may write. Started by
/// anyone else, `--actions-as` another user is refused: only root switches users.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn an_engine_whose_actions_user_cannot_reach_it_says_why_and_runs_them_as_itself() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TestDir::new("remote-engine-closed");
    let closed = dir.join("closed");
    std::fs::create_dir(&closed).expect("mkdir closed");
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let engine = closed.join("engine");
    let told = engine_script("start", &["--actions-as", "nobody"], &engine, &[]);
    let stderr = String::from_utf8_lossy(&told.stderr);
    assert!(!told.status.success(), "started: {stderr}");
    assert!(!engine.join("pid").exists(), "{stderr}");
    if !is_root() {
        assert!(
            stderr.contains("only root runs actions as another user"),
            "{stderr}"
        );
        return;
    }
    assert!(
        stderr.contains(&format!("nobody cannot reach {}", engine.display())),
        "{stderr}"
    );
    let default = engine_script("start", &[], &engine, &[]);
    let stderr = String::from_utf8_lossy(&default.stderr);
    assert!(default.status.success(), "{stderr}");
    // Read before any assertion: the engine is stopped whatever they find.
    let pid = std::fs::read_to_string(engine.join("pid")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).unwrap_or_default();
    let _ = engine_script("stop", &[], &engine, &[]);
    assert!(
        stderr.contains("actions run as root, so casd copies every input root")
            && stderr.contains("nobody cannot reach"),
        "{stderr}"
    );
    let runner = cmdline
        .split(|&b| b == 0)
        .find_map(|arg| arg.strip_prefix(b"--buildbox-run="))
        .map(|path| String::from_utf8_lossy(path).into_owned())
        .expect("casd's --buildbox-run");
    assert!(runner.ends_with("/buildbox-run"), "{runner}");
    assert!(!engine.join("run-actions").exists());

    // Below a directory others may write, they could swap what root hands nobody.
    let open = dir.join("open");
    std::fs::create_dir(&open).expect("mkdir open");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let told = engine_script(
        "start",
        &["--actions-as", "nobody"],
        &open.join("engine"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&told.stderr);
    assert!(!told.status.success(), "started: {stderr}");
    assert!(
        stderr.contains(&format!("{} is writable by others", open.display())),
        "{stderr}"
    );
}

/// reapi-engine-run-as, which the engine runs its actions through as `nobody` when
/// root started it, against runners that turn on root: each runs as nobody, reads
/// its action, and answers with a link to a file of root's, or a FIFO, where casd
/// expects the result. Root must copy back nothing of that file, never wait on the
/// FIFO, say so by a failure, and leave no directory of the action's. A runner that
/// answers properly gets its result copied back into casd's directory, and nothing
/// else. A stop sent to the helper reaches the runner; the helper killed outright
/// takes the runner with it. As anyone but root the helper cannot switch users, and
/// the engine does not use it.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn the_engines_run_as_helper_gives_a_hostile_runner_nothing_of_roots() {
    use std::os::unix::fs::PermissionsExt;
    let helper = engine_bin().join("reapi-engine-run-as");
    assert!(helper.exists(), "{} is missing", helper.display());
    if !is_root() {
        return;
    }
    let dir = TestDir::new("remote-run-as");
    let mode = |path: &std::path::Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    mode(dir.path(), 0o755);
    let casd = dir.join("casd");
    std::fs::create_dir(&casd).expect("mkdir casd");
    mode(&casd, 0o700);
    let action = dir.write("casd/x.action", "the action\n");
    mode(&action, 0o600);
    let secret = dir.write("secret", "root's secret\n");
    mode(&secret, 0o600);
    let work = dir.join("work");
    std::fs::create_dir(&work).expect("mkdir work");
    mode(&work, 0o711);
    // Where a runner leaves word for the test (it can write nowhere of root's).
    let board = dir.join("board");
    std::fs::create_dir(&board).expect("mkdir board");
    mode(&board, 0o777);
    let result = casd.join("x.actionresult");
    // The helper's words, as casd's launcher gives them, for a runner of `runner_body`.
    let words = |runner_body: &str| {
        let runner = dir.write("runner", format!("#!/bin/sh\n{runner_body}\n"));
        mode(&runner, 0o755);
        [
            helper.display().to_string(),
            "65534".into(),
            "65534".into(),
            "/usr/bin:/bin".into(),
            runner.display().to_string(),
            work.display().to_string(),
            "--".into(),
            format!("--action={}", action.display()),
            format!("--action-result={}", result.display()),
            format!("--stdout-file={}", casd.join("x.stdout").display()),
        ]
    };
    let spawn = |command: &mut Command| {
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start reapi-engine-run-as")
    };
    let start = |runner_body: &str| {
        let words = words(runner_body);
        spawn(Command::new(&words[0]).args(&words[1..]))
    };
    // A helper that hangs (on a FIFO, or a runner it cannot stop) fails the test.
    let finish = |mut child: std::process::Child, what: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while child.try_wait().expect("try_wait").is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("reapi-engine-run-as hangs: {what}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().expect("wait")
    };
    let run = |runner_body: &str| finish(start(runner_body), runner_body);
    let succeeded = |output: &std::process::Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let left = || std::fs::read_dir(&work).expect("read work").count();
    let args = r#"for a; do case "$a" in --action=*) action="${a#*=}";; --action-result=*) result="${a#*=}";; esac; done
grep -q 'the action' "$action" || exit 9"#;

    for (what, answer) in [
        (
            "a link to root's file",
            format!("ln -s {} \"$result\"", secret.display()),
        ),
        ("a FIFO", "mkfifo \"$result\"".to_owned()),
    ] {
        let hostile = run(&format!("{args}\n{answer}"));
        let stderr = String::from_utf8_lossy(&hostile.stderr);
        assert!(!hostile.status.success(), "{what}: {stderr}");
        assert!(stderr.contains("refusing"), "{what}: {stderr}");
        let back = std::fs::read_to_string(&result).unwrap_or_default();
        assert!(
            !back.contains("secret"),
            "{what}: root's file came back: {back}"
        );
        assert_eq!(left(), 0, "{what}: the action's directory is left");
        let _ = std::fs::remove_file(&result);
    }

    let honest = run(&format!(
        "{args}\necho \"a result from uid $(id -u)\" >\"$result\"\necho out >\"${{result%/*}}/stdout-file\""
    ));
    succeeded(&honest);
    assert_eq!(
        std::fs::read_to_string(&result).expect("the result, back in casd's directory"),
        "a result from uid 65534\n"
    );
    assert!(
        !casd.join("x.stdout").exists(),
        "stdout stays with the runner"
    );
    assert_eq!(left(), 0, "the action's directory is left");

    // A runner that waits to be stopped (and, should the test fail, stops by itself).
    const SPIN: &str = "i=0; while [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done";
    // casd stops an action by signalling the helper: the runner gets SIGTERM, and
    // its status is the helper's.
    let stopped = board.join("stopped");
    let running = board.join("running");
    let helper_run = start(&format!(
        "trap 'echo stopped >{}; exit 7' TERM\necho $$ >{}\n{SPIN}",
        stopped.display(),
        running.display()
    ));
    wait_until("the runner runs", || running.exists());
    send_signal(helper_run.id(), "TERM");
    let output = finish(helper_run, "a runner told to stop");
    assert_eq!(
        output.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stopped.exists(), "the runner never saw the stop");
    assert_eq!(left(), 0, "a stopped action's directory is left");

    // A stop before the runner starts (here while the helper waits to read an action
    // that is a FIFO) means it never starts, and nothing of the action is left.
    let fifo_action = dir.join("casd/fifo.action");
    crate::util::unix_host::make_fifo(&fifo_action);
    let never = board.join("never");
    let stopped_words = words(&format!("echo started >{}", never.display()));
    let mut stopped_words = stopped_words.to_vec();
    stopped_words[7] = format!("--action={}", fifo_action.display());
    let helper_run = spawn(Command::new(&stopped_words[0]).args(&stopped_words[1..]));
    wait_until("the helper waits on the action", || {
        std::fs::read_dir(&work).is_ok_and(|mut entries| entries.next().is_some())
    });
    send_signal(helper_run.id(), "TERM");
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(&fifo_action, "the action\n").expect("write the FIFO");
    let output = finish(helper_run, "a stop before the runner");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("stopped before"), "{stderr}");
    assert!(!never.exists(), "the runner started after the stop");
    assert_eq!(left(), 0, "the stopped action's directory is left");

    // Killed outright (as when casd dies), the helper takes the runner along.
    std::fs::remove_file(&running).expect("rm running");
    let mut helper_run = start(&format!("echo $$ >{}\n{SPIN}", running.display()));
    wait_until("the runner runs", || {
        std::fs::read_to_string(&running).is_ok_and(|pid| pid.ends_with('\n'))
    });
    let pid = std::fs::read_to_string(&running).expect("the runner's pid");
    helper_run.kill().expect("kill the helper");
    let _ = helper_run.wait();
    wait_until("the runner dies with the helper", || {
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
    });

    // Started from a terminal, with a descriptor open on a file of root's and a
    // secret in its environment, the helper gives the runner none of them: no
    // terminal to push input into, no descriptor, no variable, no group of root's;
    // its stdout and stderr are a file of its own (not casd's log).
    let seen = board.join("seen");
    let quoted: Vec<String> = words(&format!(
        "out=$(readlink /proc/$$/fd/1) err=$(readlink /proc/$$/fd/2)
{{ id -u; id -G; pwd; echo \"$out\"; echo \"$err\"; env
if (: </dev/tty) 2>/dev/null; then echo a-terminal; fi
if cat <&5; then echo fd-5; fi; }} >{} 2>&1",
        seen.display()
    ))
    .iter()
    .map(|w| format!("'{w}'"))
    .collect();
    let under_terminal = finish(
        spawn(
            Command::new("script")
                .args(["-qec"])
                .arg(format!(
                    "exec 5<'{}'; exec {}",
                    secret.display(),
                    quoted.join(" ")
                ))
                .arg("/dev/null")
                .env("DTLTO_TEST_TOKEN", "s3cret"),
        ),
        "a runner under a terminal",
    );
    succeeded(&under_terminal);
    let seen = std::fs::read_to_string(&seen).expect("what the runner saw");
    let lines: Vec<&str> = seen.lines().collect();
    assert_eq!(lines[..2], ["65534", "65534"], "{seen}");
    for line in &lines[2..5] {
        assert!(
            line.starts_with(&format!("{}/action.", work.display())),
            "{seen}"
        );
    }
    for root_s in ["a-terminal", "fd-5", "secret", "s3cret", "HOME="] {
        assert!(!seen.contains(root_s), "the runner got {root_s}: {seen}");
    }

    // What the runner leaves running, even in a session of its own, ends with it.
    let leftover = board.join("leftover");
    let left_behind = run(&format!(
        "setsid sleep 61.3 </dev/null >/dev/null 2>&1 &\necho $! >{}",
        leftover.display()
    ));
    succeeded(&left_behind);
    let pid = std::fs::read_to_string(&leftover).expect("the leftover's pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the runner's leftover {} outlived it",
        pid.trim()
    );

    // Root's session keyring, where casd has one, is not the runner's: it sees none
    // of the keys in it.
    let keys = board.join("keys");
    let key_words = words(&format!("cat /proc/keys >{}", keys.display()));
    let (kind, description, payload) = (c"user", c"dtlto-test-root-key", b"root only");
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(&key_words[0]);
    command.args(&key_words[1..]);
    // SAFETY: between fork and exec, only system calls on data made before the fork.
    unsafe {
        command.pre_exec(move || {
            // A session keyring of the helper's own (KEYCTL_JOIN_SESSION_KEYRING),
            // holding a key of root's (KEY_SPEC_SESSION_KEYRING).
            if libc::syscall(libc::SYS_keyctl, 1, std::ptr::null::<libc::c_char>()) < 0
                || libc::syscall(
                    libc::SYS_add_key,
                    kind.as_ptr(),
                    description.as_ptr(),
                    payload.as_ptr(),
                    payload.len(),
                    -3,
                ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let keyed = finish(spawn(&mut command), "a runner reading the keys");
    succeeded(&keyed);
    let keys = std::fs::read_to_string(&keys).expect("the keys the runner saw");
    assert!(
        !keys.contains("dtlto-test-root-key"),
        "the runner sees root's key: {keys}"
    );

    // What the runner moves in of another's (a directory of its own holding one of
    // root's, with a file) outlives the cleanup: root deletes nothing the user could
    // not.
    let shared = board.join("shared");
    std::fs::create_dir(&shared).expect("mkdir shared");
    std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).expect("chown shared");
    std::fs::create_dir(shared.join("data")).expect("mkdir shared/data");
    dir.write("board/shared/data/roots", "root's own\n");
    let moved = run(&format!("mv {} \"$PWD/\"", shared.display()));
    let stderr = String::from_utf8_lossy(&moved.stderr);
    assert!(moved.status.success(), "{stderr}");
    assert!(stderr.contains("is left"), "{stderr}");
    let kept = std::fs::read_dir(&work)
        .expect("read work")
        .flatten()
        .map(|entry| entry.path().join("shared/data/roots"))
        .find(|path| path.exists())
        .expect("root's file, still in the action's directory");
    assert_eq!(std::fs::read_to_string(kept).expect("read"), "root's own\n");
}

/// A job that runs until stopped: `sleep` shipped as the compiler, its output never
/// made. `out.o` holds a file from before.
fn sleeping_job(dir: &TestDir, seconds: &str) -> String {
    dir.write("out.o", "the object from before\n");
    dir.write("module.bc", "a module\n");
    jobs_json(dir, &["sleep"], &[(&[seconds], &["module.bc"], &["out.o"])])
}

/// Whether a process runs `sleep SECONDS` (the remote action, in the engine's
/// sandbox, its program named by its path).
fn sleeping(seconds: &str) -> bool {
    sleeper(seconds).is_some()
}

/// The `/proc` directory of the process that runs `sleep SECONDS`, if one does.
fn sleeper(seconds: &str) -> Option<std::path::PathBuf> {
    let entries = std::fs::read_dir("/proc").ok()?;
    entries.flatten().map(|entry| entry.path()).find(|proc| {
        std::fs::read(proc.join("cmdline")).is_ok_and(|c| {
            let words: Vec<&[u8]> = c.split(|&b| b == 0).collect();
            matches!(&words[..], [program, arg, b""] if program.ends_with(b"sleep") && *arg == seconds.as_bytes())
        })
    })
}

/// Why the engine as the tests start it links a shipped compiler's files into each
/// sandbox: buildbox-casd hard-links an input root out of its cache only for an
/// action that runs as another user than its own, and copies every file (libLLVM and
/// libclang-cpp: 180 MB per action) for one that runs as casd's own user. Started
/// by root, tools/reapi-engine.sh runs actions as `nobody`: the action's program is
/// then a second name of the cache's object. Started by anyone else, actions run as
/// that user and get copies.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn as_root_the_engine_runs_actions_as_nobody_and_links_the_shipped_program_in() {
    use std::os::unix::fs::MetadataExt;
    let (_, service) = Engine::shared("actions-as");
    let dir = TestDir::new("remote-actions-as");
    let job = sleeping_job(&dir, "41.7");
    let before = dir.watch();
    let words = service.remote(&["--no-cache-lookup", &job]);
    let runner = spawn_runner(&dir, &words.iter().map(String::as_str).collect::<Vec<_>>());
    wait_until("the action runs", || sleeping("41.7"));
    let proc = sleeper("41.7").expect("the sleeping action");
    let program = std::fs::metadata(proc.join("exe")).expect("stat the action's program");
    let status = std::fs::read_to_string(proc.join("status")).expect("read its status");
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .expect("its real uid")
        .to_owned();
    send_signal(runner.id(), "TERM");
    runner
        .finish("a stopped remote run", Duration::from_secs(20))
        .expect_status(143);
    before.assert_unchanged();
    wait_until("the action is cancelled", || !sleeping("41.7"));
    if is_root() {
        let nobody = Command::new("id")
            .args(["-u", "nobody"])
            .output()
            .expect("id -u nobody");
        assert_eq!(
            uid,
            String::from_utf8_lossy(&nobody.stdout).trim(),
            "{status}"
        );
        assert!(
            program.nlink() >= 2,
            "the action's program is a copy ({} link), not the cache's object",
            program.nlink()
        );
    } else {
        assert_eq!(uid, program.uid().to_string(), "{status}");
        assert_eq!(
            program.nlink(),
            1,
            "a copy, as casd stages for its own user"
        );
    }
}

#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn a_stop_mid_run_cancels_the_action_and_exits_as_the_shell_would_with_nothing_committed() {
    let (_, service) = Engine::shared("stop");
    for (signal, status, seconds, words) in [
        (Some("INT"), 130, "41.3", "stopped by SIGINT"),
        (Some("TERM"), 143, "41.4", "stopped by SIGTERM"),
        (Some("HUP"), 129, "41.5", "stopped by SIGHUP"),
        (None, 124, "41.6", "timed out after 3 s (--timeout)"),
    ] {
        let dir = TestDir::new("remote-stop");
        let job = sleeping_job(&dir, seconds);
        let before = dir.watch();
        // The deadline only where no signal comes: a slow start must not beat it.
        let timeout: &[&str] = if signal.is_none() {
            &["--timeout", "3"]
        } else {
            &[]
        };
        let mut args = timeout.to_vec();
        args.extend(["remote", "--endpoint", &service.endpoint, &job]);
        let runner = spawn_runner(&dir, &args);
        if let Some(signal) = signal {
            wait_until("the action runs", || sleeping(seconds));
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &runner.id().to_string()])
                .status();
        }
        runner
            .finish("a stopped remote run", Duration::from_secs(20))
            .expect_status(status)
            .expect_stderr_has(&format!("{words}: nothing was committed"));
        before.assert_unchanged();
        // CancelOperation, not only a closed stream: the action ends on the engine.
        wait_until("the action is cancelled", || !sleeping(seconds));
    }
}

/// The runner itself killed mid-run (SIGKILL: an out-of-memory killer, a CI job's
/// timeout): nothing is committed, and the next run in that directory reclaims the
/// staging it left and links as if nothing had happened.
#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn the_runner_killed_mid_run_commits_nothing_and_the_next_run_reclaims_its_staging() {
    let engine = Engine::start("remote-engine-runner-killed");
    let dir = TestDir::new("remote-runner-killed");
    let seconds = "43.1";
    dir.write("module.bc", "a module\n");
    jobs_json(
        &dir,
        &["sleep"],
        &[(&[seconds], &["module.bc"], &["out.o"])],
    );
    std::fs::rename(dir.join("job.json"), dir.join("sleep.json")).unwrap();
    let copy = jobs_json(
        &dir,
        &["cp"],
        &[(&["module.bc", "out.o"], &["module.bc"], &["out.o"])],
    );
    let before = dir.snapshot();
    let runner = spawn_runner(
        &dir,
        &["remote", "--endpoint", &engine.endpoint, "sleep.json"],
    );
    wait_until("the action runs", || sleeping(seconds));
    let _ = Command::new("kill")
        .args(["-KILL", &runner.id().to_string()])
        .status();
    let killed = runner.finish("a killed remote run", Duration::from_secs(20));
    assert!(killed.stderr().is_empty(), "{}", killed.report());
    left_then_reclaimed(
        &dir,
        &before,
        &["remote", "--endpoint", &engine.endpoint, &copy],
        &["out.o"],
    );
    assert_eq!(dir.read("out.o"), b"a module\n");
}

#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn the_engine_killed_mid_run_ends_the_run_with_nothing_committed() {
    let engine = Engine::start("remote-engine-killed");
    let dir = TestDir::new("remote-killed");
    let seconds = "42.7";
    let job = sleeping_job(&dir, seconds);
    let before = dir.watch();
    let runner = spawn_runner(&dir, &["remote", "--endpoint", &engine.endpoint, &job]);
    wait_until("the action runs", || sleeping(seconds));
    engine.kill();
    runner
        .finish("a run whose engine died", Duration::from_secs(60))
        .expect_status(1)
        .expect_stderr_has(&engine.endpoint)
        .expect_stderr_has("nothing was committed");
    before.assert_unchanged();
    // The action dies with its engine: buildbox-run with casd, its sandbox with it.
    wait_until("the action ends with its engine", || !sleeping(seconds));
}

#[test]
#[ignore = "needs the REAPI engine: tests/all.sh installs it and runs the ignored tests"]
fn a_20_mib_input_and_many_jobs_at_once_come_back_byte_for_byte() {
    let (_, service) = Engine::shared("big");
    let dir = TestDir::new("remote-big");
    // 20 MiB that no batch may carry: ByteStream both ways.
    let mut big = Vec::with_capacity(20 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while big.len() < 20 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.extend_from_slice(&x.to_le_bytes());
    }
    dir.write("in0.bin", &big);
    let mut jobs_args = Vec::new();
    for i in 1..6 {
        dir.write(&format!("in{i}.bin"), format!("small input {i}\n"));
    }
    for i in 0..6 {
        jobs_args.push((
            vec![format!("in{i}.bin"), format!("out{i}.o")],
            vec![format!("in{i}.bin")],
            vec![format!("out{i}.o")],
        ));
    }
    let borrowed: Vec<(Vec<&str>, Vec<&str>, Vec<&str>)> = jobs_args
        .iter()
        .map(|(a, i, o)| {
            (
                a.iter().map(String::as_str).collect(),
                i.iter().map(String::as_str).collect(),
                o.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let jobs: Vec<(&[&str], &[&str], &[&str])> = borrowed
        .iter()
        .map(|(a, i, o)| (&a[..], &i[..], &o[..]))
        .collect();
    let job = jobs_json(&dir, &["cp"], &jobs);
    run_words(&dir, &remote_words(&service, &["--jobs", "3", &job])).expect_status(0);
    for i in 0..6 {
        assert!(
            dir.read(&format!("out{i}.o")) == dir.read(&format!("in{i}.bin")),
            "out{i}.o differs from its input"
        );
    }
    assert_eq!(staging_left(&dir), Vec::<String>::new());
}

#[test]
#[ignore = "needs the REAPI engine, nginx and openssl: tests/all.sh installs them and runs the ignored tests"]
fn grpcs_with_a_private_ca_mutual_tls_and_a_token_header_from_a_file_or_variables() {
    let (engine, service) = Engine::shared("tls");
    let proxy = TlsProxy::start(engine);
    let dir = TestDir::new("remote-tls");
    dir.write("in0.bin", "through TLS\n");
    let job = jobs_json(
        &dir,
        &["cp"],
        &[(&["in0.bin", "out0.o"], &["in0.bin"], &["out0.o"])],
    );
    let (ca, cert, key) = (
        proxy.ca.display().to_string(),
        proxy.client_cert.display().to_string(),
        proxy.client_key.display().to_string(),
    );
    // The proxy's token, from a file (and a file whose line is the bare token).
    let headers = dir.write(
        "headers",
        format!("# the farm's token\nx-farm-token={TOKEN}\n"),
    );
    let headers = headers.display().to_string();
    let bad_line = dir.write("bad-headers", format!("{TOKEN}\n"));
    let salt = format!("--cache-salt={}", service.salt);
    let remote = [
        "remote",
        "--endpoint",
        proxy.endpoint.as_str(),
        salt.as_str(),
    ];
    let before = dir.watch();
    // The system's roots do not know the private CA.
    run_runner(&dir, &[&remote[..], &[&job]].concat())
        .expect_status(1)
        .expect_stderr_has(&proxy.endpoint)
        .expect_stderr_has("UnknownIssuer");
    // The proxy asks for a client certificate.
    run_runner(&dir, &[&remote[..], &["--tls-ca", &ca, &job]].concat())
        .expect_status(1)
        .expect_stderr_has(&proxy.endpoint);
    let tls = ["--tls-ca", &ca, "--tls-cert", &cert, "--tls-key", &key];
    // Without the token the proxy refuses every call, and no message shows it.
    let refused = run_runner(&dir, &[&remote[..], &tls, &[&job]].concat());
    refused.expect_status(1).expect_stderr_has(&proxy.endpoint);
    assert!(!refused.stderr().contains(TOKEN), "{}", refused.report());
    let bad = run_runner(
        &dir,
        &[
            &remote[..],
            &tls,
            &["--header-file", &bad_line.display().to_string(), &job],
        ]
        .concat(),
    );
    bad.expect_status(2).expect_stderr_has("is not NAME=VALUE");
    assert!(!bad.stderr().contains(TOKEN), "{}", bad.report());
    before.assert_unchanged();
    run_runner(
        &dir,
        &[&remote[..], &tls, &["--header-file", &headers, &job]].concat(),
    )
    .expect_status(0);
    assert_eq!(dir.read("out0.o"), b"through TLS\n");
    // The same from variables alone, as a build system would set them.
    std::fs::remove_file(dir.join("out0.o")).unwrap();
    let run = dir.run(
        crate::util::runner_command()
            .args(["remote", &job])
            .env("DTLTO_REMOTE_ENDPOINT", &proxy.endpoint)
            .env("DTLTO_REMOTE_TLS_CA", &ca)
            .env("DTLTO_REMOTE_TLS_CERT", &cert)
            .env("DTLTO_REMOTE_TLS_KEY", &key)
            .env("DTLTO_REMOTE_HEADER_FILE", &headers)
            .env("DTLTO_REMOTE_CACHE_SALT", &service.salt),
    );
    run.expect_status(0);
    assert_eq!(dir.read("out0.o"), b"through TLS\n");
}
