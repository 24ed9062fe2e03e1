//! Two clean builds of the guest, from checkouts at different paths (one with a space),
//! give the same bytes as each other and as the artifact the runner embeds: no host
//! path or timestamp gets into dtlto-mock.wasm.

#[path = "../runner/build_guest.rs"]
#[allow(dead_code)]
mod build_guest;
use crate::util::TestDir;
use std::fs;
use std::path::Path;

/// Copies the checkout (without build outputs and git data) to `to`.
fn copy_checkout(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let name = entry.file_name();
        if matches!(name.to_str(), Some("target" | ".git")) {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_checkout(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn clean_builds_in_different_places_give_identical_bytes() {
    let checkout = crate::util::repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let dir = TestDir::new("reproducible");
    let mut artifacts = Vec::new();
    for place in ["a/dtlto-mock", "b/another checkout"] {
        let workspace = dir.join(place);
        copy_checkout(&checkout, &workspace);
        let wasm = build_guest::build_guest(&cargo, &workspace, &workspace.join("target"), true)
            .unwrap_or_else(|e| panic!("clean build in {}: {e}", workspace.display()));
        let bytes = fs::read(&wasm).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(&*workspace.to_string_lossy()),
            "{place}: the artifact names its checkout"
        );
        artifacts.push(bytes);
    }
    assert!(artifacts[0] == artifacts[1], "two clean builds differ");
    assert!(
        artifacts[0] == dtlto_runner::guest_module::WASM,
        "a clean build differs from the artifact the runner embeds"
    );
}

#[test]
fn the_build_watches_the_files_cargos_dep_info_names_relative_to_runner() {
    let dir = TestDir::new("dep-info");
    let workspace = dir.join("my checkout");
    let dep_info = dir.write(
        "dtlto-mock.d",
        format!(
            "/t/dtlto-mock.wasm: {w}/Cargo.toml {w}/src/lib.rs {w}/src/a\\ b.rs /elsewhere/x.rs\n",
            w = workspace.display().to_string().replace(' ', "\\ ")
        ),
    );
    assert_eq!(
        build_guest::sources(&dep_info, &workspace).unwrap(),
        [
            "../Cargo.toml",
            "../src/lib.rs",
            "../src/a b.rs",
            "/elsewhere/x.rs"
        ]
    );
}
