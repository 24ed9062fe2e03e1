//! Links the runner with packed relative relocations (DT_RELR) where the toolchain and
//! the C library support them.
//!
//! The runner is a position-independent executable with about 20,000 relative
//! relocations. Applied from a 480 KiB RELA table they cost a one-job run about a
//! fifth of its time; the same relocations packed as RELR take 5 KiB. A C library
//! older than glibc 2.36 refuses to start a binary that uses them, so a probe program
//! linked the same way must run on the build machine first. Cross builds go without,
//! and so does a build with DTLTO_RUNNER_PLAIN_RELOCATIONS set (for a runner that is
//! built on one machine and run on another with an older glibc).

use std::env;
use std::path::Path;
use std::process::{Command, Stdio};

const FLAG: &str = "-Wl,-z,pack-relative-relocs";
const OPT_OUT: &str = "DTLTO_RUNNER_PLAIN_RELOCATIONS";

pub fn link_runner_with_packed_relocations(out_dir: &Path) {
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    println!("cargo:rerun-if-env-changed={OPT_OUT}");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let native_linux_gnu = var("TARGET") == var("HOST")
        && var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu";
    if native_linux_gnu && env::var_os(OPT_OUT).is_none() && probe_runs(out_dir) {
        println!("cargo:rustc-link-arg-bin=dtlto-runner={FLAG}");
    }
}

/// Whether a position-independent program linked with FLAG by the linker rustc uses
/// builds and runs here. Its one pointer in data is a relative relocation.
fn probe_runs(out_dir: &Path) -> bool {
    let source = out_dir.join("relr_probe.c");
    let program = out_dir.join("relr_probe");
    let text =
        "static const char *message = \"relr\";\nint main(void) { return message[0] != 'r'; }\n";
    if std::fs::write(&source, text).is_err() {
        return false;
    }
    let linker = env::var_os("RUSTC_LINKER").unwrap_or_else(|| "cc".into());
    let quietly = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    quietly(
        Command::new(linker)
            .args(["-fPIE", "-pie", FLAG, "-o"])
            .arg(&program)
            .arg(&source),
    ) && quietly(&mut Command::new(&program))
}
