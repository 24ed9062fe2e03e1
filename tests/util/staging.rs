//! Watching a run from outside while it works: its staging directories, and waiting
//! for the moment a scene needs.

use super::TestDir;
use std::fs;
use std::path::{Path, PathBuf};

/// The runner's staging directories in `dir` (their lock files left out).
pub fn staging_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(".dtlto-staging-")
                })
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// Whether some staging directory in `dir` holds the staged output `name`.
pub fn is_staged(dir: &Path, name: &str) -> bool {
    staging_dirs(dir)
        .iter()
        .any(|staging| staging.join("out").join(name).exists())
}

/// Waits until `ready` holds, for at most 20 s; fails the test naming `what` if not.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    panic!("waited 20 s for {what}");
}

/// Every name in `dir`'s tree that belongs to a staging directory: none once a run
/// has cleaned up.
pub fn staging_left(dir: &TestDir) -> Vec<String> {
    dir.snapshot()
        .into_keys()
        .filter(|n| n.contains(".dtlto-staging"))
        .collect()
}

/// After a stop that left its staging: only the staging and its title were added,
/// and the next ordinary run (`args`) reclaims them, adding only `outputs`.
#[cfg(unix)]
pub fn left_then_reclaimed(
    dir: &super::TestDir,
    before: &std::collections::BTreeMap<String, super::Entry>,
    args: &[&str],
    outputs: &[&str],
) {
    let left: Vec<String> = super::changes(before, &dir.snapshot())
        .into_iter()
        .filter(|change| !change.starts_with("+ .dtlto-staging-"))
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{}", dir.listing());
    assert_eq!(staging_dirs(dir.path()).len(), 1, "{}", dir.listing());
    let mut verbose = vec!["--verbose"];
    verbose.extend_from_slice(args);
    let next = super::run_runner(dir, &verbose);
    next.expect_status(0)
        .expect_stderr_has("dtlto-runner: reclaimed abandoned staging \"");
    let added: Vec<String> = outputs.iter().map(|o| format!("+ {o}")).collect();
    assert_eq!(
        super::changes(before, &dir.snapshot()),
        added,
        "{}",
        next.report()
    );
}
