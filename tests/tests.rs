//! The proof: every integration test of dtlto-mock and dtlto-runner, compiled into one
//! binary (so that wasmtime links once), a module per concern, sharing `util`.
//! It belongs to the runner's package (runner/Cargo.toml), which gives it the
//! runner binary of this build.
//!
//! Tests that need a tool from outside Rust, or root, are #[ignore]d with the
//! reason; tests/all.sh installs the tools and runs them all.

mod util;

/// Exit statuses with stderr broken and signals ignored from the start.
mod broken_stdio;
/// The runner's own command line: options, built-in example, refusals.
mod cli;
/// Runs that meet other runs, other users, failing commits and many directories.
mod concurrent_runs;
/// wit/ against the guest's parser and the built artifact's imports.
mod contract;
/// Fault injection in mock mode, by hand and under the runner.
mod faults;
/// Host path syntax (drive letters, backslashes, `..`, non-ASCII) through the runner.
mod host_paths;
/// Hostile `--module` guests against the host: limits, caps, Windows paths.
mod hostile_modules;
/// Inputs as build systems hand them over: links, special files, sizes, messages.
mod inputs;
/// local mode's confinement attacked: --hermetic's reads, Landlock ABIs, messages.
mod local_confinement;
/// local mode: real compiles, confined, committed all or nothing.
mod local_mode;
/// local mode as a Windows program, under wine, with a stand-in compiler.
mod local_mode_windows;
/// mock mode's contract, by hand and under the runner.
mod mock_mode;
/// The same artifact under every WASI host, and README's commands as written.
mod other_hosts;
/// What a distributor may read: declared files only.
mod read_scope;
/// Real links with LLVM 23's clang and lld.
mod real_llvm;
/// Staging and recovery records a run finds and may not trust.
mod reclaim;
/// The release files of every target: format, CPU, the embedded guest.
mod release_files;
/// remote mode against a real REAPI engine, with real clang and lld.
#[cfg(target_os = "linux")]
mod remote_mode;
/// Two clean builds of the guest give the same bytes.
mod reproducible_build;
/// The sandbox against hostile guests and conflicting plans.
mod sandbox;
/// The transaction under races, signals, kills and hostile trees.
mod transaction;
/// validate mode against CPython, byte for byte.
mod validate_differential;
