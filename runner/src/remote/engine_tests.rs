//! Remote mode against a real REAPI engine: buildbox-casd with buildbox-run
//! (bubblewrap), with no bind mounts, so the sandbox holds only the input root: the
//! compiler must come with the action. One engine serves the tests that neither
//! need a fresh one nor stop or reconfigure theirs (`Engine::shared`), each in its
//! own cache namespace; the others start their own.
//!
//! Ignored by default: they need the engine and real clang. Run them with
//! `DTLTO_REAPI_ENGINE_BIN=<dir with buildbox-casd, buildbox-run>
//!  DTLTO_LLVM_BIN=$(bash tools/install-llvm.sh)
//!  cargo test -p dtlto-runner --lib remote::engine_tests -- --ignored --test-threads 1`
//! (and `apt-get install bubblewrap`).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::*;

/// A running buildbox-casd, stopped (by its pid) when dropped.
struct Engine {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Engine {
    /// Starts casd on a free port; `exec` adds the local execution service.
    fn start(exec: bool, cache: &Path) -> Engine {
        Engine::start_on(exec, cache, &free_local_address())
    }

    /// Starts casd bound to `bind` (`HOST:PORT` or `unix:PATH`).
    fn start_on(exec: bool, cache: &Path, bind: &str) -> Engine {
        let scratch = tempfile::tempdir().unwrap();
        let child = casd(exec, cache, bind, scratch.path())
            .spawn()
            .expect("buildbox-casd starts");
        Engine::listening(child, bind, scratch)
    }

    /// Waits until `child`, a casd (or what runs one), listens on `bind`.
    fn listening(child: Child, bind: &str, scratch: tempfile::TempDir) -> Engine {
        let deadline = Instant::now() + Duration::from_secs(10);
        let up = || match bind.strip_prefix("unix:") {
            Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            None => std::net::TcpStream::connect(bind).is_ok(),
        };
        while !up() {
            assert!(Instant::now() < deadline, "casd did not listen on {bind}");
            std::thread::sleep(Duration::from_millis(20));
        }
        let endpoint = match bind.strip_prefix("unix:") {
            Some(path) => format!("unix://{path}"),
            None => format!("grpc://{bind}"),
        };
        Engine {
            child,
            endpoint,
            _dir: scratch,
        }
    }

    /// The engine that the tests which neither stop nor reconfigure theirs share, each
    /// with a cache salt of its own (`shared_settings`). Statics are never dropped, so
    /// casd runs under a shell that is its parent and stops it once the end of a pipe
    /// only this process holds closes: when this process ends, however it ends.
    fn shared() -> &'static Engine {
        static SHARED: OnceLock<(Engine, ChildStdin)> = OnceLock::new();
        let (engine, _) = SHARED.get_or_init(|| {
            let bind = free_local_address();
            let scratch = tempfile::tempdir().unwrap();
            let casd = casd(true, &scratch.path().join("cas"), &bind, scratch.path());
            let mut guard = Command::new("sh");
            guard
                .args([
                    "-c",
                    r#"dir=$1; shift; "$@" & pid=$!; cat >/dev/null; kill -KILL "$pid"; wait "$pid"; rm -rf "$dir""#,
                    "sh",
                ])
                .arg(scratch.path())
                .arg(casd.get_program())
                .args(casd.get_args())
                .stdin(Stdio::piped())
                .stdout(std::fs::File::create(scratch.path().join("casd.log")).unwrap())
                .stderr(std::fs::File::create(scratch.path().join("casd.err")).unwrap())
                // Not in the tests' process group: a Ctrl-C must not end the shell
                // before it has stopped casd.
                .process_group(0);
            let mut child = guard.spawn().expect("buildbox-casd starts");
            let run_lasts = child.stdin.take().expect("the shell's stdin");
            (Engine::listening(child, &bind, scratch), run_lasts)
        });
        engine
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:PORT` with a port nothing listens on: taken from the kernel, let go.
fn free_local_address() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// buildbox-casd bound to `bind`, its cache in `cache`, its output in `logs`; `exec`
/// adds the local execution service.
fn casd(exec: bool, cache: &Path, bind: &str, logs: &Path) -> Command {
    let dir = std::env::var_os("DTLTO_REAPI_ENGINE_BIN")
        .map(PathBuf::from)
        .expect(
            "DTLTO_REAPI_ENGINE_BIN must name the directory with buildbox-casd and buildbox-run",
        );
    let mut cmd = Command::new(dir.join("buildbox-casd"));
    cmd.arg(format!("--bind={bind}")).arg("--log-level=warning");
    if exec {
        cmd.arg(format!(
            "--buildbox-run={}",
            dir.join("buildbox-run").display()
        ))
        .arg("--jobs=2")
        .arg("--cache-failures=false");
    }
    cmd.arg(cache);
    cmd.stdout(std::fs::File::create(logs.join("casd.log")).unwrap());
    cmd.stderr(std::fs::File::create(logs.join("casd.err")).unwrap());
    cmd
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn llvm_bin() -> PathBuf {
    std::env::var_os("DTLTO_LLVM_BIN")
        .map(PathBuf::from)
        .expect(
        "DTLTO_LLVM_BIN must name LLVM 23's bin directory (bash tools/install-llvm.sh prints it)",
    )
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A two-module ThinLTO program linked with a distributor that keeps the job file
/// and the index files, in `dir` (which becomes the link's directory); `compile`:
/// the bitcode is compiled there (else it is there already).
fn thin_link(dir: &Path, flags: &[&str], compile: bool) -> serde_json::Value {
    let bin = llvm_bin();
    std::fs::write(dir.join("main.c"), "#include <stdio.h>\nint helper(int);\nint main(int c, char **v) { printf(\"%d\\n\", helper(c)); return 0; }\n").unwrap();
    std::fs::write(
        dir.join("helper.c"),
        "static int sq(int x) { return x * x; }\nint helper(int x) { return sq(x) + 41; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("undeclared.o"),
        "a file beside the inputs that must stay here",
    )
    .unwrap();
    let keep = dir.join("keep.sh");
    std::fs::write(&keep, "#!/bin/sh\nfor last; do :; done\nmkdir -p kept\ncp \"$last\" kept/job.json\ncp *.thinlto.bc kept/\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keep, std::fs::Permissions::from_mode(0o755)).unwrap();
    if compile {
        run(Command::new(bin.join("clang"))
            .current_dir(dir)
            .args(["-flto=thin", "-c", "main.c", "helper.c"])
            .args(flags));
    }
    let _ = Command::new(bin.join("clang"))
        .current_dir(dir)
        .args([
            "-flto=thin",
            "-fuse-ld=lld",
            "main.o",
            "helper.o",
            "-o",
            "app",
        ])
        .arg(format!("-fthinlto-distributor={}", keep.display()))
        .args(flags)
        .output()
        .unwrap();
    for e in std::fs::read_dir(dir.join("kept")).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "job.json" {
            std::fs::rename(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    serde_json::from_str(&std::fs::read_to_string(dir.join("kept/job.json")).unwrap()).unwrap()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The jobs of a job file, each output to be written into `staging`.
fn jobs(doc: &serde_json::Value, cwd: &Path, staging: &Path) -> Vec<RemoteJob> {
    let common_args = strings(&doc["common"]["args"]);
    let common_inputs = strings(&doc["common"]["inputs"]);
    doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(index, j)| RemoteJob {
            index,
            argv: common_args
                .iter()
                .cloned()
                .chain(strings(&j["args"]))
                .collect(),
            inputs: common_inputs
                .iter()
                .cloned()
                .chain(strings(&j["inputs"]))
                .collect(),
            outputs: strings(&j["outputs"])
                .into_iter()
                .map(|o| (o.clone(), staging.join(format!("{index}-{o}"))))
                .collect(),
            cwd: cwd.to_path_buf(),
            temporaries: None,
        })
        .collect()
}

fn settings(engine: &Engine, cache: &Path) -> Settings {
    let mut s = Settings::new(&engine.endpoint);
    s.digest_cache = Some(cache.join("digests"));
    s
}

/// `settings` for the shared engine, in `test`'s own cache namespace.
fn shared_settings(test: &str, cache: &Path) -> Settings {
    let mut s = settings(Engine::shared(), cache);
    s.cache_salt = test.to_owned();
    s
}

/// The job's command run here, as local mode would, and its native object.
fn local_compile(job: &RemoteJob) -> Vec<u8> {
    run(Command::new(&job.argv[0])
        .args(&job.argv[1..])
        .current_dir(&job.cwd));
    std::fs::read(job.cwd.join(&job.outputs[0].0)).unwrap()
}

/// Byte identity with local compiles, then a second link served by the cache with
/// nothing uploaded, and a third link (another pid, another directory) also a hit.
fn remote_matches_local(flags: &[&str]) {
    let scratch = tempfile::tempdir().unwrap();
    // An engine of its own: the first link must upload the toolchain.
    let engine = Engine::start(true, &scratch.path().join("cas"));
    let project = scratch.path().join("one");
    std::fs::create_dir(&project).unwrap();
    let doc = thin_link(&project, flags, true);
    let staging = scratch.path().join("staging1");
    std::fs::create_dir(&staging).unwrap();
    let jobs1 = jobs(&doc, &project, &staging);

    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    assert!(remote.can_execute());
    let cancel = Cancel::new();
    let first: Vec<JobResult> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs1
            .iter()
            .map(|j| s.spawn(|| remote.run_job(j, &cancel)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    });
    drop(remote);
    for (job, r) in jobs1.iter().zip(&first) {
        assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
        assert!(!r.cached);
        let remote_bytes = std::fs::read(&job.outputs[0].1).unwrap();
        assert_eq!(
            remote_bytes,
            local_compile(job),
            "job {}: remote and local objects differ",
            job.index
        );
    }
    let uploaded: u64 = first.iter().map(|r| r.uploaded_bytes).sum();
    eprintln!(
        "first link ({flags:?}): uploaded {uploaded} bytes, hashed {} bytes, {:?} and {:?}",
        first.iter().map(|r| r.hashed_bytes).sum::<u64>(),
        first[0].elapsed,
        first[1].elapsed
    );
    assert!(
        uploaded > 1_000_000,
        "the toolchain is uploaded the first time"
    );

    // The undeclared file beside the inputs never left the machine.
    let secret = digest::of_bytes(&std::fs::read(project.join("undeclared.o")).unwrap());
    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    let missing = remote.runtime.block_on(async {
        let req = re::FindMissingBlobsRequest {
            instance_name: String::new(),
            blob_digests: vec![secret.clone()],
            digest_function: re::digest_function::Value::Sha256 as i32,
        };
        re::content_addressable_storage_client::ContentAddressableStorageClient::new(
            remote.client.channel(),
        )
        .find_missing_blobs(req)
        .await
        .unwrap()
        .into_inner()
        .missing_blob_digests
    });
    assert_eq!(
        missing,
        vec![secret],
        "the undeclared file is in the server's CAS"
    );

    // The same link again: every job a cache hit, nothing uploaded, the toolchain not hashed.
    let staging2 = scratch.path().join("staging2");
    std::fs::create_dir(&staging2).unwrap();
    for job in jobs(&doc, &project, &staging2) {
        let r = remote.run_job(&job, &cancel).unwrap();
        assert!(r.cached && r.exit_code == 0);
        assert_eq!(r.uploaded_bytes, 0);
        assert!(
            r.hashed_bytes < 1_000_000,
            "hashed {} bytes: the toolchain again?",
            r.hashed_bytes
        );
        assert_eq!(
            std::fs::read(&job.outputs[0].1).unwrap(),
            std::fs::read(&jobs1[job.index].outputs[0].1).unwrap()
        );
        eprintln!(
            "second link: job {} cached in {:?}, hashed {} bytes",
            job.index, r.elapsed, r.hashed_bytes
        );
    }

    // Another link of the same program, in another directory, by another process.
    // (The same bitcode: compiled elsewhere with -g, it would name its directory.)
    let other = scratch.path().join("two");
    std::fs::create_dir(&other).unwrap();
    for o in ["main.o", "helper.o"] {
        std::fs::copy(project.join(o), other.join(o)).unwrap();
    }
    let doc2 = thin_link(&other, flags, false);
    assert_ne!(
        doc2["jobs"][0]["outputs"], doc["jobs"][0]["outputs"],
        "the pid should differ"
    );
    let staging3 = scratch.path().join("staging3");
    std::fs::create_dir(&staging3).unwrap();
    for job in jobs(&doc2, &other, &staging3) {
        let r = remote.run_job(&job, &cancel).unwrap();
        assert!(
            r.cached,
            "job {}: a link in another directory with another pid missed the cache",
            job.index
        );
        assert_eq!(r.uploaded_bytes, 0);
    }
}

#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap) and DTLTO_LLVM_BIN (real clang)"]
fn remote_objects_are_local_objects_at_o2() {
    remote_matches_local(&["-O2"]);
}

#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap) and DTLTO_LLVM_BIN (real clang)"]
fn remote_objects_are_local_objects_with_debug_info() {
    remote_matches_local(&["-O2", "-g"]);
}

/// A cache-only endpoint (no execution) serves a re-link from its cache, and says
/// which action it lacks otherwise.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap) and DTLTO_LLVM_BIN (real clang)"]
fn a_cache_only_endpoint_serves_hits_and_names_misses() {
    let scratch = tempfile::tempdir().unwrap();
    let cas = scratch.path().join("cas");
    let project = scratch.path().join("p");
    std::fs::create_dir(&project).unwrap();
    let doc = thin_link(&project, &["-O2"], true);
    let staging = scratch.path().join("s1");
    std::fs::create_dir(&staging).unwrap();
    {
        let engine = Engine::start(true, &cas);
        let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
        let job = &jobs(&doc, &project, &staging)[0];
        assert!(!remote.run_job(job, &Cancel::new()).unwrap().cached);
    }
    let engine = Engine::start(false, &cas);
    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    assert!(!remote.can_execute());
    let staging2 = scratch.path().join("s2");
    std::fs::create_dir(&staging2).unwrap();
    let jobs2 = jobs(&doc, &project, &staging2);
    let hit = remote.run_job(&jobs2[0], &Cancel::new()).unwrap();
    assert!(hit.cached && hit.exit_code == 0);
    assert_eq!(
        std::fs::read(&jobs2[0].outputs[0].1).unwrap(),
        std::fs::read(&jobs(&doc, &project, &staging)[0].outputs[0].1).unwrap()
    );
    let err = remote.run_job(&jobs2[1], &Cancel::new()).unwrap_err();
    assert!(
        matches!(err, RemoteError::NotCached { job: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("cache only"), "{err}");
}

/// A job running `sleep` (shipped with its libraries): cancelling returns at once and
/// CancelOperation stops the sandboxed process on the server.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap)"]
fn cancel_stops_the_action_on_the_server() {
    let scratch = tempfile::tempdir().unwrap();
    let remote = Remote::connect(&shared_settings("cancel", scratch.path())).unwrap();
    let marker = "37.25";
    let job = RemoteJob {
        index: 3,
        argv: vec!["sleep".into(), marker.into()],
        inputs: Vec::new(),
        outputs: vec![("never.o".into(), scratch.path().join("never.o"))],
        cwd: scratch.path().to_path_buf(),
        temporaries: None,
    };
    let cancel = Cancel::new();
    let fire = cancel.clone();
    let sleeping = || sleep_processes(marker);
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while sleeping() == 0 && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            fire.cancel();
        });
        remote.run_job(&job, &cancel)
    });
    let cancelled_at = started.elapsed();
    assert!(
        matches!(result, Err(RemoteError::Cancelled { job: 3 })),
        "{result:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while sleeping() > 0 {
        assert!(
            Instant::now() < deadline,
            "the action still runs on the server after CancelOperation"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("cancelled after {cancelled_at:?}");
    assert!(!scratch.path().join("never.o").exists());
}

/// Processes whose command line is `sleep MARKER` (read from /proc).
fn sleep_processes(marker: &str) -> usize {
    let want = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).ends_with(&want))
        })
        .count()
}

/// A server killed mid-action: an error soon, not a hang.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap)"]
fn a_server_dying_mid_action_is_an_error_not_a_hang() {
    let scratch = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(true, &scratch.path().join("cas"));
    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    let marker = "38.5";
    let job = RemoteJob {
        index: 0,
        argv: vec!["sleep".into(), marker.into()],
        inputs: Vec::new(),
        outputs: vec![("never.o".into(), scratch.path().join("never.o"))],
        cwd: scratch.path().to_path_buf(),
        temporaries: None,
    };
    let started = Instant::now();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while sleep_processes(marker) == 0 && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(50));
            }
            engine.stop();
        });
        remote.run_job(&job, &Cancel::new())
    });
    let err = result.unwrap_err();
    eprintln!("after {:?}: {err}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
}

/// A declared output the command does not write: an error naming it and the job.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap)"]
fn an_output_the_action_did_not_produce_is_named() {
    let scratch = tempfile::tempdir().unwrap();
    let remote = Remote::connect(&shared_settings("no output", scratch.path())).unwrap();
    let job = RemoteJob {
        index: 7,
        argv: vec!["true".into()],
        inputs: Vec::new(),
        outputs: vec![("main.1.99.native.o".into(), scratch.path().join("out.o"))],
        cwd: scratch.path().to_path_buf(),
        temporaries: None,
    };
    let err = remote.run_job(&job, &Cancel::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "jobs[7]: output main.1.99.native.o: the remote action did not produce it"
    );
    assert!(!scratch.path().join("out.o").exists());
}

/// A job that copies its input to its output, through a Unix socket endpoint.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap)"]
fn a_unix_socket_endpoint_runs_actions() {
    let scratch = tempfile::tempdir().unwrap();
    let socket = scratch.path().join("casd.sock");
    let engine = Engine::start_on(
        true,
        &scratch.path().join("cas"),
        &format!("unix:{}", socket.display()),
    );
    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    std::fs::write(scratch.path().join("in.txt"), "through the socket").unwrap();
    let job = RemoteJob {
        index: 0,
        argv: vec!["cp".into(), "in.txt".into(), "x.1.4242.native.o".into()],
        inputs: vec!["in.txt".into()],
        outputs: vec![("x.1.4242.native.o".into(), scratch.path().join("staged.o"))],
        cwd: scratch.path().to_path_buf(),
        temporaries: None,
    };
    let r = remote.run_job(&job, &Cancel::new()).unwrap();
    assert_eq!(r.exit_code, 0, "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("staged.o")).unwrap(),
        "through the socket"
    );
}

/// A server that lost the blobs this session uploaded (restarted with an empty cache
/// on the same address): Execute says they are missing, they are uploaded again once.
#[test]
#[ignore = "needs DTLTO_REAPI_ENGINE_BIN (buildbox-casd, buildbox-run, bwrap)"]
fn blobs_the_server_lost_are_uploaded_again() {
    let scratch = tempfile::tempdir().unwrap();
    let bind = free_local_address();
    let mut engine = Engine::start_on(true, &scratch.path().join("cas1"), &bind);
    let remote = Remote::connect(&settings(&engine, scratch.path())).unwrap();
    std::fs::write(scratch.path().join("in.txt"), "first").unwrap();
    let job = |n: usize| RemoteJob {
        index: n,
        argv: vec!["cp".into(), "in.txt".into(), "out.o".into()],
        inputs: vec!["in.txt".into()],
        outputs: vec![("out.o".into(), scratch.path().join(format!("staged{n}.o")))],
        cwd: scratch.path().to_path_buf(),
        temporaries: None,
    };
    let first = remote.run_job(&job(0), &Cancel::new()).unwrap();
    assert!(first.uploaded_bytes > 0);
    engine.stop();
    let _engine = Engine::start_on(true, &scratch.path().join("cas2"), &bind);
    // A new input, so the action is new; the toolchain this session believes present is gone.
    std::fs::write(scratch.path().join("in.txt"), "second").unwrap();
    let again = remote.run_job(&job(1), &Cancel::new()).unwrap();
    assert_eq!(again.exit_code, 0);
    assert!(
        again.uploaded_bytes >= first.uploaded_bytes - 64,
        "{} then {}",
        first.uploaded_bytes,
        again.uploaded_bytes
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("staged1.o")).unwrap(),
        "second"
    );
}
