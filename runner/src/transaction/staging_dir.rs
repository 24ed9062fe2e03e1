//! One private staging directory inside an output directory, and the reclaiming of
//! those that killed runs left behind.
//!
//! Layout: `<output dir>/.dtlto-staging-<16 random hex digits>/` holds
//! - `lock`: locked (an advisory whole-file lock) for as long as the run owns the
//!   directory; the OS releases it when the process dies, however it dies;
//! - `out/`: the guest's writable preopen, where it writes the outputs;
//! - `aside/`: during the commit, the files the outputs replace.
//!
//! The guest sees only `out/`, so it cannot touch the lock. Whoever creates `lock`
//! (`O_EXCL`) owns the directory: the creator, or a reclaimer that found a directory
//! without one. A directory is reclaimed only when its lock can be taken, so a live
//! run's staging is never touched, whatever its pid or pid namespace.

use super::file_id;
use super::remove_tree::{remove_tree, RemoveError};
use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

pub const PREFIX: &str = ".dtlto-staging-";
const LOCK: &str = "lock";
const OUT: &str = "out";
const ASIDE: &str = "aside";

/// A staging directory this run created and holds the lock of.
#[derive(Debug)]
pub struct StagingDir {
    root: PathBuf,
    lock: Option<File>,
}

impl StagingDir {
    /// Creates a staging directory in `output_dir`, with a name nobody can predict,
    /// exclusively, and takes its lock.
    pub fn create(output_dir: &Path) -> io::Result<StagingDir> {
        let mut last_error = None;
        for _ in 0..16 {
            let root = output_dir.join(format!("{PREFIX}{:016x}", random_u64()));
            match fs::create_dir(&root) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            // A reclaimer may claim an empty directory before we create its lock; then
            // it is theirs, and we try another name.
            let Some(lock) = claim(&root)? else {
                last_error = Some(io::Error::other("claimed by another run"));
                continue;
            };
            let staging = StagingDir {
                root,
                lock: Some(lock),
            };
            fs::create_dir(staging.out())?;
            return Ok(staging);
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("every name tried was taken")))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The guest's writable directory.
    pub fn out(&self) -> PathBuf {
        self.root.join(OUT)
    }

    /// Where the commit puts the files the outputs replace.
    pub fn aside(&self) -> PathBuf {
        self.root.join(ASIDE)
    }

    /// Removes everything, then the lock, then the directory.
    pub fn remove(mut self) -> Result<(), RemoveError> {
        let lock = self.lock.take();
        remove_locked(&self.root, lock)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            if let Err(e) = remove_locked(&self.root, Some(lock)) {
                eprintln!("dtlto-runner: warning: {e}");
            }
        }
    }
}

/// Removes a staging directory whose lock we hold: contents first, the lock last,
/// so that a removal cut short leaves a directory the next run can reclaim.
fn remove_locked(root: &Path, lock: Option<File>) -> Result<(), RemoveError> {
    for part in [OUT, ASIDE] {
        remove_tree(&root.join(part))?;
    }
    let lock_path = root.join(LOCK);
    match fs::remove_file(&lock_path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            return Err(RemoveError {
                root: root.to_path_buf(),
                entry: LOCK.to_owned(),
                error,
            })
        }
        _ => {}
    }
    // Windows keeps a deleted file's name until its last handle closes.
    drop(lock);
    remove_tree(root)
}

/// Creates `root/lock` exclusively and locks it; `None` if someone else got there
/// first (they own `root` now).
fn claim(root: &Path) -> io::Result<Option<File>> {
    let lock = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(root.join(LOCK))
    {
        Ok(lock) => lock,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotFound
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    take_lock(root, lock)
}

/// Locks `lock` (the file at `root/lock`) without waiting, and checks that it is
/// still the file of that name: a reclaimer may have removed it meanwhile.
fn take_lock(root: &Path, lock: File) -> io::Result<Option<File>> {
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(None),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    let still_there = file_id::of_path(&root.join(LOCK))
        .ok()
        .is_some_and(|named| file_id::of_file(&lock).is_ok_and(|held| held == named));
    Ok(still_there.then_some(lock))
}

/// 64 bits nobody else can predict: std's hasher keys come from the OS's randomness.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

/// What reclaiming found in one output directory.
#[derive(Debug, Default)]
pub struct Reclaimed {
    /// Staging directories of dead runs, removed.
    pub removed: Vec<PathBuf>,
    /// Files an interrupted commit had set aside, put back where they were missing.
    pub restored: Vec<PathBuf>,
    /// Staging directories of runs still alive, left alone.
    pub in_use: usize,
    /// Entries that look like staging but are not ours to judge, and why.
    pub left_alone: Vec<(PathBuf, String)>,
    /// Abandoned staging that could not be removed.
    pub failed: Vec<RemoveError>,
}

/// Removes the abandoned staging directories in `output_dir`: those whose lock is
/// free. A commit cut short by a crash may have set old outputs aside; each is put
/// back if its place is still empty, so that no output goes missing.
pub fn reclaim(output_dir: &Path) -> Reclaimed {
    let mut found = Reclaimed::default();
    let Ok(entries) = fs::read_dir(output_dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.starts_with(PREFIX)) {
            continue;
        }
        let root = entry.path();
        match reclaim_one(output_dir, &root, &mut found.restored) {
            Ok(Verdict::Removed) => found.removed.push(root),
            Ok(Verdict::InUse) => found.in_use += 1,
            Ok(Verdict::NotOurs(why)) => found.left_alone.push((root, why)),
            Err(e) => found.failed.push(e),
        }
    }
    found
}

enum Verdict {
    Removed,
    InUse,
    NotOurs(String),
}

fn reclaim_one(
    output_dir: &Path,
    root: &Path,
    restored: &mut Vec<PathBuf>,
) -> Result<Verdict, RemoveError> {
    let not_ours = |why: &str| Ok(Verdict::NotOurs(why.to_owned()));
    let io_failure = |error: io::Error| RemoveError {
        root: root.to_path_buf(),
        entry: String::new(),
        error,
    };
    match fs::symlink_metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return not_ours("not a directory"),
        Err(_) => return Ok(Verdict::InUse),
    }
    let names: Vec<_> = match fs::read_dir(root) {
        Ok(entries) => entries.flatten().map(|e| e.file_name()).collect(),
        Err(e) => return Err(io_failure(e)),
    };
    if names
        .iter()
        .any(|n| ![LOCK, OUT, ASIDE].iter().any(|ours| n == *ours))
    {
        return not_ours("it holds files a staging directory never has");
    }
    let lock = match OpenOptions::new()
        .read(true)
        .write(true)
        .open(root.join(LOCK))
    {
        Ok(lock) => take_lock(root, lock).map_err(io_failure)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => claim(root).map_err(io_failure)?,
        Err(e) => return Err(io_failure(e)),
    };
    let Some(lock) = lock else {
        return Ok(Verdict::InUse);
    };
    restore_set_aside(output_dir, &root.join(ASIDE), restored);
    remove_locked(root, Some(lock))?;
    Ok(Verdict::Removed)
}

/// Puts each file in `aside` back at its name in `output_dir` if that name is free.
/// A hard link cannot replace an existing file, so a newer output is never lost.
fn restore_set_aside(output_dir: &Path, aside: &Path, restored: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(aside) else {
        return;
    };
    for entry in entries.flatten() {
        let target = output_dir.join(entry.file_name());
        if fs::hard_link(entry.path(), &target).is_ok() {
            restored.push(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dtlto-staging-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_are_fresh_and_a_live_staging_is_never_reclaimed() {
        let dir = scratch("live");
        let a = StagingDir::create(&dir).unwrap();
        let b = StagingDir::create(&dir).unwrap();
        assert_ne!(a.root(), b.root());
        fs::write(a.out().join("x.o"), "partial").unwrap();
        let found = reclaim(&dir);
        assert_eq!(found.in_use, 2);
        assert!(found.removed.is_empty());
        assert_eq!(fs::read(a.out().join("x.o")).unwrap(), b"partial");
        a.remove().unwrap();
        drop(b);
        assert!(names(&dir).is_empty(), "{:?}", names(&dir));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_abandoned_staging_is_reclaimed_and_set_aside_files_come_back() {
        let dir = scratch("abandoned");
        let root = dir.join(format!("{PREFIX}0123456789abcdef"));
        fs::create_dir_all(root.join(OUT)).unwrap();
        fs::create_dir_all(root.join(ASIDE)).unwrap();
        fs::write(root.join(LOCK), "").unwrap();
        fs::write(root.join(OUT).join("b.o"), "partial").unwrap();
        fs::write(root.join(ASIDE).join("a.o"), "old a").unwrap();
        fs::write(root.join(ASIDE).join("c.o"), "old c").unwrap();
        fs::write(dir.join("c.o"), "new c").unwrap();
        // Not ours: a file of that prefix, and a directory with foreign contents.
        fs::write(dir.join(format!("{PREFIX}file")), "x").unwrap();
        fs::create_dir_all(dir.join(format!("{PREFIX}mine")).join("notes")).unwrap();
        let found = reclaim(&dir);
        assert_eq!(found.removed, [root]);
        assert_eq!(found.restored, [dir.join("a.o")]);
        assert_eq!(found.left_alone.len(), 2, "{:?}", found.left_alone);
        assert_eq!(fs::read(dir.join("a.o")).unwrap(), b"old a");
        assert_eq!(fs::read(dir.join("c.o")).unwrap(), b"new c");
        assert_eq!(
            names(&dir),
            [".dtlto-staging-file", ".dtlto-staging-mine", "a.o", "c.o"].map(String::from)
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_without_a_lock_is_claimed_by_whoever_creates_the_lock() {
        let dir = scratch("claim");
        let root = dir.join(format!("{PREFIX}fedcba9876543210"));
        fs::create_dir(&root).unwrap();
        let mine = claim(&root).unwrap();
        assert!(mine.is_some());
        // A second claimant (the creator, late) loses, and reclaim sees it in use.
        assert!(claim(&root).unwrap().is_none());
        assert_eq!(reclaim(&dir).in_use, 1);
        drop(mine);
        assert_eq!(reclaim(&dir).removed, [root]);
        fs::remove_dir_all(dir).unwrap();
    }
}
