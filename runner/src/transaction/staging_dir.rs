//! One private staging directory inside an output directory, and the reclaiming of
//! those that killed runs left behind.
//!
//! Layout, in the output directory, for 16 random hex digits `X`:
//! - `.dtlto-staging-X.lock`: locked (an advisory whole-file lock) for as long as the
//!   run owns `X`; the OS releases it when the process dies, however it dies;
//! - `.dtlto-staging-X/out/`: the guest's writable preopen, where it writes outputs;
//! - `.dtlto-staging-X/aside/`: during the commit, the files the outputs replace.
//!
//! The lock file is the staging's title: it is created first (exclusively) and
//! removed last, so a staging directory is reclaimed only through its lock file,
//! and only when that lock can be taken and the file is still the one at that name.
//! A directory without its lock file is never touched: it is not ours. The guest
//! sees only `out/`, so it cannot reach the lock.

use super::remove_tree::{remove_tree, RemoveError};
use crate::file_id;
use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

pub const PREFIX: &str = ".dtlto-staging-";
const LOCK_SUFFIX: &str = ".lock";
const OUT: &str = "out";
const ASIDE: &str = "aside";

/// A staging directory this run created and holds the lock of.
#[derive(Debug)]
pub struct StagingDir {
    root: PathBuf,
    lock_path: PathBuf,
    lock: Option<File>,
}

impl StagingDir {
    /// Creates a staging directory in `output_dir`, with a name nobody can predict,
    /// exclusively, under its lock.
    pub fn create(output_dir: &Path) -> io::Result<StagingDir> {
        for _ in 0..16 {
            let name = format!("{PREFIX}{:016x}", random_u64());
            let lock_path = output_dir.join(format!("{name}{LOCK_SUFFIX}"));
            let lock = match create_exclusively(&lock_path) {
                Ok(lock) => lock,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            // A reclaimer may have taken the new lock file for an abandoned one; it
            // then removes it, and we try another name.
            let Some(lock) = take_lock(&lock_path, lock)? else {
                continue;
            };
            let staging = StagingDir {
                root: output_dir.join(name),
                lock_path,
                lock: Some(lock),
            };
            fs::create_dir(&staging.root)?;
            fs::create_dir(staging.out())?;
            return Ok(staging);
        }
        Err(io::Error::other(
            "every staging name tried was taken or claimed",
        ))
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

    /// Removes the directory, then the lock file, then lets go of the lock.
    pub fn remove(mut self) -> Result<(), RemoveError> {
        let lock = self.lock.take();
        remove_locked(&self.root, &self.lock_path, lock)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            if let Err(e) = remove_locked(&self.root, &self.lock_path, Some(lock)) {
                eprintln!("dtlto-runner: warning: {e}");
            }
        }
    }
}

/// Removes a staging directory whose lock we hold, the lock file last: a removal
/// cut short leaves the lock file, so the next run can reclaim what is left.
fn remove_locked(root: &Path, lock_path: &Path, lock: Option<File>) -> Result<(), RemoveError> {
    remove_tree(root)?;
    match fs::remove_file(lock_path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(RemoveError {
            root: lock_path.to_path_buf(),
            entry: String::new(),
            error,
        }),
        _ => {
            drop(lock);
            Ok(())
        }
    }
}

/// Opens an existing lock file to lock it, never through a link.
fn open_lock(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        options.custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options.open(path)
}

fn create_exclusively(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Locks `lock` without waiting, and checks that it is still the file at
/// `lock_path`: whoever held it before may have removed it.
fn take_lock(lock_path: &Path, lock: File) -> io::Result<Option<File>> {
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(None),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    let still_there = file_id::of_path(lock_path)
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

/// The staging name in a lock file's name, if it is one of ours:
/// `.dtlto-staging-<16 lowercase hex digits>.lock`.
fn staging_name_of_lock(file_name: &str) -> Option<&str> {
    let name = file_name.strip_suffix(LOCK_SUFFIX)?;
    let digits = name.strip_prefix(PREFIX)?;
    let ours = digits.len() == 16
        && digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ours.then_some(name)
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
    /// Abandoned staging that could not be removed.
    pub failed: Vec<RemoveError>,
}

/// Removes the abandoned staging directories in `output_dir`: those whose lock file
/// can be locked. A commit cut short by a crash may have set old outputs aside;
/// each is put back if its place is still empty, so that no output goes missing.
pub fn reclaim(output_dir: &Path) -> Reclaimed {
    let mut found = Reclaimed::default();
    let Ok(entries) = fs::read_dir(output_dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(staging_name_of_lock) else {
            continue;
        };
        let root = output_dir.join(name);
        match reclaim_one(output_dir, &root, &entry.path(), &mut found.restored) {
            Ok(true) => found.removed.push(root),
            Ok(false) => found.in_use += 1,
            Err(e) => found.failed.push(e),
        }
    }
    found
}

/// Reclaims `root` if its lock is free; `Ok(false)` if a live run holds it.
fn reclaim_one(
    output_dir: &Path,
    root: &Path,
    lock_path: &Path,
    restored: &mut Vec<PathBuf>,
) -> Result<bool, RemoveError> {
    let failed = |error: io::Error| RemoveError {
        root: lock_path.to_path_buf(),
        entry: String::new(),
        error,
    };
    // Not through a link: a lock file is a regular file we made.
    let lock = match open_lock(lock_path) {
        Ok(lock) if lock.metadata().is_ok_and(|m| m.is_file()) => lock,
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(failed(e)),
    };
    let Some(lock) = take_lock(lock_path, lock).map_err(failed)? else {
        return Ok(false);
    };
    let root_is_directory = fs::symlink_metadata(root).is_ok_and(|m| m.is_dir());
    if root_is_directory {
        restore_set_aside(output_dir, &root.join(ASIDE), restored);
    }
    remove_locked(root, lock_path, Some(lock))?;
    Ok(true)
}

/// Puts each regular file in `aside` back at its name in `output_dir` if that name
/// is free. A hard link cannot replace an existing file, so a newer output is never
/// lost; nothing is followed through a link.
fn restore_set_aside(output_dir: &Path, aside: &Path, restored: &mut Vec<PathBuf>) {
    if !fs::symlink_metadata(aside).is_ok_and(|m| m.is_dir()) {
        return;
    }
    let Ok(entries) = fs::read_dir(aside) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
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
        let name = format!("{PREFIX}0123456789abcdef");
        let root = dir.join(&name);
        fs::create_dir_all(root.join(OUT)).unwrap();
        fs::create_dir_all(root.join(ASIDE)).unwrap();
        fs::write(dir.join(format!("{name}{LOCK_SUFFIX}")), "").unwrap();
        fs::write(root.join(OUT).join("b.o"), "partial").unwrap();
        fs::write(root.join(ASIDE).join("a.o"), "old a").unwrap();
        fs::write(root.join(ASIDE).join("c.o"), "old c").unwrap();
        fs::write(dir.join("c.o"), "new c").unwrap();
        // Not ours: names of the prefix that are not a lock of 16 hex digits, and a
        // staging-like directory without its lock file.
        fs::create_dir_all(dir.join(format!("{PREFIX}notes")).join("out")).unwrap();
        fs::write(dir.join(format!("{PREFIX}notes.lock")), "x").unwrap();
        fs::create_dir_all(dir.join(format!("{PREFIX}fedcba9876543210")).join("out")).unwrap();
        let found = reclaim(&dir);
        assert_eq!(found.removed, [root]);
        assert_eq!(found.restored, [dir.join("a.o")]);
        assert_eq!(fs::read(dir.join("a.o")).unwrap(), b"old a");
        assert_eq!(fs::read(dir.join("c.o")).unwrap(), b"new c");
        assert_eq!(
            names(&dir),
            [
                ".dtlto-staging-fedcba9876543210",
                ".dtlto-staging-notes",
                ".dtlto-staging-notes.lock",
                "a.o",
                "c.o"
            ]
            .map(String::from)
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn reclaim_follows_no_link() {
        let dir = scratch("links");
        let elsewhere = scratch("links-elsewhere");
        fs::write(elsewhere.join("a.o"), "not ours").unwrap();
        let name = format!("{PREFIX}00000000000000aa");
        fs::create_dir(dir.join(&name)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join(&name).join(ASIDE)).unwrap();
        fs::write(dir.join(format!("{name}{LOCK_SUFFIX}")), "").unwrap();
        // A lock that is a link is not ours either.
        let other = format!("{PREFIX}00000000000000bb");
        std::os::unix::fs::symlink(
            elsewhere.join("a.o"),
            dir.join(format!("{other}{LOCK_SUFFIX}")),
        )
        .unwrap();
        let found = reclaim(&dir);
        assert!(found.restored.is_empty(), "{:?}", found.restored);
        assert_eq!(found.removed, [dir.join(&name)]);
        assert_eq!(fs::read(elsewhere.join("a.o")).unwrap(), b"not ours");
        assert_eq!(names(&elsewhere), ["a.o"]);
        fs::remove_dir_all(dir).unwrap();
        fs::remove_dir_all(elsewhere).unwrap();
    }

    #[test]
    fn a_lock_taken_by_a_reclaimer_first_sends_the_creator_to_another_name() {
        let dir = scratch("claim");
        let lock_path = dir.join(format!("{PREFIX}1111111111111111{LOCK_SUFFIX}"));
        let creators = create_exclusively(&lock_path).unwrap();
        // A reclaimer locks the fresh lock file before its creator does...
        let reclaimers = take_lock(&lock_path, open_lock(&lock_path).unwrap()).unwrap();
        assert!(reclaimers.is_some());
        // ...so the creator cannot, and gives the name up.
        assert!(take_lock(&lock_path, creators).unwrap().is_none());
        // Windows keeps a directory with open files in it.
        drop(reclaimers);
        fs::remove_dir_all(dir).unwrap();
    }
}
