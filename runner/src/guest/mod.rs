//! The wasmtime side: everything that runs a wasip1 distributor.
//!
//! - `launch`: runs a module under wasmtime with the plan's preopens and reports how
//!   it ended;
//! - `guest_module`: the embedded `dtlto-mock.wasm` and its build-time precompilation;
//! - `code_in_place`: runs that precompiled code where the binary holds it;
//! - `engine_config`: the wasmtime configuration (shared with build.rs);
//! - `guest_limits`: the memory, tables and instances a guest may take;
//! - `wasi_guard`: checks in front of wasmtime-wasi's preview-1 calls, which
//!   `guard_policy` tells what to allow and count and `windows_paths` which paths
//!   Windows would misread.

mod code_in_place;
mod engine_config;
mod guard_policy;
pub(crate) mod guest_limits;
pub mod guest_module;
pub(crate) mod launch;
pub(crate) mod wasi_guard;
mod windows_paths;
