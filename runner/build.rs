//! Builds the guest (`dtlto-mock.wasm`, wasm32-wasip1) from the workspace root and
//! precompiles it for the target, so the runner embeds both and never compiles wasm
//! at start-up.

#[path = "src/engine_config.rs"]
mod engine_config;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip1";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("runner/ sits in the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    for watched in ["src", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }

    let wasm = build_guest(&workspace, &out_dir);
    let bytes = std::fs::read(&wasm).expect("the guest build produced its .wasm");
    std::fs::write(out_dir.join("dtlto-mock.wasm"), &bytes).expect("write OUT_DIR");
    std::fs::write(out_dir.join("dtlto-mock.cwasm"), precompile(&bytes)).expect("write OUT_DIR");
}

/// Runs `cargo build` for the guest in a target directory of its own: sharing ours
/// would block on the lock cargo holds while it runs this script.
fn build_guest(workspace: &Path, out_dir: &Path) -> PathBuf {
    let guest_target_dir = shared_target_dir(out_dir).join("guest");
    ensure_wasm_target_installed();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--locked",
            "--bin",
            "dtlto-mock",
            "-p",
            "dtlto-mock",
        ])
        .args(["--target", GUEST_TARGET])
        .arg("--target-dir")
        .arg(&guest_target_dir)
        // The outer build's flags are for the host, not for wasm.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("RUSTFLAGS", reproducible_rustflags(workspace))
        .status()
        .expect("run cargo for the guest");
    assert!(
        status.success(),
        "building the guest for {GUEST_TARGET} failed"
    );
    guest_target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("dtlto-mock.wasm")
}

/// `<target>/` from `<target>/<profile>/build/<pkg>-<hash>/out`, so the guest's build
/// survives changes to this script's hash.
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.to_path_buf())
}

/// Host paths must not leak into the artifact: two clean builds on different
/// machines give the same bytes.
fn reproducible_rustflags(workspace: &Path) -> String {
    let mut flags = vec![format!(
        "--remap-path-prefix={}=/dtlto-mock",
        workspace.display()
    )];
    if let Some(cargo_home) = env::var_os("CARGO_HOME") {
        flags.push(format!(
            "--remap-path-prefix={}=/cargo",
            Path::new(&cargo_home).display()
        ));
    }
    flags.join(" ")
}

/// rust-toolchain.toml names the target, but rustup adds targets only when it installs
/// a toolchain; on a machine that already had 1.95.0 we add it here.
fn ensure_wasm_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot
        .as_ref()
        .is_some_and(|s| s.join("lib/rustlib").join(GUEST_TARGET).is_dir());
    if installed {
        return;
    }
    let toolchain = sysroot
        .as_ref()
        .and_then(|s| s.file_name())
        .map(|n| n.to_string_lossy().into_owned());
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = toolchain {
        rustup.args(["--toolchain", &toolchain]);
    }
    let status = rustup.status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "the {GUEST_TARGET} target is missing and `rustup target add {GUEST_TARGET}` failed"
    );
}

/// Compiles the guest for the target the runner is built for.
fn precompile(wasm: &[u8]) -> Vec<u8> {
    let mut config = engine_config::engine_config();
    let target = env::var("TARGET").expect("cargo sets it");
    if target != env::var("HOST").expect("cargo sets it") {
        config
            .target(&target)
            .expect("cranelift supports the runner's target");
    }
    let engine = wasmtime::Engine::new(&config).expect("engine for precompiling");
    engine
        .precompile_module(wasm)
        .expect("precompile the guest")
}
