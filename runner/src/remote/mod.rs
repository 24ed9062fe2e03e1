//! Remote mode's core: each DTLTO job as a REAPI v2 Action on any REAPI service.
//!
//! A job becomes an action whose digest depends only on what the compile depends on
//! (`action.rs`: stable names, a fixed working directory, only the declared inputs and
//! the toolchain, `toolchain.rs`); the action is looked up in the cache, and executed
//! only on a miss, its blobs uploaded first (`client.rs`); its outputs are written only
//! where the caller says, only after a zero exit, each checked against its digest.
//! A blocking API over an internal tokio runtime: `run_job` may be called from several
//! threads at once, sharing one connection.

mod action;
mod client;
mod digest;
mod error;
mod executor;
pub mod options;
mod temporaries;
mod toolchain;
mod transport;
mod tree;

pub use executor::RemoteRunError;
pub use options::{parse, selected, Options, OptionsError, PROGRAM, USAGE, WORD};

#[cfg(all(test, target_os = "linux"))]
mod engine_tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::{
    operation, operations_client::OperationsClient, CancelOperationRequest,
};
use prost::Message;
use tonic::Code;

pub use error::{JobLabel, RemoteError};

use action::PreparedAction;
use client::{Client, Transfer};
use digest::{show, DigestCache};
use toolchain::Toolchain;

/// Runs remote mode as `options` ask, paths relative to `cwd`, through the run's
/// driver; returns the exit status.
pub fn run(
    options: &Options,
    cwd: &std::path::Path,
) -> Result<crate::exit_status::ExitStatus, crate::error::RunError> {
    crate::drive::drive(
        &mut executor::RemoteRun {
            options,
            cwd,
            job_file: None,
            remote: None,
            cancel: Cancel::new(),
            stop_hook: None,
            temporaries: Vec::new(),
            cwd_id: None,
            declared: None,
        },
        &crate::drive::Run {
            job_file: &options.job_file,
            verbose: options.verbose,
            cwd,
        },
    )
}

/// How to reach the service and what to send.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `grpc://HOST:PORT`, `grpcs://HOST:PORT` (TLS) or `unix:///PATH`.
    pub endpoint: String,
    /// The REAPI instance name (often empty).
    pub instance_name: String,
    /// Headers sent with every call (`authorization`, say).
    pub headers: Vec<(String, String)>,
    /// The CA certificate (PEM) to trust instead of the system's roots.
    pub tls_ca: Option<PathBuf>,
    /// The client certificate (PEM), for mutual TLS.
    pub tls_client_cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    pub tls_client_key: Option<PathBuf>,
    /// Platform properties that select a worker (`OSFamily`, `container-image`).
    pub platform: Vec<(String, String)>,
    /// Execute even when the cache has a result.
    pub skip_cache_lookup: bool,
    /// REAPI's `Action.salt`: actions with another salt share no cache entries, so a
    /// new salt disowns results that a broken tool or worker may have cached. Empty:
    /// none.
    pub cache_salt: String,
    /// Send the compiler and the libraries it loads with each action (so that a
    /// worker without the compiler runs it); off: the worker's toolchain is used.
    pub ship_toolchain: bool,
    /// Where the digest cache lives; `None`: `$XDG_CACHE_HOME/dtlto-mock/` or
    /// `~/.cache/dtlto-mock/`.
    pub digest_cache: Option<PathBuf>,
    /// How long connecting may take.
    pub connect_timeout: Duration,
}

impl Settings {
    /// Settings for an endpoint, with the defaults: the toolchain shipped, the cache
    /// looked up first, 5 s to connect.
    pub fn new(endpoint: impl Into<String>) -> Settings {
        Settings {
            endpoint: endpoint.into(),
            instance_name: String::new(),
            headers: Vec::new(),
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
            platform: Vec::new(),
            skip_cache_lookup: false,
            cache_salt: String::new(),
            ship_toolchain: true,
            digest_cache: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// One job, as the job file declares it.
#[derive(Debug, Clone)]
pub struct RemoteJob {
    /// The job's index in the job file (for messages).
    pub index: usize,
    /// `common.args + jobs[i].args`, exactly as in the job file.
    pub argv: Vec<String>,
    /// `common.inputs + jobs[i].inputs`, as declared (relative to `cwd` or absolute).
    pub inputs: Vec<String>,
    /// Each declared output, and where to write it (a path that does not exist yet).
    pub outputs: Vec<(String, PathBuf)>,
    /// The directory the linker ran in.
    pub cwd: PathBuf,
    /// What its compile may leave in its working directory besides its outputs
    /// (`-save-temps`), to bring back.
    pub temporaries: Option<Temporaries>,
}

/// A job's temporaries: their names in the working directory, none of them a
/// declared input or output, and the private directory they are written into (new
/// files only) until the run commits and moves them into the working directory.
#[derive(Debug, Clone)]
pub struct Temporaries {
    /// Their names in the working directory.
    pub names: Vec<String>,
    /// The private directory they are written into.
    pub dir: PathBuf,
}

/// What one job did.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The result came from the action cache (no execution).
    pub cached: bool,
    /// The compiler's exit code (outputs were written only if it is 0).
    pub exit_code: i32,
    /// The compiler's standard output.
    pub stdout: Vec<u8>,
    /// The compiler's standard error.
    pub stderr: Vec<u8>,
    /// Bytes uploaded for this job (blobs the server lacked).
    pub uploaded_bytes: u64,
    /// The temporaries it wrote (names, in `Temporaries::dir`).
    pub temporaries: Vec<String>,
    /// Bytes downloaded (outputs, temporaries, stdout, stderr).
    pub downloaded_bytes: u64,
    /// Bytes read to hash files the digest cache did not know.
    pub hashed_bytes: u64,
    /// Wall time of the job.
    pub elapsed: Duration,
}

/// A cancellation token: clones share it; `cancel` stops every job that watches it
/// (in-flight executions are cancelled on the server with CancelOperation).
#[derive(Debug, Clone, Default)]
pub struct Cancel {
    inner: Arc<CancelInner>,
}

#[derive(Debug, Default)]
struct CancelInner {
    fired: AtomicBool,
    notify: tokio::sync::Notify,
}

impl Cancel {
    /// A token not fired.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Fires it (from any thread, any number of times).
    pub fn cancel(&self) {
        self.inner.fired.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether it was fired.
    pub fn is_cancelled(&self) -> bool {
        self.inner.fired.load(Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// A connected session: the runtime, the connection, the server's capabilities, the
/// digest cache and the toolchains found so far.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    client: Client,
    settings: Settings,
    digests: DigestCache,
    toolchains: Mutex<HashMap<(String, PathBuf), Arc<Toolchain>>>,
}

impl Remote {
    /// Connects to the endpoint and checks what it can do (SHA-256; execution, or a
    /// cache-only endpoint, where only cache hits can succeed). Fails within the
    /// connect timeout for an endpoint that does not answer.
    pub fn connect(settings: &Settings) -> Result<Remote, RemoteError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dtlto-remote")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Connect {
                endpoint: settings.endpoint.clone(),
                what: format!("cannot start its runtime: {e}"),
            })?;
        let client = runtime.block_on(Client::connect(settings, settings.connect_timeout))?;
        let digests = DigestCache::load(
            settings
                .digest_cache
                .clone()
                .or_else(DigestCache::default_path),
        );
        Ok(Remote {
            runtime,
            client,
            settings: settings.clone(),
            digests,
            toolchains: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the endpoint executes actions (if not, only cache hits succeed).
    pub fn can_execute(&self) -> bool {
        self.client.caps.exec_enabled
    }

    /// Saves the digest cache (also done when the session is dropped).
    pub fn save_digest_cache(&self) -> std::io::Result<()> {
        self.digests.save()
    }

    /// Runs one job: the cache first, else execution; writes its outputs on a zero
    /// exit. Returns `RemoteError::Cancelled` soon after `cancel` fires.
    pub fn run_job(&self, job: &RemoteJob, cancel: &Cancel) -> Result<JobResult, RemoteError> {
        let start = Instant::now();
        if cancel.is_cancelled() {
            return Err(RemoteError::Cancelled { job: job.index });
        }
        let (toolchain, toolchain_hashed) = self.toolchain(job)?;
        let cx = action::Context {
            digests: &self.digests,
            platform: &self.settings.platform,
            salt: self.settings.cache_salt.as_bytes(),
            output_paths: self.client.caps.output_paths,
        };
        let prepared = action::prepare(job, &toolchain, &cx)?;
        if cancel.is_cancelled() {
            return Err(RemoteError::Cancelled { job: job.index });
        }
        let stats = Transfer::default();
        let operation: Mutex<Option<String>> = Mutex::new(None);
        let outcome = self.runtime.block_on(async {
            tokio::select! {
                r = self.run_prepared(job, &prepared, &stats, &operation) => r,
                () = cancel.cancelled() => {
                    let name = operation.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    if let Some(name) = name {
                        self.cancel_operation(name).await;
                    }
                    Err(RemoteError::Cancelled { job: job.index })
                }
            }
        });
        let (cached, result) = outcome?;
        let (stdout, stderr) = self.runtime.block_on(async {
            let out = self
                .blob_or_raw(
                    job.index,
                    &result.stdout_raw,
                    result.stdout_digest.as_ref(),
                    "stdout",
                    &stats,
                )
                .await?;
            let err = self
                .blob_or_raw(
                    job.index,
                    &result.stderr_raw,
                    result.stderr_digest.as_ref(),
                    "stderr",
                    &stats,
                )
                .await?;
            Ok::<_, RemoteError>((out, err))
        })?;
        let mut temporaries = Vec::new();
        if result.exit_code == 0 {
            temporaries = self
                .runtime
                .block_on(self.write_outputs(job, &prepared, &result, &stats))?;
        }
        Ok(JobResult {
            cached,
            exit_code: result.exit_code,
            stdout,
            stderr,
            temporaries,
            uploaded_bytes: stats.uploaded.into_inner(),
            downloaded_bytes: stats.downloaded.into_inner(),
            hashed_bytes: prepared.hashed_bytes + toolchain_hashed,
            elapsed: start.elapsed(),
        })
    }

    /// The compiler (and, when shipped, what it loads), found and hashed once per
    /// session, however many jobs start at once; and the bytes hashed for it now.
    fn toolchain(&self, job: &RemoteJob) -> Result<(Arc<Toolchain>, u64), RemoteError> {
        let argv0 = job.argv.first().cloned().unwrap_or_default();
        let key = (argv0.clone(), job.cwd.clone());
        // Held while the toolchain is hashed: other jobs wait rather than hash it too.
        let mut known = self.toolchains.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = known.get(&key) {
            return Ok((t.clone(), 0));
        }
        let fail = |what: String| RemoteError::Toolchain {
            job: job.index,
            compiler: argv0.clone(),
            what,
        };
        let path =
            toolchain::find_compiler(&argv0, &job.cwd, std::env::var_os("PATH")).map_err(fail)?;
        let t = if self.settings.ship_toolchain {
            toolchain::resolve(&path).map_err(fail)?
        } else {
            Toolchain {
                compiler: path.to_string_lossy().into_owned(),
                entries: Vec::new(),
                env: Vec::new(),
            }
        };
        let mut hashed = 0;
        for entry in &t.entries {
            if let toolchain::Entry::File { path, .. } = entry {
                let (_, n) = self
                    .digests
                    .file(path)
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?;
                hashed += n;
            }
        }
        let t = Arc::new(t);
        known.insert(key, t.clone());
        Ok((t, hashed))
    }

    /// The cache, else upload and execute: the result and whether it was cached.
    async fn run_prepared(
        &self,
        job: &RemoteJob,
        prepared: &PreparedAction,
        stats: &Transfer,
        operation: &Mutex<Option<String>>,
    ) -> Result<(bool, re::ActionResult), RemoteError> {
        let label = JobLabel(Some(job.index));
        let action = show(&prepared.action_digest);
        if !self.settings.skip_cache_lookup {
            let req = re::GetActionResultRequest {
                instance_name: self.client.instance().to_string(),
                action_digest: Some(prepared.action_digest.clone()),
                inline_stdout: true,
                inline_stderr: true,
                inline_output_files: Vec::new(),
                digest_function: re::digest_function::Value::Sha256 as i32,
            };
            let ac = || {
                let mut c = re::action_cache_client::ActionCacheClient::new(self.client.channel());
                let r = self.client.request(req.clone());
                async move { c.get_action_result(r).await }
            };
            match self
                .client
                .retry("GetActionResult", label, Duration::from_secs(60), ac)
                .await
            {
                // A cached failure is no answer: servers should not cache them.
                Ok(r) if r.get_ref().exit_code == 0 || !self.client.caps.exec_enabled => {
                    return Ok((true, r.into_inner()))
                }
                Ok(_) => {}
                Err(RemoteError::Rpc {
                    code: Code::NotFound,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
        if !self.client.caps.exec_enabled {
            return Err(RemoteError::NotCached {
                job: job.index,
                endpoint: self.client.endpoint.clone(),
                action,
            });
        }
        self.client
            .upload_missing(job.index, &prepared.blobs, stats)
            .await?;
        match self.execute(job.index, prepared, operation).await {
            // Blobs the server lost (or never had, though it said so): once more.
            Err(Missing(_)) => {
                self.client.forget_present(&prepared.blobs);
                self.client
                    .upload_missing(job.index, &prepared.blobs, stats)
                    .await?;
                match self.execute(job.index, prepared, operation).await {
                    Err(Missing(s)) => Err(RemoteError::Execution {
                        job: job.index,
                        endpoint: self.client.endpoint.clone(),
                        action,
                        code: s.code(),
                        message: format!(
                            "inputs missing after they were uploaded again: {}",
                            s.message()
                        ),
                    }),
                    Err(Other(e)) => Err(e),
                    Ok(r) => Ok(r),
                }
            }
            Err(Other(e)) => Err(e),
            Ok(r) => Ok(r),
        }
    }

    /// One Execute, followed to its end (WaitExecution if the stream ends early).
    async fn execute(
        &self,
        job: usize,
        prepared: &PreparedAction,
        operation: &Mutex<Option<String>>,
    ) -> Result<(bool, re::ActionResult), ExecFailure> {
        let label = JobLabel(Some(job));
        let action = show(&prepared.action_digest);
        let req = re::ExecuteRequest {
            instance_name: self.client.instance().to_string(),
            // The cache was asked already (or is to be skipped).
            skip_cache_lookup: true,
            action_digest: Some(prepared.action_digest.clone()),
            digest_function: re::digest_function::Value::Sha256 as i32,
            ..Default::default()
        };
        let exec = || {
            let mut c = re::execution_client::ExecutionClient::new(self.client.channel());
            let r = self.client.request(req.clone());
            async move { c.execute(r).await }
        };
        let start = self
            .client
            .retry("Execute", label, Duration::from_secs(60), exec)
            .await;
        let mut stream = match start {
            Ok(s) => s.into_inner(),
            Err(RemoteError::Rpc {
                code: Code::FailedPrecondition,
                message,
                ..
            }) => {
                return Err(Missing(tonic::Status::failed_precondition(message)));
            }
            Err(e) => return Err(Other(e)),
        };
        let mut waits = 0;
        loop {
            let next = match stream.message().await {
                Ok(m) => m,
                Err(s) => return Err(Other(self.client.rpc_err("Execute", label, s))),
            };
            let Some(op) = next else {
                // The stream ended before the operation did: wait for it by name.
                let name = operation.lock().unwrap_or_else(|e| e.into_inner()).clone();
                waits += 1;
                let Some(name) = name.filter(|_| waits <= 3) else {
                    return Err(Other(self.client.rpc_err(
                        "Execute",
                        label,
                        tonic::Status::unavailable("the stream ended before the action did"),
                    )));
                };
                let req = re::WaitExecutionRequest { name };
                let wait = || {
                    let mut c = re::execution_client::ExecutionClient::new(self.client.channel());
                    let r = self.client.request(req.clone());
                    async move { c.wait_execution(r).await }
                };
                stream = self
                    .client
                    .retry("WaitExecution", label, Duration::from_secs(60), wait)
                    .await
                    .map_err(Other)?
                    .into_inner();
                continue;
            };
            if !op.name.is_empty() {
                *operation.lock().unwrap_or_else(|e| e.into_inner()) = Some(op.name.clone());
            }
            if !op.done {
                continue;
            }
            let execution_err = |code: Code, message: String| RemoteError::Execution {
                job,
                endpoint: self.client.endpoint.clone(),
                action: action.clone(),
                code,
                message,
            };
            let response = match op.result {
                Some(operation::Result::Response(any)) => {
                    re::ExecuteResponse::decode(any.value.as_slice()).map_err(|e| {
                        Other(execution_err(
                            Code::Internal,
                            format!("an ExecuteResponse that does not decode: {e}"),
                        ))
                    })?
                }
                Some(operation::Result::Error(s)) => {
                    let code = Code::from(s.code);
                    if matches!(code, Code::FailedPrecondition | Code::NotFound) {
                        return Err(Missing(tonic::Status::new(code, s.message)));
                    }
                    return Err(Other(execution_err(code, s.message)));
                }
                None => {
                    return Err(Other(execution_err(
                        Code::Internal,
                        "a finished operation without a result".into(),
                    )))
                }
            };
            if let Some(s) = response.status.filter(|s| s.code != 0) {
                let code = Code::from(s.code);
                if matches!(code, Code::FailedPrecondition | Code::NotFound) {
                    return Err(Missing(tonic::Status::new(code, s.message)));
                }
                return Err(Other(execution_err(code, s.message)));
            }
            let result = response.result.ok_or_else(|| {
                Other(execution_err(
                    Code::Internal,
                    "an ExecuteResponse without a result".into(),
                ))
            })?;
            return Ok((response.cached_result, result));
        }
    }

    async fn cancel_operation(&self, name: String) {
        let req = CancelOperationRequest { name };
        let mut ops = OperationsClient::new(self.client.channel());
        let call = ops.cancel_operation(self.client.request(req));
        // Best effort: the job is cancelled here whatever the server says.
        let _ = tokio::time::timeout(Duration::from_secs(3), call).await;
    }

    async fn blob_or_raw(
        &self,
        job: usize,
        raw: &[u8],
        d: Option<&re::Digest>,
        what: &str,
        stats: &Transfer,
    ) -> Result<Vec<u8>, RemoteError> {
        match d {
            Some(d) if raw.is_empty() && d.size_bytes > 0 => {
                self.client.download(job, d, what, stats).await
            }
            _ => Ok(raw.to_vec()),
        }
    }

    /// Every declared output found in the result, downloaded and checked, then written
    /// (new files only, never through a link); nothing written if one is missing.
    /// Then the temporaries the result has, written alike into their directory;
    /// returns their names.
    async fn write_outputs(
        &self,
        job: &RemoteJob,
        prepared: &PreparedAction,
        result: &re::ActionResult,
        stats: &Transfer,
    ) -> Result<Vec<String>, RemoteError> {
        let mut files = Vec::new();
        for (path, declared, dest) in &prepared.outputs {
            let found = result.output_files.iter().find(|f| f.path == *path);
            let Some(file) = found else {
                return Err(RemoteError::MissingOutput {
                    job: job.index,
                    declared: declared.clone(),
                });
            };
            let data = self.output_data(job.index, file, declared, stats).await?;
            files.push((declared.clone(), dest.clone(), data));
        }
        for (declared, dest, data) in files {
            write_new(&dest, &data).map_err(|source| RemoteError::WriteOutput {
                job: job.index,
                declared,
                path: dest,
                source,
            })?;
        }
        // Only the names asked for are looked at: a server cannot add one. Each is
        // written as it comes; one that cannot be fetched is left out, with a line:
        // temporaries are not outputs.
        let mut temporaries = Vec::new();
        if let Some(wanted) = &job.temporaries {
            for name in &prepared.temporaries {
                let Some(file) = result.output_files.iter().find(|f| f.path == *name) else {
                    continue;
                };
                let dest = wanted.dir.join(name);
                let written = match self.output_data(job.index, file, name, stats).await {
                    Ok(data) => write_new(&dest, &data).map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                match written {
                    Ok(()) => temporaries.push(name.clone()),
                    Err(why) => dtlto_mock::stderr_line!(
                        "dtlto-runner: warning: jobs[{}]: the -save-temps temporary {} was \
                         not brought back: {why}",
                        job.index,
                        dtlto_mock::message::quoted(name)
                    ),
                }
            }
        }
        Ok(temporaries)
    }

    /// An output file's contents, inline or downloaded, checked against its digest.
    async fn output_data(
        &self,
        job: usize,
        file: &re::OutputFile,
        what: &str,
        stats: &Transfer,
    ) -> Result<Vec<u8>, RemoteError> {
        let d = file.digest.clone().unwrap_or_default();
        if file.contents.is_empty() && d.size_bytes != 0 {
            return self.client.download(job, &d, what, stats).await;
        }
        if digest::of_bytes(&file.contents) != d {
            return Err(RemoteError::Corrupt {
                job,
                endpoint: self.client.endpoint.clone(),
                digest: show(&d),
                what: what.to_string(),
            });
        }
        Ok(file.contents.clone())
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        // Best effort: a cache that is not saved only costs hashing next time.
        let _ = self.digests.save();
    }
}

/// Why one Execute did not give a result.
enum ExecFailure {
    /// Inputs missing on the server: upload again and retry once.
    Missing(tonic::Status),
    Other(RemoteError),
}
use ExecFailure::{Missing, Other};

/// Creates `path` (it must not exist: a link there is not followed) with `data`.
fn write_new(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_endpoint_fails_within_seconds_naming_it() {
        // A port nobody listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("grpc://127.0.0.1:{port}");
        let start = Instant::now();
        let err = Remote::connect(&Settings::new(&endpoint)).err().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(7),
            "{:?}",
            start.elapsed()
        );
        assert!(
            err.to_string().starts_with(&format!(
                "cannot connect to the remote endpoint {endpoint}: "
            )),
            "{err}"
        );
        // An address that never answers: the connect timeout.
        let mut s = Settings::new("grpc://10.255.255.1:9");
        s.connect_timeout = Duration::from_secs(1);
        let start = Instant::now();
        let err = Remote::connect(&s).err().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
        assert!(err.to_string().contains("grpc://10.255.255.1:9"), "{err}");
    }

    #[test]
    fn endpoint_syntax_and_tls_settings_are_checked() {
        let err = Remote::connect(&Settings::new("localhost:8980"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("expected grpc://HOST:PORT"),
            "{err}"
        );
        let mut s = Settings::new("grpc://127.0.0.1:1");
        s.tls_ca = Some("/nonexistent/ca.pem".into());
        let err = Remote::connect(&s).err().unwrap();
        assert!(err.to_string().contains("without TLS"), "{err}");
        s.endpoint = "grpcs://127.0.0.1:1".into();
        let err = Remote::connect(&s).err().unwrap();
        assert!(
            err.to_string()
                .contains("CA certificate /nonexistent/ca.pem"),
            "{err}"
        );
        let mut s = Settings::new("grpc://127.0.0.1:1");
        s.headers.push(("bad header".into(), "x".into()));
        let err = Remote::connect(&s).err().unwrap();
        assert!(err.to_string().contains("header \"bad header\""), "{err}");
    }

    #[test]
    fn a_fired_cancel_wakes_waiters_and_stays_fired() {
        let c = Cancel::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c2 = c.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            c2.cancel();
        });
        rt.block_on(c.cancelled());
        assert!(c.is_cancelled());
        rt.block_on(c.cancelled());
    }
}
