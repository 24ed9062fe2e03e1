//! A real REAPI v2 engine for remote mode's tests: buildbox-casd with buildbox-run
//! (bubblewrap), started by tools/reapi-engine.sh in a directory of its own. One
//! engine serves the whole test run (`Engine::shared`), each test in a cache
//! namespace of its own; a test that stops, kills or reconfigures its engine starts
//! its own, stopped when dropped. The tests that need one are #[ignore]d with that
//! reason, and fail loudly when run without it.

use super::dir::TestDir;
use super::runner::repo_root;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

/// Where the engine's binaries are: DTLTO_REAPI_ENGINE_BIN, which tests/all.sh sets
/// from tools/install-reapi-engine.sh.
pub fn engine_bin() -> PathBuf {
    match std::env::var_os("DTLTO_REAPI_ENGINE_BIN") {
        Some(bin) if Path::new(&bin).join("buildbox-casd").exists() => PathBuf::from(bin),
        _ => panic!(
            "the REAPI engine is missing: set DTLTO_REAPI_ENGINE_BIN to the directory \
             `bash tools/install-reapi-engine.sh` prints (tests/all.sh does)"
        ),
    }
}

/// `tools/reapi-engine.sh ACTION OPTIONS DIR [-- CASD_ARGS]`, run to its end.
pub fn engine_script(
    action: &str,
    options: &[&str],
    dir: &Path,
    casd_args: &[&str],
) -> std::process::Output {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("tools/reapi-engine.sh"))
        .arg(action)
        .args(options)
        .arg(dir);
    if !casd_args.is_empty() {
        command.arg("--").args(casd_args);
    }
    command.env("DTLTO_REAPI_ENGINE_BIN", engine_bin());
    command.output().expect("run tools/reapi-engine.sh")
}

/// A running engine: its endpoint, and its directory (cache, log, pid).
pub struct Engine {
    pub endpoint: String,
    dir: TestDir,
}

/// What a test's remote runs name: the engine's endpoint and, on the shared engine,
/// the test's own `--cache-salt`, so that no test is served another's results.
pub struct Service {
    pub endpoint: String,
    pub salt: String,
}

impl Service {
    /// The same service reached at another endpoint (a proxy in front of it).
    pub fn through(&self, endpoint: &str) -> Service {
        Service {
            endpoint: endpoint.to_owned(),
            salt: self.salt.clone(),
        }
    }

    /// `remote --endpoint=URL`, `--cache-salt=SALT` if any, then `more`: the runner's
    /// words for remote mode.
    pub fn remote(&self, more: &[&str]) -> Vec<String> {
        let mut words = vec!["remote".to_owned(), format!("--endpoint={}", self.endpoint)];
        if !self.salt.is_empty() {
            words.push(format!("--cache-salt={}", self.salt));
        }
        words.extend(more.iter().map(|w| w.to_string()));
        words
    }
}

/// The engine of the whole test run, and the pipe whose end tells its watcher that
/// the run is over.
struct Shared {
    engine: Engine,
    _run_lasts: ChildStdin,
    /// Never waited for: it outlives this process, by design.
    _watcher: Child,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

impl Engine {
    /// The engine every test that neither stops, kills nor reconfigures its engine
    /// shares, started by the first that asks, and the service as `test` (a name no
    /// other test uses) sees it: its own cache namespace there. A watcher in a
    /// session of its own stops the engine and removes its directory once this
    /// process has ended, however it ends (statics are never dropped): it waits for
    /// the end of a pipe only this process holds.
    pub fn shared(test: &str) -> (&'static Engine, Service) {
        let shared = SHARED.get_or_init(|| {
            let engine = Engine::start("remote-engine-shared");
            let mut watcher = Command::new("bash");
            watcher
                .args(["-c", r#"cat >/dev/null; bash "$0" stop "$1"; rm -rf "$2""#])
                .arg(repo_root().join("tools/reapi-engine.sh"))
                .arg(engine.dir.join("engine"))
                .arg(engine.dir.path())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Not in the test's process group: a Ctrl-C there must not end it
                // before it has stopped the engine.
                .process_group(0);
            let mut watcher = watcher.spawn().expect("start the shared engine's watcher");
            let run_lasts = watcher.stdin.take().expect("the watcher's stdin");
            Shared {
                engine,
                _run_lasts: run_lasts,
                _watcher: watcher,
            }
        });
        let service = Service {
            endpoint: shared.engine.endpoint.clone(),
            salt: test.to_owned(),
        };
        (&shared.engine, service)
    }

    /// This engine, for the test that started it: no salt.
    pub fn service(&self) -> Service {
        Service {
            endpoint: self.endpoint.clone(),
            salt: String::new(),
        }
    }

    /// Starts an engine that executes actions, with a cache of its own.
    pub fn start(name: &str) -> Engine {
        Engine::start_in(TestDir::new(name), false)
    }

    /// Starts an engine in `dir`, reusing the cache an earlier engine left there;
    /// `cache_only`: without its execution service.
    pub fn start_in(dir: TestDir, cache_only: bool) -> Engine {
        let options: &[&str] = if cache_only { &["--cache-only"] } else { &[] };
        Engine::start_with(dir, options, &[])
    }

    /// Starts an engine in `dir` with reapi-engine.sh's `options` and, after them,
    /// `casd_args` for buildbox-casd itself.
    pub fn start_with(dir: TestDir, options: &[&str], casd_args: &[&str]) -> Engine {
        let output = engine_script("start", options, &dir.join("engine"), casd_args);
        assert!(
            output.status.success(),
            "the engine did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Engine {
            endpoint: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            dir,
        }
    }

    /// Stops it, keeping its cache for `start_in`.
    pub fn stop(self) -> TestDir {
        let dir = self.dir.clone();
        drop(self);
        dir
    }

    /// The engine's cache directory (its CAS holds every blob sent).
    pub fn cache(&self) -> PathBuf {
        self.dir.join("engine/cache")
    }

    /// Kills it at once (SIGKILL), as a server that dies mid-run.
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("engine/pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }

    fn stop_now(&self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tools/reapi-engine.sh"))
            .arg("stop")
            .arg(self.dir.join("engine"))
            .output();
    }

    /// The engine's log, for a failed assertion's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("engine/casd.log")).unwrap_or_default()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The header a `TlsProxy` asks every call for: `x-farm-token: TOKEN`.
pub const TOKEN: &str = "s3cret-farm-token";

/// A TLS front for an engine: nginx passing gRPC on to it, behind a certificate of
/// a private CA made here, asking clients for a certificate of that CA too (mutual
/// TLS) and for a token header. The engine itself serves plain gRPC only.
pub struct TlsProxy {
    /// `grpcs://localhost:PORT`.
    pub endpoint: String,
    /// The CA (PEM) that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// The client's certificate and key (PEM).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    _nginx: Nginx,
    _dir: TestDir,
}

impl TlsProxy {
    /// Starts nginx (Debian's, which tests/all.sh installs) in front of `engine`.
    pub fn start(engine: &Engine) -> TlsProxy {
        let dir = TestDir::new("tls-proxy");
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl runs");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let days = ["-days", "2"];
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-subj",
            "/CN=dtlto-mock test CA",
            days[0],
            days[1],
        ]);
        dir.write("server.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
        dir.write("client.ext", "extendedKeyUsage=clientAuth\n");
        for (name, subject) in [("server", "/CN=localhost"), ("client", "/CN=client")] {
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            openssl(&[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                subject,
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-extfile",
                &ext,
                days[0],
                days[1],
            ]);
        }
        let port = free_port();
        let upstream = engine.endpoint.trim_start_matches("grpc://");
        let d = dir.path().display();
        let nginx = Nginx::start(
            &dir,
            &format!(
                "http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  server {{\n\
                 \x20   listen 127.0.0.1:{port} ssl http2;\n\
                 \x20   ssl_certificate {d}/server.pem;\n    ssl_certificate_key {d}/server.key;\n\
                 \x20   ssl_client_certificate {d}/ca.pem;\n    ssl_verify_client on;\n\
                 \x20   client_max_body_size 0;\n    location / {{\n\
                 \x20     if ($http_x_farm_token != \"{TOKEN}\") {{ return 403; }}\n\
                 \x20     grpc_pass grpc://{upstream};\n    }}\n\
                 \x20 }}\n}}\n"
            ),
            &[port],
        );
        TlsProxy {
            endpoint: format!("grpcs://localhost:{port}"),
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            _nginx: nginx,
            _dir: dir,
        }
    }
}

/// A port nothing listens on (the kernel's pick; free when asked).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// nginx (Debian's, which tests/all.sh installs) with an `http` block of the test's,
/// its files in the test's directory; ended when dropped.
struct Nginx(std::process::Child);

impl Nginx {
    /// Starts nginx and waits until every one of `ports` listens.
    fn start(dir: &TestDir, http: &str, ports: &[u16]) -> Nginx {
        let d = dir.path().display();
        dir.write(
            "nginx.conf",
            format!(
                "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n{http}"
            ),
        );
        let child = Command::new("nginx")
            .args(["-c", &format!("{d}/nginx.conf"), "-p", &d.to_string()])
            .spawn()
            .unwrap_or_else(|e| {
                panic!("nginx is missing ({e}): tests/all.sh installs Debian's nginx-light")
            });
        let nginx = Nginx(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        for &port in ports {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nginx did not listen: {}",
                    std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // nginx's master ends its workers on SIGTERM (std's kill is SIGKILL).
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// A plain gRPC front for an engine that lets through at most one call per 100 ms
/// and refuses the others, as a busy farm does: on one endpoint with HTTP 503 (gRPC
/// UNAVAILABLE), on the other with RESOURCE_EXHAUSTED. Its access log counts them.
pub struct ThrottlingProxy {
    /// `grpc://127.0.0.1:PORT`, whose refusals are UNAVAILABLE.
    pub unavailable: String,
    /// `grpc://127.0.0.1:PORT`, whose refusals are RESOURCE_EXHAUSTED.
    pub exhausted: String,
    dir: TestDir,
    _nginx: Nginx,
}

impl ThrottlingProxy {
    pub fn start(engine: &Engine) -> ThrottlingProxy {
        let dir = TestDir::new("throttling-proxy");
        let (unavailable, exhausted) = (free_port(), free_port());
        let upstream = engine.endpoint.trim_start_matches("grpc://");
        let d = dir.path().display();
        let server = |port: u16, zone: &str, refusal: &str| {
            format!(
                "  server {{\n    listen 127.0.0.1:{port} http2;\n    client_max_body_size 0;\n\
                 \x20   location / {{\n      limit_req zone={zone};\n{refusal}\
                 \x20     grpc_pass grpc://{upstream};\n    }}\n\
                 \x20   location @exhausted {{\n      default_type application/grpc;\n\
                 \x20     add_header grpc-status 8 always;\n\
                 \x20     add_header grpc-message \"throttled by the test's proxy\" always;\n\
                 \x20     return 200;\n    }}\n  }}\n"
            )
        };
        let http = format!(
            "http {{\n  log_format calls '$limit_req_status $status $request_uri';\n\
             \x20 access_log {d}/access.log calls;\n  client_body_temp_path {d}/body;\n\
             \x20 limit_req_zone $server_port zone=one:1m rate=10r/s;\n\
             \x20 limit_req_zone $server_port zone=two:1m rate=10r/s;\n{}{}}}\n",
            server(unavailable, "one", "      limit_req_status 503;\n"),
            server(
                exhausted,
                "two",
                "      limit_req_status 429;\n      error_page 429 = @exhausted;\n"
            ),
        );
        let nginx = Nginx::start(&dir, &http, &[unavailable, exhausted]);
        ThrottlingProxy {
            unavailable: format!("grpc://127.0.0.1:{unavailable}"),
            exhausted: format!("grpc://127.0.0.1:{exhausted}"),
            dir,
            _nginx: nginx,
        }
    }

    /// How many calls it let through and refused so far: (passed, refused).
    pub fn calls(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        let refused = log.lines().filter(|l| l.starts_with("REJECTED ")).count();
        (log.lines().count() - refused, refused)
    }
}
