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
//! - `.dtlto-staging-X/tmp/N/`: local mode's job N's TMPDIR.
//!
//! The staging directory and everything the runner makes in it are private to the
//! user (directories 0700, files 0600, created exclusively, never through a link).
//!
//! The title is created first (exclusively) and removed last, so a staging directory
//! is reclaimed only through its title, only when its lock can be taken, only when
//! the title is still that file, and only by its owner. A directory without its
//! title is never touched: it is not ours. Nor is one that is not private to this
//! user, opened without following a link: its record and set-aside files are left
//! as they are, and a line names it. The guest sees only `out/`.

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
/// Local mode's jobs' TMPDIRs, `tmp/N` for job N.
pub const TMP: &str = "tmp";
const RECOVER: &str = "recover.json";

/// The locks a run holds: one locked file per file system, titled in each output
/// directory on it by a hard link.
#[derive(Debug, Default)]
pub struct RunLocks {
    held: Vec<(u64, PathBuf, File)>,
}

impl RunLocks {
    /// Makes `title` a name of this run's lock on the file system `device`, and
    /// gives the lock's identity: `AlreadyExists` if the name is taken.
    fn title(&mut self, device: u64, title: &Path) -> io::Result<FileId> {
        if let Some((_, held_path, held)) = self.held.iter().find(|(d, _, _)| *d == device) {
            match fs::hard_link(held_path, title) {
                Ok(()) => {
                    // Still our lock at that name, not a file swapped in meanwhile.
                    let id = file_id::of_file(held)?;
                    if file_id::of_path(title).ok() == Some(id) {
                        return Ok(id);
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
        let id = file_id::of_file(&lock)?;
        self.held.push((device, title.to_path_buf(), lock));
        Ok(id)
    }
}

/// Where job `job`'s TMPDIR is in the staging whose staged outputs' directory is
/// `out` (`tmp/<job>` beside it), for messages and for `StagingDir::job_tmp`.
pub fn job_tmp_path(out: &Path, job: usize) -> PathBuf {
    out.with_file_name(TMP).join(job.to_string())
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
            let lock_id = match locks.title(dir_id.raw().0, &title) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                other => other?,
            };
            let root = output_dir.join(&name);
            let made = make_private_dirs(output_dir, dir_id, &name, lock_id);
            let (root_handle, out) = match made {
                Ok(made) => made,
                Err(e) => {
                    let _ = fs::remove_file(&title);
                    if e.kind() == io::ErrorKind::AlreadyExists {
                        continue;
                    }
                    return Err(e);
                }
            };
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

    /// Makes job `job`'s TMPDIR, `tmp/<job>`, private like the rest of the staging,
    /// through the staging's checked handle; returns its path.
    pub fn job_tmp(&self, job: usize) -> io::Result<PathBuf> {
        let root = DirHandle::open(&self.root, Some(self.root_id))?;
        match root.create_dir(TMP) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let name = job.to_string();
        root.open_child(TMP, None)?.create_dir(&name)?;
        Ok(job_tmp_path(&self.out(), job))
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
    /// previous files stay where the message says either way. The record is
    /// created exclusively in the staging checked to be this run's, never through
    /// a link.
    pub fn leave_for_recovery(mut self, record: &[Unrestored]) -> io::Result<()> {
        self.done = true;
        let text = serde_json::to_vec(record).map_err(io::Error::other)?;
        DirHandle::open(&self.root, Some(self.root_id))?.create_file(RECOVER, &text)
    }

    /// Removes the directory, then its title, holding at most `budget` directory
    /// descriptors for it (see remove_tree.rs). The lock itself is let go when the
    /// run's `RunLocks` is dropped.
    pub fn remove(mut self, budget: usize) -> Result<(), RemoveError> {
        self.done = true;
        remove_titled(&self.root, Some(self.root_id), &self.title, budget)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = remove_titled(&self.root, Some(self.root_id), &self.title, 6) {
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
    /// The placed file's size and modification time (ns) when the rollback failed:
    /// file numbers are handed out again as soon as a file is removed, so a record
    /// acts only on a file that still matches all three. `None`: unknown, and the
    /// record is not acted on.
    pub fingerprint: Option<(u64, i128)>,
    pub previous: Previous,
}

/// A file in every staging directory naming its lock file's identity: what tells a
/// staging this runner made from a directory of the user's that someone renamed to
/// a staging's name beside a file of the user's renamed to a lock's.
const LOCK_ID: &str = "lock-id";

/// How many directory descriptors reclaiming may hold while it removes a dead run's
/// staging: it runs at start, with files to spare, and a tree built deep to slow
/// every later run down costs little with them.
const RECLAIM_BUDGET: usize = 64;

/// The most a `recover.json` may hold: a record per output of one directory.
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Makes the staging `name` and its `out/` in the output directory `dir_id`, both
/// private to this user, and opens them. `AlreadyExists` if the name is taken: a
/// directory this call did not create is never removed. On a later failure, only
/// what this call created is removed, and only while it is still empty.
fn make_private_dirs(
    output_dir: &Path,
    dir_id: FileId,
    name: &str,
    lock_id: FileId,
) -> io::Result<(DirHandle, DirHandle)> {
    let target = DirHandle::open(output_dir, Some(dir_id))?;
    target.create_dir(name)?;
    let made = target.open_child(name, None).and_then(|root| {
        if !root.is_private()? {
            return Err(super::dir_handle::replaced(&output_dir.join(name)));
        }
        root.create_file(LOCK_ID, lock_id.as_key().as_bytes())?;
        if let Err(e) = root.create_dir(OUT) {
            let _ = root.remove_file(LOCK_ID);
            return Err(e);
        }
        let out = root.open_child(OUT, None).inspect_err(|_| {
            let _ = root.remove_empty_dir(OUT);
            let _ = root.remove_file(LOCK_ID);
        })?;
        Ok((root, out))
    });
    if made.is_err() {
        let _ = target.remove_empty_dir(name);
    }
    made
}

/// Removes a staging directory whose lock we hold, the title last: a removal cut
/// short leaves the title, so the next run can reclaim what is left.
fn remove_titled(
    root: &Path,
    id: Option<FileId>,
    title: &Path,
    budget: usize,
) -> Result<(), RemoveError> {
    remove_tree(root, id, budget)?;
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
    /// Abandoned staging left as it is, and why: not private to this user, or a
    /// recovery record that cannot be trusted or acted on. (path, reason)
    pub left_alone: Vec<(PathBuf, String)>,
}

/// Removes the abandoned staging directories in `output_dir`: those whose lock file
/// can be locked. A commit cut short by a crash may have set old outputs aside;
/// each is put back if its place is still empty, so that no output goes missing.
/// A rollback that failed left a record; its previous files are put back where the
/// output is still the dead run's file.
pub fn reclaim(output_dir: &Path, declared: &dyn Fn(&str) -> bool) -> Reclaimed {
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
        match reclaim_one(output_dir, name, &entry.path(), declared, &mut found) {
            Ok(true) => found.removed.push(root),
            Ok(false) => {}
            Err(e) => found.failed.push(e),
        }
    }
    found
}

/// Reclaims the staging `name` if its lock is free and it is ours; `Ok(false)` if it
/// is live, another user's, or left alone for a reason `found` names.
fn reclaim_one(
    output_dir: &Path,
    name: &str,
    lock_path: &Path,
    declared: &dyn Fn(&str) -> bool,
    found: &mut Reclaimed,
) -> Result<bool, RemoveError> {
    let root_path = output_dir.join(name);
    let failed = |error: io::Error| RemoveError {
        root: lock_path.to_path_buf(),
        entry: String::new(),
        error,
    };
    // Not through a link: a lock file is a regular, empty file we made.
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
        found.not_ours.push((root_path, owner));
        return Ok(false);
    }
    if !lock.metadata().is_ok_and(|m| m.len() == 0) {
        found.left_alone.push((
            root_path,
            "its lock file is not empty, so this runner did not make it".to_owned(),
        ));
        return Ok(false);
    }
    let target = DirHandle::open(output_dir, None).map_err(failed)?;
    let root = match target.open_child(name, None) {
        Ok(root) => root,
        // A title alone: the run died before its staging was made, or after it
        // was removed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            remove_titled(&root_path, None, lock_path, RECLAIM_BUDGET)?;
            return Ok(true);
        }
        Err(e) => {
            found.left_alone.push((
                root_path,
                format!(
                    "it is not a directory this runner made ({})",
                    dtlto_mock::message::io_error(&e)
                ),
            ));
            return Ok(false);
        }
    };
    if !root.is_private().map_err(failed)? {
        found.left_alone.push((
            root_path,
            "it is not private to you (another user's, or open to the group or others)".to_owned(),
        ));
        return Ok(false);
    }
    // The directory must name this very lock: a directory of the user's renamed to
    // a staging's name, beside a file of the user's renamed to its lock's, is not
    // one this runner made.
    let lock_id = file_id::of_file(&lock).map_err(failed)?;
    let marked = root
        .read_small_file(LOCK_ID, 64)
        .is_ok_and(|text| text == lock_id.as_key().as_bytes());
    if !marked {
        found.left_alone.push((
            root_path,
            format!(
                "it does not name its lock in a {LOCK_ID} file, so this runner did not make it"
            ),
        ));
        return Ok(false);
    }
    let root_id = root.id();
    let root = match root.entry(RECOVER) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => root,
        _ => match recover(
            DirHandle::open(target.path(), Some(target.id())).map_err(failed)?,
            root,
            declared,
            found,
        ) {
            Ok(root) => root,
            Err(reason) => {
                found.left_alone.push((root_path, reason));
                return Ok(false);
            }
        },
    };
    restore_set_aside(&target, &root, &mut found.restored);
    drop(root);
    remove_titled(&root_path, Some(root_id), lock_path, RECLAIM_BUDGET)?;
    drop(lock);
    Ok(true)
}

/// Puts back the previous files that a dead run's failed rollback left, where the
/// output is still that run's file. The record is acted on only as a whole: a
/// regular file of bounded size, read from the staging's handle, whose every name
/// is one component and an output this run declares in that directory. `Err`: why
/// it was not acted on (nothing was touched); `Ok`: the staging, given back.
fn recover(
    target: DirHandle,
    root: DirHandle,
    declared: &dyn Fn(&str) -> bool,
    found: &mut Reclaimed,
) -> Result<DirHandle, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("its {RECOVER} cannot be used: {e}");
    let text = root
        .read_small_file(RECOVER, MAX_RECORD_BYTES)
        .map_err(|e| unreadable(&dtlto_mock::message::io_error(&e)))?;
    let record: Vec<Unrestored> = serde_json::from_slice(&text).map_err(|e| unreadable(&e))?;
    for output in &record {
        if !is_one_component(&output.name) {
            return Err(unreadable(&format!(
                "{} is not a file name in the output directory",
                dtlto_mock::message::quoted(&output.name)
            )));
        }
        if !declared(&output.name) {
            return Err(format!(
                "its {RECOVER} names {}, which this run does not write; a run that does puts \
                 its previous file back",
                dtlto_mock::message::quoted(&output.name)
            ));
        }
        if output.fingerprint.is_none() {
            return Err(unreadable(&format!(
                "it does not say what {} was when it was left",
                dtlto_mock::message::quoted(&output.name)
            )));
        }
    }
    let out = root
        .open_child(OUT, None)
        .map_err(|e| unreadable(&dtlto_mock::message::io_error(&e)))?;
    let dirs = Dirs::new(target, root, out);
    for output in record {
        let placed = FileId::from_raw(output.placed.0, output.placed.1);
        let path = dirs.target.path().join(&output.name);
        let still_placed = dirs.target.entry(&output.name).is_ok_and(|now| {
            now.id == placed && Some((now.size, now.modified)) == output.fingerprint
        });
        if !still_placed {
            found.superseded.push(path);
            continue;
        }
        match place::undo(&dirs, &output.name, placed, output.previous) {
            Ok(Undone::Restored) => found.restored.push(path),
            Ok(Undone::Superseded) => found.superseded.push(path),
            Err(e) => {
                return Err(format!(
                    "cannot put back the previous file of {}: {}",
                    dtlto_mock::message::quoted(&path.to_string_lossy()),
                    dtlto_mock::message::io_error(&e)
                ))
            }
        }
    }
    Ok(dirs.root)
}

/// Whether `name` names an entry of a directory itself: not empty, not `.` or
/// `..`, without a separator.
fn is_one_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !(cfg!(windows) && name.contains(':'))
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

/// Puts each regular file in the staging's `aside/` back at its name in the output
/// directory if that name is free. A hard link cannot replace an existing file, so
/// a newer output is never lost; every call goes through the checked handles, and
/// nothing is followed through a link.
fn restore_set_aside(target: &DirHandle, root: &DirHandle, restored: &mut Vec<PathBuf>) {
    let Ok(aside) = root.open_child(ASIDE, None) else {
        return;
    };
    let Ok(names) = aside.names() else {
        return;
    };
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if !aside
            .entry(name)
            .is_ok_and(|e| e.kind == super::dir_handle::Kind::File)
        {
            continue;
        }
        if aside.link(name, target, name).is_ok() {
            restored.push(target.path().join(name));
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

    /// A directory only its owner may use, as the runner makes its staging.
    fn private_dir(path: &Path) {
        fs::create_dir(path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o700)).unwrap();
        }
    }

    /// An abandoned staging `name` in `dir`: its empty title, and the directory
    /// (private), with `out/` and `aside/`.
    #[cfg(unix)]
    fn abandoned(dir: &Path, name: &str) -> PathBuf {
        let root = dir.join(name);
        private_dir(&root);
        fs::create_dir(root.join(OUT)).unwrap();
        fs::create_dir(root.join(ASIDE)).unwrap();
        title(dir, name);
        root
    }

    /// The empty lock file of staging `name` in `dir`, and the staging's mark of it,
    /// as a run makes them.
    fn title(dir: &Path, name: &str) {
        let lock = dir.join(format!("{name}{LOCK_SUFFIX}"));
        fs::write(&lock, "").unwrap();
        let id = file_id::of_path(&lock).unwrap().as_key();
        fs::write(dir.join(name).join(LOCK_ID), id).unwrap();
    }

    #[cfg(unix)]
    /// A record as a failed rollback leaves it, for the output `name` now at
    /// `dir/name`, whose previous file is in `aside/`.
    fn record_for(dir: &Path, name: &str) -> Unrestored {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(dir.join(name)).unwrap();
        Unrestored {
            name: name.to_owned(),
            placed: (meta.dev(), meta.ino()),
            fingerprint: Some((
                meta.size(),
                i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            )),
            previous: Previous::Aside,
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_record_is_acted_on_only_for_declared_single_names_in_a_private_staging() {
        let top = scratch("records");
        let dir = top.join("build");
        let outside = top.join("outside");
        fs::create_dir(&dir).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("x"), "the user's").unwrap();
        fs::write(dir.join("a.o"), "dead run's a").unwrap();

        // A record that climbs out of the output directory.
        let root = abandoned(&dir, &format!("{PREFIX}00000000000000a1"));
        let mut climbing = record_for(&dir, "a.o");
        climbing.name = "../outside/x".to_owned();
        fs::write(root.join(ASIDE).join("a.o"), "previous a").unwrap();
        fs::write(root.join(RECOVER), serde_json::to_vec(&[climbing]).unwrap()).unwrap();
        let found = reclaim(&dir, &|_| true);
        assert_eq!(found.left_alone.len(), 1, "{found:?}");
        assert!(found.left_alone[0]
            .1
            .contains("is not a file name in the output directory"));
        assert!(
            found.removed.is_empty() && found.restored.is_empty(),
            "{found:?}"
        );
        fs::remove_dir_all(&root).unwrap();
        fs::remove_file(dir.join(format!("{PREFIX}00000000000000a1{LOCK_SUFFIX}"))).unwrap();

        // A record naming an output this run does not declare.
        let root = abandoned(&dir, &format!("{PREFIX}00000000000000a2"));
        fs::write(root.join(ASIDE).join("a.o"), "previous a").unwrap();
        let record = serde_json::to_vec(&[record_for(&dir, "a.o")]).unwrap();
        fs::write(root.join(RECOVER), &record).unwrap();
        let found = reclaim(&dir, &|name| name == "b.o");
        assert!(
            found.left_alone[0]
                .1
                .contains("which this run does not write"),
            "{found:?}"
        );
        assert_eq!(fs::read(dir.join("a.o")).unwrap(), b"dead run's a");

        // A FIFO for a record: left alone at once, never read.
        fs::remove_file(root.join(RECOVER)).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join(RECOVER),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            0,
        )
        .unwrap();
        let found = reclaim(&dir, &|_| true);
        assert!(
            found.left_alone[0].1.contains("not a regular file"),
            "{found:?}"
        );
        fs::remove_file(root.join(RECOVER)).unwrap();

        // A link for a record: not followed.
        std::os::unix::fs::symlink("/dev/zero", root.join(RECOVER)).unwrap();
        let found = reclaim(&dir, &|_| true);
        assert_eq!(found.left_alone.len(), 1, "{found:?}");
        fs::remove_file(root.join(RECOVER)).unwrap();

        // The output was removed and written anew by the user, and may have got the
        // dead run's file number: by its size and time it is not the dead run's.
        fs::write(root.join(RECOVER), &record).unwrap();
        fs::remove_file(dir.join("a.o")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.join("a.o"), "the user's new a").unwrap();
        let found = reclaim(&dir, &|_| true);
        assert!(found.left_alone.is_empty(), "{found:?}");
        assert_eq!(found.superseded, [dir.join("a.o")]);
        assert_eq!(fs::read(dir.join("a.o")).unwrap(), b"the user's new a");
        assert_eq!(fs::read(outside.join("x")).unwrap(), b"the user's");
        fs::remove_dir_all(top).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_staging_open_to_the_group_is_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("group");
        let root = abandoned(&dir, &format!("{PREFIX}00000000000000c1"));
        fs::write(root.join(ASIDE).join("a.o"), "planted").unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o770)).unwrap();
        let found = reclaim(&dir, &|_| true);
        assert!(
            found.left_alone[0].1.contains("not private to you"),
            "{found:?}"
        );
        assert!(found.restored.is_empty() && found.removed.is_empty());
        assert!(!dir.join("a.o").exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_record_is_never_written_through_a_link_planted_at_its_name() {
        let dir = scratch("planted");
        let elsewhere = scratch("planted-elsewhere");
        fs::write(elsewhere.join("victim"), "the user's").unwrap();
        let mut locks = RunLocks::default();
        let id = file_id::of_path(&dir).unwrap();
        let staging = StagingDir::create(&dir, id, &mut locks).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("victim"), staging.root().join(RECOVER)).unwrap();
        let root = staging.root().to_path_buf();
        let left = staging.leave_for_recovery(&[]);
        assert_eq!(
            left.err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists)
        );
        assert_eq!(fs::read(elsewhere.join("victim")).unwrap(), b"the user's");
        fs::remove_dir_all(root).unwrap();
        drop(locks);
        fs::remove_dir_all(dir).unwrap();
        fs::remove_dir_all(elsewhere).unwrap();
    }

    #[test]
    fn creating_a_staging_never_removes_a_directory_it_did_not_create() {
        let dir = scratch("taken");
        let id = file_id::of_path(&dir).unwrap();
        let name = format!("{PREFIX}00000000000000d1");
        fs::create_dir(dir.join(&name)).unwrap();
        fs::write(dir.join(&name).join("someone's"), "keep").unwrap();
        let made = make_private_dirs(&dir, id, &name, id);
        assert_eq!(
            made.err().map(|e| e.kind()),
            Some(io::ErrorKind::AlreadyExists)
        );
        assert_eq!(
            fs::read(dir.join(&name).join("someone's")).unwrap(),
            b"keep"
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_staging_is_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("umask");
        let id = file_id::of_path(&dir).unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::WOTH);
        let made = make_private_dirs(&dir, id, &format!("{PREFIX}00000000000000e1"), id);
        rustix::process::umask(old);
        let (root, out) = made.unwrap();
        for path in [root.path(), out.path()] {
            let mode = fs::symlink_metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", path.display());
        }
        fs::remove_dir_all(dir).unwrap();
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
        let found = reclaim(&dir, &|_| true);
        assert_eq!(found.in_use, 2);
        assert!(found.removed.is_empty());
        assert_eq!(fs::read(a.out().join("x.o")).unwrap(), b"partial");
        a.remove(6).unwrap();
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
        private_dir(&root);
        fs::create_dir_all(root.join(OUT)).unwrap();
        fs::create_dir_all(root.join(ASIDE)).unwrap();
        title(&dir, &name);
        fs::write(root.join(OUT).join("b.o"), "partial").unwrap();
        fs::write(root.join(ASIDE).join("a.o"), "old a").unwrap();
        fs::write(root.join(ASIDE).join("c.o"), "old c").unwrap();
        fs::write(dir.join("c.o"), "new c").unwrap();
        // Not ours: names of the prefix that are not a lock of 16 hex digits, and a
        // staging-like directory without its lock file.
        fs::create_dir_all(dir.join(format!("{PREFIX}notes")).join("out")).unwrap();
        fs::write(dir.join(format!("{PREFIX}notes.lock")), "x").unwrap();
        fs::create_dir_all(dir.join(format!("{PREFIX}fedcba9876543210")).join("out")).unwrap();
        let found = reclaim(&dir, &|_| true);
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
        private_dir(&dir.join(&name));
        std::os::unix::fs::symlink(&elsewhere, dir.join(&name).join(ASIDE)).unwrap();
        title(&dir, &name);
        // A lock that is a link is not ours either.
        let other = format!("{PREFIX}00000000000000bb");
        std::os::unix::fs::symlink(
            elsewhere.join("a.o"),
            dir.join(format!("{other}{LOCK_SUFFIX}")),
        )
        .unwrap();
        let found = reclaim(&dir, &|_| true);
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
