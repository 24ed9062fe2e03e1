//! Builds the guest (`dtlto-mock.wasm`, wasm32-wasip1) from the workspace root,
//! prints its SHA-256, and precompiles it for the target, so that the runner embeds
//! both and never compiles wasm at start-up.

#[path = "build_guest.rs"]
mod build_guest;
#[path = "build_relocations.rs"]
mod build_relocations;
#[path = "src/engine_config.rs"]
mod engine_config;

use sha2::{Digest, Sha256};
use std::env;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("runner/ sits in the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    // Relative to runner/, so that they name this checkout's files: cargo keeps the
    // same build directory for every checkout that shares a target directory, and
    // absolute paths would watch whichever checkout built last.
    for watched in ["src", "Cargo.toml", "Cargo.lock", "rust-toolchain.toml"] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    println!("cargo:rerun-if-changed=build_guest.rs");
    println!("cargo:rerun-if-changed=build_relocations.rs");
    build_relocations::link_runner_with_packed_relocations(&out_dir);

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let guest_target_dir = shared_target_dir(&out_dir).join("guest");
    let wasm = build_guest::ensure_wasm_target_installed(&rustc)
        .and_then(|()| build_guest::build_guest(&cargo, workspace, &guest_target_dir, false))
        .unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&wasm).expect("the guest build produced its .wasm");

    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!(
        "cargo:warning=dtlto-mock.wasm sha256 {sha256} ({} bytes, {})",
        bytes.len(),
        wasm.display()
    );
    println!("cargo:rustc-env=DTLTO_MOCK_WASM_SHA256={sha256}");
    std::fs::write(
        guest_target_dir.join("dtlto-mock.wasm.sha256"),
        format!("{sha256}  dtlto-mock.wasm\n"),
    )
    .expect("write the checksum");
    std::fs::write(out_dir.join("dtlto-mock.wasm"), &bytes).expect("write OUT_DIR");
    std::fs::write(out_dir.join("dtlto-mock.cwasm"), precompile(&bytes)).expect("write OUT_DIR");
}

/// `<target>/` from `<target>/[<triple>/]<profile>/build/<pkg>-<hash>/out`, so that
/// the guest's build survives changes to this script's hash, and builds of the runner
/// for several targets share one guest build.
fn shared_target_dir(out_dir: &Path) -> PathBuf {
    let profile_parent = out_dir.ancestors().nth(4);
    let triple = env::var("TARGET").unwrap_or_default();
    let target_dir = match profile_parent {
        Some(dir) if dir.file_name().is_some_and(|name| name == triple.as_str()) => dir.parent(),
        other => other,
    };
    target_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.to_path_buf())
}

/// Compiles the guest for the target the runner is built for.
fn precompile(wasm: &[u8]) -> Vec<u8> {
    let mut config = engine_config::engine_config();
    let target = env::var("TARGET").expect("cargo sets it");
    let host = env::var("HOST").expect("cargo sets it");
    let refused = |e: wasmtime::Error| -> ! {
        let hint = if target == host {
            String::new()
        } else {
            format!(
                "; on this {host} machine, build with --features dtlto-runner/cross-precompile, \
                 which gives this script Cranelift's other back ends"
            )
        };
        panic!("cannot precompile the guest for {target}: {e:#}{hint}")
    };
    if target != host {
        config.target(&target).unwrap_or_else(|e| refused(e));
    }
    let engine = wasmtime::Engine::new(&config).unwrap_or_else(|e| refused(e));
    engine
        .precompile_module(wasm)
        .unwrap_or_else(|e| refused(e))
}
