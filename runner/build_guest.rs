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

/// rust-toolchain.toml names the target, but rustup adds targets only when it
/// installs a toolchain; on a machine that already had 1.95.0 we add it here.
pub fn ensure_wasm_target_installed(rustc: &OsString) -> Result<(), String> {
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if sysroot
        .as_ref()
        .is_some_and(|s| s.join("lib/rustlib").join(GUEST_TARGET).is_dir())
    {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = sysroot.as_ref().and_then(|s| s.file_name()) {
        rustup.arg("--toolchain").arg(toolchain);
    }
    match rustup.status() {
        Ok(status) if status.success() => Ok(()),
        _ => Err(format!(
            "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed"
        )),
    }
}
