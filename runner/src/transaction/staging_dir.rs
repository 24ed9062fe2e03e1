//! One private staging directory inside an output directory, and the reclaiming of
//! those that killed runs left behind.
//!
//! Layout, in the output directory, for 16 random hex digits `X`:
//! - `.dtlto-staging-X.lock`: the staging's title, locked (an advisory whole-file
//!   lock) for as long as the run owns `X`; the OS releases it when the process dies,
//!   however it dies. All the titles a run makes on one file system are hard links
//!   of one locked file, so a run holds one descriptor per file system, not one per
//!   output directory. Titles are readable by all (mode 0644, empty) so that another
//!   user's run can tell a live staging from an abandoned one;
//! - `.dtlto-staging-X/out/`: the guest's writable preopen, where it writes outputs;
//! - `.dtlto-staging-X/aside/`: files the outputs replaced, where the system cannot
//!   exchange two names (see place.rs);
//! - `.dtlto-staging-X/recover.json`: written only when a rollback failed: which
//!   outputs still hold this run's file, and where their previous files are. The
//!   staging is then left for the next run, which puts those files back.
//!
//! The title is created first (exclusively) and removed last, so a staging directory
//! is reclaimed only through its title, only when its lock can be taken, only when
//! the title is still that file, and only by its owner. A directory without its
//! title is never touched: it is not ours. The guest sees only `out/`.

use super::dir_handle::DirHandle;
use super::place::{self, Dirs, Previous, Undone, ASIDE};
use super::remove_tree::{remove_tree, RemoveError};
use crate::sandbox::file_id::{self, FileId};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub const PREFIX: &str = ".dtlto-staging-";
const LOCK_SUFFIX: &str = ".lock";
pub const OUT: &str = "out";
const RECOVER: &str = "recover.json";

/// The locks a run holds: one locked file per file system, titled in each output
/// directory on it by a hard link.
#[derive(Debug, Default)]
pub struct RunLocks {
    held: Vec<(u64, PathBuf, File)>,
}

impl RunLocks {
    /// Makes `title` a name of this run's lock on the file system `device`:
    /// `AlreadyExists` if the name is taken.
    fn title(&mut self, device: u64, title: &Path) -> io::Result<()> {
        if let Some((_, held_path, held)) = self.held.iter().find(|(d, _, _)| *d == device) {
            match fs::hard_link(held_path, title) {
                Ok(()) => {
                    // Still our lock at that name, not a file swapped in meanwhile.
                    if file_id::of_path(title).ok() == file_id::of_file(held).ok() {
                        return Ok(());
                    }
                    let _ = fs::remove_file(title);
                    return Err(io::ErrorKind::AlreadyExists.into());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
                // No hard links here (another mount of the file system, a file
                // system without them): a lock of its own.
                Err(_) => {}
            }
        }
        let lock = create_exclusively(title)?;
        // A reclaimer may have taken the new lock file for an abandoned one; it then
        // removes it, and the caller tries another name.
        let Some(lock) = take_lock(title, lock)? else {
            return Err(io::ErrorKind::AlreadyExists.into());
        };
        self.held.push((device, title.to_path_buf(), lock));
        Ok(())
    }
}

/// A staging directory this run created and holds the lock of.
#[derive(Debug)]
pub struct StagingDir {
    root: PathBuf,
    title: PathBuf,
    root_id: FileId,
    out_id: FileId,
    /// Removed already, or left for the next run.
    done: bool,
}

impl StagingDir {
    /// Creates a staging directory in `output_dir` (whose identity is `dir_id`), with
    /// a name nobody can predict, exclusively, under a lock of `locks`.
    pub fn create(
        output_dir: &Path,
        dir_id: FileId,
        locks: &mut RunLocks,
    ) -> io::Result<StagingDir> {
        for _ in 0..16 {
            let name = format!("{PREFIX}{:016x}", random_u64()?);
            let title = output_dir.join(format!("{name}{LOCK_SUFFIX}"));
            match locks.title(dir_id.raw().0, &title) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other?,
            }
            let root = output_dir.join(&name);
            let made = fs::create_dir(&root).and_then(|()| fs::create_dir(root.join(OUT)));
            if let Err(e) = made {
                let _ = remove_tree(&root, None);
                let _ = fs::remove_file(&title);
                return Err(e);
            }
            let root_handle = DirHandle::open(output_dir, Some(dir_id))?.open_child(&name, None)?;
            let out = root_handle.open_child(OUT, None)?;
            return Ok(StagingDir {
                root,
                title,
                root_id: root_handle.id(),
                out_id: out.id(),
                done: false,
            });
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

    fn name(&self) -> &str {
        self.root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
    }

    /// Opens the output directory `target` and this staging in it, checking each is
    /// the directory made or planned: nothing swapped in since is acted on.
    pub fn open(&self, target: DirHandle) -> io::Result<Dirs> {
        let root = target.open_child(self.name(), Some(self.root_id))?;
        let out = root.open_child(OUT, Some(self.out_id))?;
        Ok(Dirs::new(target, root, out))
    }

    /// Leaves the staging for the next run, with `record`: the outputs whose
    /// rollback failed. Writes nothing if the record cannot be written; the
    /// previous files stay where the message says either way.
    pub fn leave_for_recovery(mut self, record: &[Unrestored]) -> io::Result<()> {
        self.done = true;
        let text = serde_json::to_vec(record).map_err(io::Error::other)?;
        fs::write(self.root.join(RECOVER), text)
    }

    /// Removes the directory, then its title. The lock itself is let go when the
    /// run's `RunLocks` is dropped.
    pub fn remove(mut self) -> Result<(), RemoveError> {
        self.done = true;
        remove_titled(&self.root, Some(self.root_id), &self.title)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = remove_titled(&self.root, Some(self.root_id), &self.title) {
                dtlto_mock::message::print_stderr(&format!("dtlto-runner: warning: {e}"));
            }
        }
    }
}

/// An output whose rollback failed: it still holds the file this run placed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Unrestored {
    pub name: String,
    /// The placed file's device and file number.
    pub placed: (u64, u64),
    pub previous: Previous,
}

/// Removes a staging directory whose lock we hold, the title last: a removal cut
/// short leaves the title, so the next run can reclaim what is left.
fn remove_titled(root: &Path, id: Option<FileId>, title: &Path) -> Result<(), RemoveError> {
    remove_tree(root, id)?;
    match fs::remove_file(title) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(RemoveError {
            root: title.to_path_buf(),
            entry: String::new(),
            error,
        }),
        _ => Ok(()),
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
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    // Readable by all whatever the umask, so that other users' runs can test the
    // lock instead of taking a live staging for an abandoned one. It stays empty.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    Ok(file)
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

/// 64 bits nobody else can predict, from the OS's randomness.
fn random_u64() -> io::Result<u64> {
    Ok(getrandom::u64()?)
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
    /// Outputs put back as they were before a dead run: files an interrupted commit
    /// had set aside, and the previous files of a rollback that failed.
    pub restored: Vec<PathBuf>,
    /// Previous files of a failed rollback whose output another run has replaced
    /// since: the newer output stays.
    pub superseded: Vec<PathBuf>,
    /// Staging directories of runs still alive (or of other users, whose lock we
    /// may not even open), left alone.
    pub in_use: usize,
    /// Abandoned staging of another user: not ours to remove. (path, owner)
    pub not_ours: Vec<(PathBuf, String)>,
    /// Abandoned staging that could not be removed or restored from.
    pub failed: Vec<RemoveError>,
}

/// Removes the abandoned staging directories in `output_dir`: those whose lock file
/// can be locked. A commit cut short by a crash may have set old outputs aside;
/// each is put back if its place is still empty, so that no output goes missing.
/// A rollback that failed left a record; its previous files are put back where the
/// output is still the dead run's file.
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
        match reclaim_one(output_dir, name, &entry.path(), &mut found) {
            Ok(true) => found.removed.push(root),
            Ok(false) => {}
            Err(e) => found.failed.push(e),
        }
    }
    found
}

/// Reclaims the staging `name` if its lock is free and it is ours; `Ok(false)` if it
/// is live or another user's.
fn reclaim_one(
    output_dir: &Path,
    name: &str,
    lock_path: &Path,
    found: &mut Reclaimed,
) -> Result<bool, RemoveError> {
    let root = output_dir.join(name);
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
        // Another user's lock that we may not open: we cannot tell whether it is
        // live, so it is not ours to judge.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            found.in_use += 1;
            return Ok(false);
        }
        Err(e) => return Err(failed(e)),
    };
    let Some(lock) = take_lock(lock_path, lock).map_err(failed)? else {
        found.in_use += 1;
        return Ok(false);
    };
    if let Some(owner) = other_owner(&lock) {
        found.not_ours.push((root, owner));
        return Ok(false);
    }
    if fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
        if root.join(RECOVER).exists() {
            recover(output_dir, name, found).map_err(|error| RemoveError {
                root: root.clone(),
                entry: RECOVER.to_owned(),
                error,
            })?;
        }
        restore_set_aside(output_dir, &root.join(ASIDE), &mut found.restored);
    }
    remove_titled(&root, None, lock_path)?;
    drop(lock);
    Ok(true)
}

/// Puts back the previous files that a dead run's failed rollback left, where the
/// output is still that run's file.
fn recover(output_dir: &Path, name: &str, found: &mut Reclaimed) -> io::Result<()> {
    let target = DirHandle::open(output_dir, None)?;
    let root = target.open_child(name, None)?;
    let record: Vec<Unrestored> =
        serde_json::from_slice(&fs::read(root.path().join(RECOVER))?).map_err(io::Error::other)?;
    let out = root.open_child(OUT, None)?;
    let dirs = Dirs::new(target, root, out);
    for output in record {
        let placed = FileId::from_raw(output.placed.0, output.placed.1);
        let path = output_dir.join(&output.name);
        match place::undo(&dirs, &output.name, placed, output.previous)? {
            Undone::Restored => found.restored.push(path),
            Undone::Superseded => found.superseded.push(path),
        }
    }
    Ok(())
}

/// The owner of `lock`, in words, if it is not the user running this.
#[cfg(unix)]
fn other_owner(lock: &File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = lock.metadata().ok()?.uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    (uid != me).then(|| user_name(uid).map_or(format!("uid {uid}"), |n| format!("{n} (uid {uid})")))
}

#[cfg(windows)]
fn other_owner(_: &File) -> Option<String> {
    None
}

/// The login name of `uid`, if the system knows it.
#[cfg(unix)]
fn user_name(uid: u32) -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r writes its strings
    // into `buffer`, which outlives every use of them below.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the length given.
    let status = unsafe {
        libc::getpwuid_r(
            uid,
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if status != 0 || result.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r succeeded, so pw_name is a NUL-terminated string in `buffer`.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    Some(dtlto_mock::message::quoted(&name.to_string_lossy()))
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

    /// A fresh directory of its own, which the test removes when it passes.
    fn scratch(name: &str) -> PathBuf {
        tempfile::Builder::new()
            .prefix(&format!("dtlto-staging-{name}-"))
            .tempdir()
            .unwrap()
            .keep()
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
        let mut locks = RunLocks::default();
        let id = file_id::of_path(&dir).unwrap();
        let a = StagingDir::create(&dir, id, &mut locks).unwrap();
        let b = StagingDir::create(&dir, id, &mut locks).unwrap();
        // One lock for both: the second title is a link to the first.
        assert_eq!(locks.held.len(), 1);
        assert_ne!(a.root(), b.root());
        fs::write(a.out().join("x.o"), "partial").unwrap();
        let found = reclaim(&dir);
        assert_eq!(found.in_use, 2);
        assert!(found.removed.is_empty());
        assert_eq!(fs::read(a.out().join("x.o")).unwrap(), b"partial");
        a.remove().unwrap();
        drop(b);
        drop(locks);
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
