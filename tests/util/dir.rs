//! A test's own directory: a `tempfile::TempDir` that every run in it shares, kept
//! for a look when the test fails.

use super::tree::{self, Entry};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A directory for one test, removed when the last handle to it goes, unless the
/// test is failing then. Cloning gives another handle to the same directory: every
/// `Run` in it holds one, so that a failing assertion can list it.
#[derive(Clone)]
pub struct TestDir {
    owned: Arc<Owned>,
}

struct Owned {
    temp: tempfile::TempDir,
    /// The canonical path of `temp` (runs report paths as the host resolves them).
    path: PathBuf,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // A failing test's directory stays, for a look at what the report listed.
        if std::thread::panicking() {
            self.temp.disable_cleanup(true);
        }
    }
}

/// The tests' shared directory has a fixed name in a directory everyone writes: one
/// made first by another user (or a link) would let that user move the tests' files
/// about, under tests that run as root. It must be this user's, a directory, and
/// writable by no one else.
#[cfg(unix)]
fn refuse_a_base_others_control(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(base).expect("stat the tests' temporary directory");
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    assert!(
        meta.is_dir() && meta.uid() == me && meta.mode() & 0o022 == 0,
        "{} is not a directory of uid {me}'s that only it may write (uid {}, mode {:o}): \
         remove it",
        base.display(),
        meta.uid(),
        meta.mode() & 0o7777
    );
}

impl TestDir {
    /// A new, empty directory whose name starts with `name`. It lies under the
    /// host's temporary directory, in `dtlto-mock-tests/`: under wine that is the
    /// Windows temporary directory, a path both the tests and the runner can see.
    pub fn new(name: &str) -> TestDir {
        // Every test makes its directory before it starts a command.
        #[cfg(unix)]
        {
            static SIGNALS: std::sync::Once = std::sync::Once::new();
            SIGNALS.call_once(super::unix_host::default_stop_signals_for_children);
        }
        let base = std::env::temp_dir().join("dtlto-mock-tests");
        fs::create_dir_all(&base).expect("create the tests' temporary directory");
        #[cfg(unix)]
        refuse_a_base_others_control(&base);
        let temp = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("create a test directory in {}: {e}", base.display()));
        let path = fs::canonicalize(temp.path()).expect("canonical test directory");
        TestDir {
            owned: Arc::new(Owned { temp, path }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.owned.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }

    /// Writes `bytes` to `name`, making its parent directories.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The bytes of `name`; a missing file fails the test with the listing.
    pub fn read(&self, name: &str) -> Vec<u8> {
        let path = self.join(name);
        fs::read(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{}", path.display(), self.listing()))
    }

    pub fn exists(&self, name: &str) -> bool {
        self.join(name).symlink_metadata().is_ok()
    }

    /// Every entry under the directory with its kind and size, one per line.
    pub fn listing(&self) -> String {
        tree::listing(self.path())
    }

    /// Names, kinds, sizes, content hashes, mtimes, inode numbers and link counts of
    /// everything under the directory.
    pub fn snapshot(&self) -> BTreeMap<String, Entry> {
        tree::snapshot(self.path())
    }

    /// The directory as it is now, to compare with after the action: the "nothing
    /// changed" idiom is `let before = dir.watch(); ...; before.assert_unchanged();`.
    /// It is also the snapshot itself, for `changes(&before, ...)`.
    pub fn watch(&self) -> Watched {
        Watched {
            dir: self.clone(),
            before: self.snapshot(),
        }
    }
}

/// A test directory's snapshot taken before an action (see `TestDir::watch`).
pub struct Watched {
    dir: TestDir,
    before: BTreeMap<String, Entry>,
}

impl Watched {
    /// Asserts that nothing under the directory changed since the snapshot; a
    /// failure lists what did, and the directory as it is.
    pub fn assert_unchanged(&self) {
        self.assert_unchanged_with(String::new);
    }

    /// As `assert_unchanged`, with `context` (a run's report, say) in the failure.
    pub fn assert_unchanged_with(&self, context: impl FnOnce() -> String) {
        let changed = tree::changes(&self.before, &self.dir.snapshot());
        if !changed.is_empty() {
            panic!(
                "the action changed what it must not:\n  {}\n--- now:\n{}\n{}",
                changed.join("\n  "),
                self.dir.listing(),
                context()
            );
        }
    }
}

impl std::ops::Deref for Watched {
    type Target = BTreeMap<String, Entry>;

    fn deref(&self) -> &Self::Target {
        &self.before
    }
}
