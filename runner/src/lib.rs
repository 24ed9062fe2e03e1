//! dtlto-runner: runs `dtlto-mock.wasm` (or any wasip1 DTLTO distributor) under
//! wasmtime in a sandbox where the only writes that land are the job's declared outputs.

mod code_in_place;
mod engine_config;
pub mod example;
mod file_id;
pub mod guest_limits;
pub mod guest_module;
pub mod interrupt;
pub mod launch;
pub mod local;
pub mod sandbox;
pub mod sandboxed_run;
pub mod transaction;
pub mod wasi_guard;
