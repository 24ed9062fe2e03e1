//! The embedded guest: `dtlto-mock.wasm` as built for wasm32-wasip1, and the same
//! module precompiled for this host at build time (see build.rs).

/// The portable artifact, byte for byte what `wasmtime run` would be given.
pub const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dtlto-mock.wasm"));

/// The artifact compiled by Cranelift for the runner's target with `engine_config()`.
pub const PRECOMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dtlto-mock.cwasm"));

/// The SHA-256 of `WASM`, as the build printed it.
pub const WASM_SHA256: &str = env!("DTLTO_MOCK_WASM_SHA256");
