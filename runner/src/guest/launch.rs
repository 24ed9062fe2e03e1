//! Runs a wasip1 command under wasmtime with exactly the arguments, environment and
//! preopened directories it is given, and reports how it ended.

use super::code_in_place::CodeInPlace;
use super::engine_config::engine_config;
use super::guest_limits::{self, Limiter, Limits, TooMany};
use super::guest_module;
use super::wasi_guard::{self, Checks, Guard, Guarded, ReadDir};
use crate::interrupt;
use dtlto_mock::message::{io_error, quoted};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use wasmtime::{Config, Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// What the guest may see.
pub struct GuestView<'a> {
    /// `argv`, program name first.
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    /// (host directory, guest name) preopened read-only.
    pub read_dirs: &'a [(PathBuf, String)],
    /// For each of `read_dirs`, the names in it the guest may reach; `None` (or no
    /// entry) for the whole tree.
    pub granted: &'a [Option<BTreeSet<String>>],
    /// (host directory, guest name) preopened read-write.
    pub write_dirs: &'a [(PathBuf, String)],
    /// Every WASI call the guest makes completes on this thread (true of dtlto-mock:
    /// its only wait is a single relative sleep, which wasmtime-wasi serves with
    /// thread::sleep). Such a guest runs without wasmtime-wasi's multi-threaded tokio
    /// runtime, whose worker threads cost more to start than a small job takes. Any
    /// other wait (an absolute or multi-subscription `poll_oneoff`, asynchronous
    /// streams) would hang or panic there, which is why only the embedded guest, whose
    /// imports wit/ pins down, gets it.
    pub needs_no_reactor: bool,
    /// What the guest may take from the host.
    pub limits: Limits,
    /// Checks in front of its WASI calls.
    pub checks: Checks,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `main` returned or `exit(status)` was called.
    Exited(i32),
    /// The guest trapped (a panic, an abort, running out of memory...).
    Trapped(String),
    /// A signal or the timeout stopped it.
    Stopped,
}

/// Why a distributor could not be loaded or started; `Display` is the message.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The engine could not be made, or the embedded guest not loaded into it.
    #[error("{0:#}")]
    Engine(wasmtime::Error),
    /// A `--module` that is not a regular file of at most `MAX_MODULE_BYTES`.
    #[error("cannot read module {}: {reason}", quoted(&.path.to_string_lossy()))]
    UnreadableModule { path: PathBuf, reason: Unreadable },
    /// A `--module` that wasmtime does not accept.
    #[error("{} is not a usable wasm module: {error:#}", quoted(&.path.to_string_lossy()))]
    NotAModule {
        path: PathBuf,
        error: wasmtime::Error,
    },
    #[error(transparent)]
    Limits(#[from] TooMany),
    #[error("cannot preopen {}: {error:#}", quoted(&.host.to_string_lossy()))]
    Preopen {
        host: PathBuf,
        error: wasmtime::Error,
    },
    /// wasmtime-wasi's preview-1 functions could not be linked.
    #[error("{0:#}")]
    Link(wasmtime::Error),
    #[error("cannot set up the WASI checks: {0:#}")]
    Checks(wasmtime::Error),
    #[error("cannot start the WASI runtime: {0}")]
    Runtime(std::io::Error),
}

/// Why a `--module` file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("{}", io_error(.0))]
    Io(std::io::Error),
    #[error("it is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("it holds {0} bytes; a module may hold at most {MAX_MODULE_BYTES} (256 MiB)")]
    TooBig(u64),
}

/// How a guest's run ended, and the limits it ran into on the way.
#[derive(Debug, PartialEq, Eq)]
pub struct Ended {
    pub outcome: Outcome,
    /// The first resource limit or cap the guest hit, in words.
    pub limit: Option<String>,
    /// Guest paths the checks refused.
    pub refused_paths: Vec<String>,
}

/// The engine that compiles (`--module`) and that loads the embedded guest by copying
/// when its code cannot run in place.
static COMPILING: OnceLock<Engine> = OnceLock::new();
/// The engine that runs the embedded guest's code where the binary holds it.
static IN_PLACE: OnceLock<Engine> = OnceLock::new();

fn engine_in(
    cell: &'static OnceLock<Engine>,
    config: impl FnOnce() -> Config,
) -> Result<&'static Engine, wasmtime::Error> {
    if let Some(engine) = cell.get() {
        return Ok(engine);
    }
    let engine = Engine::new(&config())?;
    Ok(cell.get_or_init(|| engine))
}

/// The engine for modules that are not the embedded guest.
pub fn engine() -> Result<&'static Engine, wasmtime::Error> {
    engine_in(&COMPILING, engine_config)
}

fn in_place_engine() -> Result<&'static Engine, wasmtime::Error> {
    engine_in(&IN_PLACE, || {
        let mut config = engine_config();
        config.with_custom_code_memory(Some(Arc::new(CodeInPlace::new(guest_module::PRECOMPILED))));
        config
    })
}

/// Makes every running guest trap at its next loop or call: a stop hook, registered
/// with the interrupt module by every run. The stop is recorded before hooks are
/// called, so an engine created afterwards sees it: `run` looks after setting its
/// deadline.
fn interrupt_guests() {
    for engine in [COMPILING.get(), IN_PLACE.get()].into_iter().flatten() {
        engine.increment_epoch();
    }
}

/// The embedded dtlto-mock, ready to instantiate without compiling.
pub struct EmbeddedModule {
    pub engine: &'static Engine,
    pub module: Module,
    /// Why its code had to be copied rather than used in place, if it was.
    pub copied_because: Option<String>,
}

/// The embedded dtlto-mock, its code used in place where the system allows it.
pub fn embedded_module() -> Result<EmbeddedModule, wasmtime::Error> {
    let refusal = match in_place_module() {
        Ok(module) => {
            return Ok(EmbeddedModule {
                engine: in_place_engine()?,
                module,
                copied_because: None,
            })
        }
        Err(e) => format!("{e:#}"),
    };
    // A system that will not make read-only data executable: copy the code instead.
    let engine = engine()?;
    let module = precompiled_module(engine).or_else(|_| Module::new(engine, guest_module::WASM))?;
    Ok(EmbeddedModule {
        engine,
        module,
        copied_because: Some(refusal),
    })
}

/// The module build.rs precompiled, its code used where the binary holds it. Loaded
/// once per process and shared: wasmtime registers each module's code by address, so
/// two modules over the same bytes cannot coexist.
fn in_place_module() -> Result<Module, wasmtime::Error> {
    static MODULE: Mutex<Option<Module>> = Mutex::new(None);
    let mut slot = MODULE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(module) = slot.as_ref() {
        return Ok(module.clone());
    }
    let engine = in_place_engine()?;
    // SAFETY: PRECOMPILED was produced by build.rs with this wasmtime and this
    // engine_config() (wasmtime checks the version and settings before use), and it
    // is an immutable static, so it outlives the module unchanged.
    let module =
        unsafe { Module::deserialize_raw(engine, NonNull::from(&guest_module::PRECOMPILED.0)) }?;
    Ok(slot.insert(module).clone())
}

/// The module build.rs precompiled, copied into `engine`'s own code memory; an error
/// only if this build's engine differs from the one that precompiled it.
pub fn precompiled_module(engine: &Engine) -> Result<Module, wasmtime::Error> {
    // SAFETY: as for in_place_module.
    unsafe { Module::deserialize(engine, &guest_module::PRECOMPILED.0) }
}

/// The largest `--module` the runner reads: ten times any distributor in sight.
pub const MAX_MODULE_BYTES: u64 = 256 << 20;

/// Another wasip1 distributor, compiled now. It must be a regular file (links
/// followed) of at most `MAX_MODULE_BYTES`, checked before reading: a device or a
/// FIFO would never end.
pub fn module_from_file(engine: &Engine, path: &Path) -> Result<Module, LaunchError> {
    use dtlto_mock::message::file_kind;
    use std::io::Read;
    let cannot = |reason| LaunchError::UnreadableModule {
        path: path.to_owned(),
        reason,
    };
    let io = |e| cannot(Unreadable::Io(e));
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(cannot(Unreadable::NotAFile(file_kind(&meta.file_type()))));
    }
    let too_big = |size| cannot(Unreadable::TooBig(size));
    if meta.len() > MAX_MODULE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    // What was checked is what is read: the file opened, and no more than the limit.
    let opened = file.metadata().map_err(io)?;
    if !opened.is_file() {
        return Err(cannot(Unreadable::NotAFile(file_kind(&opened.file_type()))));
    }
    let mut bytes = Vec::new();
    file.take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_MODULE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Module::new(engine, bytes).map_err(|error| LaunchError::NotAModule {
        path: path.to_owned(),
        error,
    })
}

struct Host {
    wasi: WasiP1Ctx,
    limiter: Limiter,
    guard: Guard,
}

impl Guarded for Host {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }

    fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// Instantiates `module` in `view` and runs its `_start`.
pub fn run(engine: &Engine, module: &Module, view: &GuestView<'_>) -> Result<Ended, LaunchError> {
    let _stop_hook = interrupt::on_stop(interrupt_guests);
    guest_limits::check_module(module, &view.limits)?;
    let mut wasi = WasiCtxBuilder::new();
    // Blocking on this thread lets WASI read and write straight into and out of
    // guest memory, instead of copying through a tokio blocking thread per call.
    wasi.args(view.argv)
        .inherit_stdout()
        .inherit_stderr()
        .allow_blocking_current_thread(true);
    for (key, value) in view.env {
        wasi.env(key, value);
    }
    for (dirs, perms) in [
        (view.read_dirs, FsPerms::ReadOnly),
        (view.write_dirs, FsPerms::ReadWrite),
    ] {
        for (host, guest) in dirs {
            wasi.preopened_dir(host, guest, perms)
                .map_err(|error| LaunchError::Preopen {
                    host: host.clone(),
                    error,
                })?;
        }
    }
    let read_scope: Vec<ReadDir> = view
        .read_dirs
        .iter()
        .enumerate()
        .map(|(i, (host, _))| ReadDir {
            host: host.clone(),
            names: view.granted.get(i).cloned().flatten(),
        })
        .collect();
    let guard = Guard::new(view.checks, &read_scope);
    let scopes_reads = guard.scopes_reads();
    let host = Host {
        wasi: wasi.build_p1(),
        limiter: Limiter::new(view.limits),
        guard,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(1);
    // A stop between the caller's last look and the deadline above bumped the epoch
    // too early to stop this store.
    if interrupt::stopped().is_some() {
        return Ok(Ended {
            outcome: Outcome::Stopped,
            limit: None,
            refused_paths: Vec::new(),
        });
    }

    let mut linker: Linker<Host> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi).map_err(LaunchError::Link)?;
    wasi_guard::install(&mut linker, view.checks, scopes_reads).map_err(LaunchError::Checks)?;
    // wasmtime-wasi runs each call in the ambient tokio runtime if there is one.
    let own_runtime = if view.needs_no_reactor {
        Some(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .map_err(LaunchError::Runtime)?,
        )
    } else {
        None
    };
    let mut start = || {
        linker
            .instantiate(&mut store, module)
            .and_then(|instance| {
                store.data_mut().guard.memory = instance.get_memory(&mut store, "memory");
                instance.get_typed_func::<(), ()>(&mut store, "_start")
            })
            .and_then(|start| start.call(&mut store, ()))
    };
    // Either way the guest runs in a runtime's context: the guard polls each call
    // once before it asks tokio to wait, and a first poll may need a runtime.
    let result = match &own_runtime {
        Some(runtime) => {
            let _ambient = runtime.enter();
            start()
        }
        None => wasmtime_wasi::runtime::with_ambient_tokio_runtime(start),
    };
    let outcome = match result {
        Ok(()) => Outcome::Exited(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Outcome::Exited(exit.0),
            None if interrupt::stopped().is_some() => Outcome::Stopped,
            None => Outcome::Trapped(format!("{e:#}")),
        },
    };
    let host = store.into_data();
    let mut refused_paths = host.guard.refused_paths;
    if host.guard.refused_more > 0 {
        refused_paths.push(format!("... and {} more", host.guard.refused_more));
    }
    Ok(Ended {
        outcome,
        limit: host
            .guard
            .exceeded
            .or_else(|| host.limiter.hit().map(str::to_owned)),
        refused_paths,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_precompiled_guest_runs_in_place_so_start_up_copies_and_compiles_nothing() {
        if let Err(e) = super::in_place_module() {
            panic!("the runner would copy the guest's code at every start: {e:#}");
        }
    }

    #[test]
    fn the_embedded_guest_runs_on_several_threads_at_once() {
        let run_version = || {
            let embedded = super::embedded_module().unwrap();
            assert_eq!(embedded.copied_because, None);
            let argv = ["dtlto-mock".to_owned(), "--version".to_owned()];
            let view = super::GuestView {
                argv: &argv,
                env: &[],
                read_dirs: &[],
                granted: &[],
                write_dirs: &[],
                needs_no_reactor: true,
                limits: crate::guest::guest_limits::DEFAULT_LIMITS,
                checks: Default::default(),
            };
            super::run(embedded.engine, &embedded.module, &view)
                .map(|ended| ended.outcome)
                .map_err(|e| e.to_string())
        };
        let runs: Vec<_> = (0..4).map(|_| std::thread::spawn(run_version)).collect();
        for run in runs {
            assert_eq!(run.join().unwrap(), Ok(super::Outcome::Exited(0)));
        }
    }

    #[test]
    fn the_fallback_loads_the_precompiled_guest_without_compiling() {
        let engine = super::engine().unwrap();
        if let Err(e) = super::precompiled_module(engine) {
            panic!("the fallback would compile the guest at every start: {e:#}");
        }
    }
}
