//! The guest run in-process under wasmtime, exactly as `wasmtime run --dir .` would
//! run it: mock and validate by hand, without the runner.

use super::dir::TestDir;
use super::run::Run;
use std::path::Path;
use std::sync::OnceLock;

/// Runs the guest as `cd dir && wasmtime run --dir . dtlto-mock.wasm args...` would.
pub fn wasmtime_run(dir: &TestDir, args: &[&str]) -> Run {
    wasmtime_run_with_dirs(dir, args, &[(dir.path(), ".")])
}

/// As `wasmtime_run`, with the preopened directories given as (host, guest name);
/// the run reports `dir` as its own.
pub fn wasmtime_run_with_dirs(dir: &TestDir, args: &[&str], dirs: &[(&Path, &str)]) -> Run {
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    static MODULE: OnceLock<(wasmtime::Engine, wasmtime::Module)> = OnceLock::new();
    let (engine, module) = MODULE.get_or_init(|| {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, dtlto_runner::guest_module::WASM)
            .expect("the embedded guest compiles");
        (engine, module)
    });
    let stdout = MemoryOutputPipe::new(1 << 30);
    let stderr = MemoryOutputPipe::new(1 << 20);
    let mut argv = vec!["dtlto-mock.wasm"];
    argv.extend_from_slice(args);
    let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
    builder
        .args(&argv)
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for (host, guest) in dirs {
        builder
            .preopened_dir(host, guest, wasmtime_wasi::FsPerms::ReadWrite)
            .expect("preopen");
    }
    let mut store = wasmtime::Store::new(engine, builder.build_p1());
    let mut linker = wasmtime::Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx).expect("link WASI");
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let status = match result {
        Ok(()) => 0,
        Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
            Some(exit) => exit.0,
            None => panic!("the guest trapped: {e:?}"),
        },
    };
    let preopens: Vec<String> = dirs
        .iter()
        .map(|(host, guest)| format!("--dir {}::{guest}", host.display()))
        .collect();
    Run::in_process(
        dir,
        format!(
            "wasmtime run {} dtlto-mock.wasm {}",
            preopens.join(" "),
            args.join(" ")
        ),
        status,
        stdout.contents().to_vec(),
        stderr.contents().to_vec(),
    )
}
