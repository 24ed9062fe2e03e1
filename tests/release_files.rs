//! The release files of tools/release.sh, inspected: each runner is an executable for
//! its target's CPU and format, and embeds the one guest, precompiled for that target.
//! The macOS runners are only built and inspected here, never run.
//!
//! tests/cross.sh builds the files and runs these with DTLTO_RELEASE_DIR naming them,
//! on the Linux machine that built them.
#![cfg(unix)]

use crate::util::llvm::llvm;
use std::path::PathBuf;

/// target, the CPU llvm-objdump names in a Mach-O header (macOS only), ELF e_machine of the
/// precompiled guest.
const TARGETS: [(&str, Option<&str>, u16); 5] = [
    ("x86_64-unknown-linux-gnu", None, ELF_X86_64),
    ("aarch64-unknown-linux-gnu", None, ELF_AARCH64),
    ("x86_64-pc-windows-gnu", None, ELF_X86_64),
    ("x86_64-apple-darwin", Some("X86_64"), ELF_X86_64),
    ("aarch64-apple-darwin", Some("ARM64"), ELF_AARCH64),
];
const ELF_X86_64: u16 = 62;
const ELF_AARCH64: u16 = 183;

fn release_dir() -> PathBuf {
    let dir = std::env::var_os("DTLTO_RELEASE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("set DTLTO_RELEASE_DIR to the output of tools/release.sh"));
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    dir
}

fn runner_file(target: &str) -> PathBuf {
    let suffix = if target.contains("windows") {
        ".exe"
    } else {
        ""
    };
    release_dir().join(format!("dtlto-runner-{target}{suffix}"))
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
#[ignore = "inspects the files of tools/release.sh; tests/cross.sh runs it"]
fn sha256sums_lists_every_release_file_and_each_matches() {
    let dir = release_dir();
    let sums = String::from_utf8(read(&dir.join("SHA256SUMS"))).expect("SHA256SUMS is text");
    let mut listed: Vec<&str> = sums
        .lines()
        .map(|line| line.split_once("  ").expect("`<sum>  <name>` lines").1)
        .collect();
    listed.sort_unstable();
    let mut expected: Vec<String> = TARGETS
        .iter()
        .map(|(target, ..)| {
            runner_file(target)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .chain(["dtlto-mock.wasm".to_string()])
        .collect();
    expected.sort_unstable();
    assert_eq!(listed, expected, "SHA256SUMS:\n{sums}");
    let check = crate::util::run_tool(
        std::process::Command::new("sha256sum")
            .args(["--check", "--strict", "SHA256SUMS"])
            .current_dir(&dir),
    );
    assert_eq!(check.status, 0, "{}", check.report());
}

#[test]
#[ignore = "inspects the files of tools/release.sh; tests/cross.sh runs it"]
fn the_macos_runners_are_mach_o_executables_for_their_cpu() {
    let llvm = llvm();
    for (target, mach_cpu, _) in TARGETS {
        let Some(mach_cpu) = mach_cpu else { continue };
        let file = runner_file(target);
        let run = crate::util::run_tool(
            std::process::Command::new(llvm.tool("llvm-objdump"))
                .args(["--macho", "--private-headers"])
                .arg(&file),
        );
        assert_eq!(run.status, 0, "{}", run.report());
        // The line under "Mach header": magic cputype cpusubtype caps filetype ...
        let header = run
            .stdout()
            .lines()
            .skip_while(|line| !line.starts_with("Mach header"))
            .nth(2)
            .unwrap_or_default()
            .to_string();
        let words: Vec<&str> = header.split_whitespace().collect();
        assert_eq!(
            words.get(..2),
            Some(&["MH_MAGIC_64", mach_cpu][..]),
            "{target}: {}",
            run.report()
        );
        assert!(
            words.contains(&"EXECUTE") && words.contains(&"PIE"),
            "{target}: not a position-independent executable: {header}"
        );
        // Nothing from an SDK's frameworks (ctrlc's macOS backend once needed
        // Foundation and libobjc): only the system libraries in /usr/lib that every
        // macOS has, libSystem and the libiconv that Rust's libc crate names.
        let libraries = crate::util::run_tool(
            std::process::Command::new(llvm.tool("llvm-objdump"))
                .args(["--macho", "--dylibs-used"])
                .arg(&file),
        );
        let listing = libraries.stdout();
        let used: Vec<&str> = listing
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next())
            .collect();
        assert!(
            used.contains(&"/usr/lib/libSystem.B.dylib")
                && used.iter().all(|library| {
                    library.starts_with("/usr/lib/lib") && !library.contains("objc")
                }),
            "{target}: {}",
            libraries.report()
        );
    }
}

#[test]
#[ignore = "inspects the files of tools/release.sh; tests/cross.sh runs it"]
fn every_runner_embeds_the_released_guest_precompiled_for_its_own_target() {
    let dir = release_dir();
    let wasm = read(&dir.join("dtlto-mock.wasm"));
    let wasm_sha256 = sha256_hex(&dir, "dtlto-mock.wasm");
    for (target, _, elf_machine) in TARGETS {
        let binary = read(&runner_file(target));
        assert!(
            find(&binary, &wasm).is_some(),
            "{target}: the runner does not embed the released dtlto-mock.wasm"
        );
        assert!(
            find(&binary, wasm_sha256.as_bytes()).is_some(),
            "{target}: the runner does not report the guest's sha256 {wasm_sha256}"
        );
        let (machine, engine) = precompiled_guest(&binary)
            .unwrap_or_else(|| panic!("{target}: no precompiled guest found in the runner"));
        assert_eq!(
            machine, elf_machine,
            "{target}: the precompiled guest is for ELF machine {machine}"
        );
        // wasmtime records the target it compiled for in this section.
        assert!(
            find(engine, target.as_bytes()).is_some(),
            "{target}: the precompiled guest's .wasmtime.engine does not name {target}: {:?}",
            String::from_utf8_lossy(engine)
        );
    }
}

fn sha256_hex(dir: &std::path::Path, name: &str) -> String {
    let run = crate::util::run_tool(
        std::process::Command::new("sha256sum")
            .arg(name)
            .current_dir(dir),
    );
    assert_eq!(run.status, 0, "{}", run.report());
    run.stdout()
        .split_whitespace()
        .next()
        .expect("a sum")
        .to_string()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The precompiled guest: an ELF image (wasmtime writes ELF whatever the target's own
/// format), page-aligned in memory and so at least 512-byte aligned in every format
/// here (PE aligns file offsets to 512). Returns its ELF machine and its
/// `.wasmtime.engine` section.
fn precompiled_guest(binary: &[u8]) -> Option<(u16, &[u8])> {
    (512..binary.len())
        .step_by(512)
        .filter(|&start| binary[start..].starts_with(b"\x7fELF\x02\x01\x01"))
        .find_map(|start| {
            let image = &binary[start..];
            let machine = u16_at(image, 18)?;
            Some((machine, elf_section(image, ".wasmtime.engine")?))
        })
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The contents of section `name` of the little-endian ELF64 `image`.
fn elf_section<'a>(image: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let table = usize::try_from(u64_at(image, 0x28)?).ok()?;
    let entry_size = usize::from(u16_at(image, 0x3a)?);
    let count = usize::from(u16_at(image, 0x3c)?);
    let names_index = usize::from(u16_at(image, 0x3e)?);
    let header = |i: usize| -> Option<(u32, usize, usize)> {
        let at = table.checked_add(i.checked_mul(entry_size)?)?;
        let name = u32::from_le_bytes(image.get(at..at + 4)?.try_into().ok()?);
        let offset = usize::try_from(u64_at(image, at + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(image, at + 0x20)?).ok()?;
        Some((name, offset, size))
    };
    let (_, names_offset, names_size) = header(names_index)?;
    let names = image.get(names_offset..names_offset.checked_add(names_size)?)?;
    (0..count).find_map(|i| {
        let (name_at, offset, size) = header(i)?;
        let rest = names.get(name_at as usize..)?;
        let this = &rest[..rest.iter().position(|&b| b == 0)?];
        (this == name.as_bytes()).then(|| image.get(offset..offset.checked_add(size)?))?
    })
}
