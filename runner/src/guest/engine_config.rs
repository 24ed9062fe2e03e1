// The wasmtime configuration of the runner. Included by build.rs as well: a module
// precompiled at build time loads only into an engine configured identically.

pub fn engine_config() -> wasmtime::Config {
    use wasmtime::WasmFeatures;
    let mut config = wasmtime::Config::new();
    // Ctrl-C / SIGTERM interrupt a running guest by bumping the engine's epoch.
    config.epoch_interruption(true);
    // Proposals whose run-time support this build leaves out (wasmtime without its
    // `gc` and `threads` features) are refused when a module is validated, with an
    // error that names the proposal, rather than left to stubs that abort the
    // process: the GC proposal's subtypes (a `call_indirect` that meets a function
    // of a declared subtype, GHSA-rc4p-x33f-vpr2), typed function references,
    // exceptions, and threads' shared memories and atomic wait/notify
    // (GHSA-2674-w29h-wqvj), which need `threads` and are off without it; said here
    // so that no later default turns them on. A distributor needs none of them.
    // (The switches of some are compiled only with those features: all by name.)
    config.wasm_features(
        WasmFeatures::GC
            | WasmFeatures::GC_TYPES
            | WasmFeatures::FUNCTION_REFERENCES
            | WasmFeatures::EXCEPTIONS
            | WasmFeatures::STACK_SWITCHING
            | WasmFeatures::THREADS
            | WasmFeatures::SHARED_EVERYTHING_THREADS,
        false,
    );
    config
}
