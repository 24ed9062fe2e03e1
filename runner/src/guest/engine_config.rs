// The wasmtime configuration of the runner. Included by build.rs as well: a module
// precompiled at build time loads only into an engine configured identically.

pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    // Ctrl-C / SIGTERM interrupt a running guest by bumping the engine's epoch.
    config.epoch_interruption(true);
    config
}
