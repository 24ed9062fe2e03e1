//! How dtlto-mock.wasm is built: one procedure, included by runner/build.rs and by
//! tests/reproducible_build.rs, so that the test checks the build that ships.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const GUEST_TARGET: &str = "wasm32-wasip1";

/// Builds the guest from the workspace at `workspace` into `target_dir` (which must
/// not be the calling cargo's: it holds a lock on that one) and returns the artifact.
pub fn build_guest(
    cargo: &OsString,
    workspace: &Path,
    target_dir: &Path,
    offline: bool,
) -> Result<PathBuf, String> {
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--release",
            "--locked",
            "-p",
            "dtlto-mock",
            "--bin",
            "dtlto-mock",
        ])
        .args(["--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(target_dir)
        // The caller's flags are for its own target, not for wasm.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            reproducible_rustflags(workspace).join("\u{1f}"),
        );
    if offline {
        command.arg("--offline");
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the guest for {GUEST_TARGET} failed ({status})"
        ));
    }
    Ok(target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("dtlto-mock.wasm"))
}

/// Host paths must not reach the artifact: the workspace and cargo's home are
/// remapped to fixed names, so builds in different places give the same bytes.
/// (Passed as CARGO_ENCODED_RUSTFLAGS, so paths with spaces survive.)
pub fn reproducible_rustflags(workspace: &Path) -> Vec<String> {
    let mut flags = vec![format!(
        "--remap-path-prefix={}=/dtlto-mock",
        workspace.display()
    )];
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")));
    if let Some(cargo_home) = cargo_home {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            cargo_home.display()
        ));
    }
    flags
}

/// The files the guest was built from, from cargo's dep-info file `dep_info`:
/// those under `workspace` relative to runner/ (`../src/lib.rs`), others as they are.
pub fn sources(dep_info: &Path, workspace: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(dep_info)
        .map_err(|e| format!("cannot read {}: {e}", dep_info.display()))?;
    // `target: dep dep ...`, with spaces in names escaped by a backslash.
    let (_, deps) = text
        .split_once(": ")
        .ok_or_else(|| format!("{} is not a dep-info file", dep_info.display()))?;
    let mut sources = Vec::new();
    let mut current = String::new();
    let mut chars = deps.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' | '\n' => {
                sources.extend((!current.is_empty()).then(|| std::mem::take(&mut current)))
            }
            c => current.push(c),
        }
    }
    sources.extend((!current.is_empty()).then_some(current));
    Ok(sources
        .into_iter()
        .map(|source| match Path::new(&source).strip_prefix(workspace) {
            Ok(relative) => format!("../{}", relative.display()),
            Err(_) => source,
        })
        .collect())
}

/// rust-toolchain.toml names the target, and rustup adds it when it installs the
/// toolchain; a machine that had the toolchain before needs `rustup target add`.
pub fn wasm_target_installed(rustc: &OsString) -> Result<(), String> {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot.is_some_and(|s| s.join("lib/rustlib").join(GUEST_TARGET).is_dir()) {
        return Ok(());
    }
    Err(format!(
        "the Rust target {GUEST_TARGET} is not installed; add it with \
         `rustup target add {GUEST_TARGET}` (README's commands do)"
    ))
}
