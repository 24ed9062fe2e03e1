//! dtlto-runner: runs `dtlto-mock.wasm` (or any wasip1 DTLTO distributor) under
//! wasmtime in a sandbox where the only writes that land are the job's declared outputs.

// What the binary (main.rs) and the tests use; the rest is the crate's own.
mod code_in_place;
mod engine_config;
pub mod example;
mod file_id;
pub(crate) mod guest_limits;
pub mod guest_module;
pub mod interrupt;
pub(crate) mod launch;
pub mod local;
pub(crate) mod sandbox;
pub mod sandboxed_run;
pub(crate) mod transaction;
pub(crate) mod wasi_guard;
