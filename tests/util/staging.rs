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
