//! The embedded guest: `dtlto-mock.wasm` as built for wasm32-wasip1, and the same
//! module precompiled for this host at build time (see build.rs).

/// The portable artifact, byte for byte what `wasmtime run` would be given.
pub const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/dtlto-mock.wasm"));

/// The artifact compiled by Cranelift for the runner's target with `engine_config()`.
///
/// Page-aligned and padded to whole pages (see PAGE_ALIGNMENT), so
/// that its machine code can be made executable where the binary holds it, without
/// exposing anything else in the binary (see code_in_place.rs).
pub static PRECOMPILED: &PageAligned<[u8]> = &PageAligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/dtlto-mock.cwasm"
)));

/// The SHA-256 of `WASM`, as the build printed it.
pub const WASM_SHA256: &str = env!("DTLTO_MOCK_WASM_SHA256");

/// Bytes that start on a page boundary and are padded to a whole number of pages.
/// 64 KiB covers every page size of unix hosts; Windows pages are 4 KiB, and COFF
/// objects cannot align data to more than 8 KiB.
#[cfg_attr(not(windows), repr(C, align(65536)))]
#[cfg_attr(windows, repr(C, align(4096)))]
pub struct PageAligned<B: ?Sized>(pub B);

/// The largest page size `PageAligned` covers.
pub const PAGE_ALIGNMENT: usize = std::mem::align_of::<PageAligned<[u8; 0]>>();
