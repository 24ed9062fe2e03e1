//! Builds the guest (`dtlto-mock.wasm`, wasm32-wasip1) from the workspace root,
//! prints its SHA-256, and precompiles it for the target, so that the runner embeds
//! both and never compiles wasm at start-up.

#[path = "build_guest.rs"]
mod build_guest;
#[path = "build_relocations.rs"]
mod build_relocations;
#[path = "src/guest/engine_config.rs"]
mod engine_config;

use sha2::{Digest, Sha256};
use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest_dir
        .parent()
        .expect("runner/ sits in the workspace");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    for watched in ["Cargo.lock", "rust-toolchain.toml"] {
        println!("cargo:rerun-if-changed=../{watched}");
    }
    println!("cargo:rerun-if-changed=build_guest.rs");
    println!("cargo:rerun-if-changed=build_relocations.rs");
    println!("cargo:rerun-if-changed=src/guest/engine_config.rs");
    build_relocations::link_runner_with_packed_relocations(&out_dir);

    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // A cargo of its own, in a target directory of its own under OUT_DIR: the calling
    // cargo holds the lock on its own.
    let wasm = build_guest::wasm_target_installed(&rustc)
        .and_then(|()| build_guest::build_guest(&cargo, workspace, &out_dir.join("guest"), false))
        .unwrap_or_else(|e| panic!("{e}"));
    // Built again when a file it was built from changes, as cargo's dep-info lists
    // them; workspace files relative to runner/, so that a target directory shared
    // by several checkouts watches this one's.
    match build_guest::sources(&wasm.with_extension("d"), workspace) {
        Ok(sources) => {
            for source in sources {
                println!("cargo:rerun-if-changed={source}");
            }
        }
        Err(e) => {
            println!("cargo:warning=cannot read the guest's dep-info ({e}); watching all of src/");
            println!("cargo:rerun-if-changed=../src");
        }
    }
    let bytes = std::fs::read(&wasm).expect("the guest build produced its .wasm");
    let sha256: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=DTLTO_MOCK_WASM_SHA256={sha256}");
    std::fs::write(out_dir.join("dtlto-mock.wasm"), &bytes).expect("write OUT_DIR");
    std::fs::write(out_dir.join("dtlto-mock.cwasm"), precompile(&bytes)).expect("write OUT_DIR");
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
