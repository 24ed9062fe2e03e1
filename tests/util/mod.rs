//! What the integration tests share, a module per concern; the names most tests use
//! are re-exported here.
//!
//! - `dir`: a test's own temporary directory (`TestDir`);
//! - `run`: running commands in it, and `Run`, a finished run whose failed
//!   assertions print the command, the cwd, the directory's listing and the output;
//! - `runner`: the runner of this build and commands that run it;
//! - `guest_in_process`: the guest under wasmtime in-process, as `wasmtime run`;
//! - `tree`: snapshots of a directory and what changed between two;
//! - `staging`: a run's staging directories, watched from outside;
//! - `job_file`: job files as lld writes them, and for local mode;
//! - `unix_host`: root, FIFOs, open-file limits, signals;
//! - `hostile`: hostile WASI guests, generated as WAT;
//! - `llvm`, `oracle`, `reapi`: the outside tools (LLVM 23, CPython, a REAPI engine).

pub mod dir;
pub mod guest_in_process;
pub mod hostile;
pub mod job_file;
#[cfg(unix)]
pub mod llvm;
pub mod oracle;
#[cfg(target_os = "linux")]
pub mod reapi;
pub mod run;
pub mod runner;
pub mod staging;
pub mod tree;
#[cfg(unix)]
pub mod unix_host;

pub use dir::TestDir;
pub use guest_in_process::wasmtime_run;
pub use job_file::{job_file_json, local_jobs};
pub use run::Run;
#[cfg(unix)]
pub use run::{run_tool, Started};
#[cfg(unix)]
pub use runner::runner_for_every_user;
pub use runner::{repo_root, run_runner, runner_command, runner_exe, spawn_runner, target_command};
#[cfg(unix)]
pub use staging::left_then_reclaimed;
pub use staging::{is_staged, staging_dirs, staging_left, wait_until};
pub use tree::{changes, Entry};
#[cfg(target_os = "linux")]
pub use unix_host::as_user;
#[cfg(unix)]
pub use unix_host::{is_root, limit_open_files, limit_open_files_soft, make_fifo, send_signal};
