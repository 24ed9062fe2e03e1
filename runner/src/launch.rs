//! Runs a wasip1 command under wasmtime with exactly the arguments, environment and
//! preopened directories it is given, and reports how it ended.

use crate::engine_config::engine_config;
use crate::guest_module;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use wasmtime::{Engine, Linker, Module, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// What the guest may see.
pub struct GuestView<'a> {
    /// `argv`, program name first.
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    /// (host directory, guest name) preopened read-only.
    pub read_dirs: &'a [(PathBuf, String)],
    /// (host directory, guest name) preopened read-write.
    pub write_dirs: &'a [(PathBuf, String)],
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `main` returned or `exit(status)` was called.
    Exited(i32),
    /// The guest trapped (a panic, an abort, running out of memory...).
    Trapped(String),
    /// Ctrl-C or SIGTERM stopped it.
    Interrupted,
}

/// Guest linear memory may not grow past this (wasm32 allows 4 GiB): a runaway guest
/// fails its allocation and traps instead of taking the machine's memory.
pub const MAX_GUEST_MEMORY: usize = 2 << 30;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The process's one engine: signal handling bumps its epoch.
pub fn engine() -> Result<&'static Engine, wasmtime::Error> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine);
    }
    let engine = Engine::new(&engine_config())?;
    Ok(ENGINE.get_or_init(|| engine))
}

/// Makes Ctrl-C and SIGTERM stop a running guest at its next loop or call.
pub fn interrupt_on_signals() -> Result<(), String> {
    let engine = engine().map_err(|e| format!("{e:#}"))?;
    ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        engine.increment_epoch();
    })
    .map_err(|e| format!("cannot install the signal handler: {e}"))
}

/// Whether a signal has asked us to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The embedded dtlto-mock, without compiling it.
pub fn embedded_module(engine: &Engine) -> Result<Module, wasmtime::Error> {
    precompiled_module(engine).or_else(|_| Module::new(engine, guest_module::WASM))
}

/// The module build.rs precompiled; an error only if this build's engine differs from
/// the one that precompiled it (tests check that it does not).
pub fn precompiled_module(engine: &Engine) -> Result<Module, wasmtime::Error> {
    // SAFETY: PRECOMPILED was produced by build.rs with this wasmtime and this
    // engine_config(); wasmtime checks the version and settings before use.
    unsafe { Module::deserialize(engine, guest_module::PRECOMPILED) }
}

/// Another wasip1 distributor, compiled now.
pub fn module_from_file(engine: &Engine, path: &Path) -> Result<Module, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read module {}: {e}", path.display()))?;
    Module::new(engine, bytes)
        .map_err(|e| format!("{} is not a usable wasm module: {e:#}", path.display()))
}

struct Host {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// Instantiates `module` in `view` and runs its `_start`.
pub fn run(engine: &Engine, module: &Module, view: &GuestView<'_>) -> Result<Outcome, String> {
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
                .map_err(|e| format!("cannot preopen {}: {e:#}", host.display()))?;
        }
    }
    let host = Host {
        wasi: wasi.build_p1(),
        limits: StoreLimitsBuilder::new()
            .memory_size(MAX_GUEST_MEMORY)
            .build(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(1);

    let mut linker: Linker<Host> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi).map_err(|e| format!("{e:#}"))?;
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    Ok(match result {
        Ok(()) => Outcome::Exited(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Outcome::Exited(exit.0),
            None if interrupted() => Outcome::Interrupted,
            None => Outcome::Trapped(format!("{e:#}")),
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_precompiled_guest_loads_so_start_up_compiles_nothing() {
        let engine = super::engine().unwrap();
        if let Err(e) = super::precompiled_module(engine) {
            panic!("the runner would compile the guest at every start: {e:#}");
        }
    }
}
