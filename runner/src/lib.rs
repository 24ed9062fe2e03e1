//! dtlto-runner: runs `dtlto-mock.wasm` (or any wasip1 DTLTO distributor) under
//! wasmtime in a sandbox where the only writes that land are the job's declared outputs.
//!
//! The parts: `drive` (the one pipeline every mode runs through: plan, stage,
//! execute, commit, report), `guest/` (wasmtime: launch, the embedded module,
//! limits, WASI checks), `sandbox/` (the plan: preopens, path map, file identity),
//! `transaction/` (staging, commit, rollback, cleanup), `interrupt` (signals and the
//! timeout, a leaf), `sandboxed_run` (mock and validate mode: the guest as the
//! driver's executor), `jobs/` (the job machinery native modes share), `local/`
//! (local mode's native jobs), `remote/` (remote mode: each job as a REAPI action),
//! `example` (the built-in example), `error` (every
//! error the runner reports) and `exit_status` (the table of exit statuses).

#![warn(missing_docs)]

// What the binary (main.rs) and the tests use; the rest is the crate's own.
pub(crate) mod drive;
pub mod error;
pub mod example;
pub mod exit_status;
pub(crate) mod guest;
pub mod interrupt;
pub(crate) mod jobs;
pub mod local;
pub mod remote;
pub(crate) mod sandbox;
pub mod sandboxed_run;
pub(crate) mod transaction;

pub use guest::guest_module;
