//! Removing a directory tree that a guest may have built to hurt us: iteratively,
//! never recursively, with a bounded number of open files whatever its depth, and
//! without ever following a symbolic link out of it. A failure names the entry and
//! the error; nothing is dropped silently.

use crate::sandbox::file_id::FileId;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What could not be removed, and why.
#[derive(Debug)]
pub struct RemoveError {
    /// The tree being removed.
    pub root: PathBuf,
    /// Where in it, e.g. `out/d/d/x` (elided in the middle for deep trees).
    pub entry: String,
    pub error: io::Error,
}

impl fmt::Display for RemoveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let root = dtlto_mock::message::quoted(&self.root.to_string_lossy());
        let error = dtlto_mock::message::io_error(&self.error);
        if self.entry.is_empty() {
            write!(f, "cannot remove {root}: {error}")
        } else {
            let entry = dtlto_mock::message::quoted(&self.entry);
            write!(f, "cannot remove {entry} in {root}: {error}")
        }
    }
}

impl std::error::Error for RemoveError {}

/// Removes `root` and everything under it. `root` itself must not be a symlink, and
/// must be the directory `expected` if that is given: a directory swapped in at its
/// name is not ours to empty. A missing `root` is already removed.
///
/// `budget` is how many directory descriptors it may hold besides the few it always
/// needs (see the Unix walk): more makes very deep trees cheaper to remove.
pub fn remove_tree(
    root: &Path,
    expected: Option<FileId>,
    budget: usize,
) -> Result<(), RemoveError> {
    let fail = |entry: String, error: io::Error| RemoveError {
        root: root.to_path_buf(),
        entry,
        error,
    };
    match platform::remove_contents(root, expected, budget) {
        Ok(()) => {}
        Err((_, e)) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err((entry, e)) => return Err(fail(entry, e)),
    }
    match std::fs::remove_dir(root) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fail(String::new(), e)),
        _ => Ok(()),
    }
}

/// The names from `root` down to the entry being worked on, for messages: the first
/// and last few of a deep path, with a count of those elided.
#[derive(Default)]
struct Trail {
    head: Vec<String>,
    tail: std::collections::VecDeque<String>,
    depth: usize,
}

impl Trail {
    const KEEP: usize = 4;

    fn push(&mut self, name: String) {
        self.depth += 1;
        if self.head.len() < Self::KEEP {
            self.head.push(name);
        } else {
            if self.tail.len() == Self::KEEP {
                self.tail.pop_front();
            }
            self.tail.push_back(name);
        }
    }

    fn pop(&mut self) {
        self.depth -= 1;
        if self.tail.pop_back().is_none() {
            self.head.pop();
        }
    }

    /// `a/b/c/d/…(1,092 more)…/w/x/y/z/name`
    fn show(&self, name: &str) -> String {
        let mut parts: Vec<String> = self.head.clone();
        let elided = self.depth - self.head.len() - self.tail.len();
        if elided > 0 {
            parts.push(format!("…({elided} more)…"));
        }
        parts.extend(self.tail.iter().cloned());
        parts.push(name.to_owned());
        parts.join("/")
    }
}

#[cfg(unix)]
mod platform {
    use super::{FileId, Trail};
    use rustix::fs::{fstat, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
    use rustix::io::Errno;
    use std::ffi::{CStr, CString};
    use std::io;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    /// Of the directories on the way down, how many keep their descriptor nearest
    /// the current one, for the walk back up; the rest of the budget is spent on
    /// checkpoints spread over the way, from which it is opened anew.
    const DENSE: usize = 4;

    /// One directory of the way down from the root: its name in its parent, what it
    /// was when it was opened, and its descriptor while it is kept.
    struct Level {
        name: CString,
        id: FileId,
        fd: Option<OwnedFd>,
    }

    fn id_of(fd: &impl AsFd) -> rustix::io::Result<FileId> {
        let stat = fstat(fd)?;
        Ok(FileId::from_raw(stat.st_dev as u64, stat.st_ino as u64))
    }

    /// `error` at the entry `shown` (built only for a failure): the errors in
    /// `replaced` mean the entry is no longer the one the removal saw.
    fn at(shown: String, error: Errno, replaced: &[Errno]) -> (String, io::Error) {
        let error = if replaced.contains(&error) {
            moved(&shown)
        } else {
            error.into()
        };
        (shown, error)
    }

    fn open_dir(at: &impl AsFd, name: &CStr) -> rustix::io::Result<OwnedFd> {
        openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// The error for a directory that is no longer the one the removal opened: it
    /// stops there, and leaves the rest as it is.
    fn moved(shown: &str) -> io::Error {
        io::Error::other(format!(
            "{} was moved or replaced while it was being removed; what is left was left as it is",
            dtlto_mock::message::quoted(shown)
        ))
    }

    /// Empties `root`, walking down and back up through descriptors it holds, never
    /// through `..`: each directory is opened by name from its parent without
    /// following a link, remembered by identity, and checked again whenever it is
    /// opened anew. A directory that changed identity, or lies on another file
    /// system, stops the removal there. No path longer than one name is built, so
    /// neither the open-file limit nor PATH_MAX bounds the depth it can remove.
    pub fn remove_contents(
        root: &Path,
        expected: Option<FileId>,
        budget: usize,
    ) -> Result<(), (String, io::Error)> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => {
                (String::new(), super::super::dir_handle::replaced(root))
            }
            e => (String::new(), e.into()),
        })?;
        let root_id = id_of(&root_fd).map_err(|e| (String::new(), e.into()))?;
        if expected.is_some_and(|expected| expected != root_id) {
            return Err((String::new(), super::super::dir_handle::replaced(root)));
        }
        let device = root_id.raw().0;
        let mut way = Way {
            levels: Vec::new(),
            held: std::collections::VecDeque::new(),
            budget: budget.max(DENSE + 2),
        };
        let mut trail = Trail::default();
        loop {
            let current: &OwnedFd = way
                .levels
                .last()
                .and_then(|level| level.fd.as_ref())
                .unwrap_or(&root_fd);
            match empty_one(current, &trail)? {
                Step::Done => {}
                Step::Descend(name) => {
                    let shown = || trail.show(&name.to_string_lossy());
                    let child = open_dir(current, &name)
                        .or_else(|e| match e {
                            // A directory of the user's that a job made unreadable
                            // (mode 000): its owner's rights back, once.
                            Errno::ACCESS if give_back_rights(current, &name) => {
                                open_dir(current, &name)
                            }
                            e => Err(e),
                        })
                        // Replaced by a link or a file since it was listed.
                        .map_err(|e| at(shown(), e, &[Errno::LOOP, Errno::NOTDIR]))?;
                    let id = id_of(&child).map_err(|e| at(shown(), e, &[]))?;
                    if id.raw().0 != device {
                        let error = io::Error::other(format!(
                            "{} is on another file system (a mount point); it was left as it is",
                            dtlto_mock::message::quoted(&shown())
                        ));
                        return Err((shown(), error));
                    }
                    trail.push(name.to_string_lossy().into_owned());
                    way.levels.push(Level { name, id, fd: None });
                    way.keep(way.levels.len() - 1, child);
                    #[cfg(test)]
                    super::tests::AFTER_DESCENT.with(|hook| {
                        if let Some(hook) = hook.borrow_mut().as_mut() {
                            hook(way.levels.len());
                        }
                    });
                    continue;
                }
            }
            // This directory is empty: back up to its parent, whose next listing
            // removes it.
            if way.levels.pop().is_none() {
                return Ok(());
            }
            if way.held.back() == Some(&way.levels.len()) {
                way.held.pop_back();
            }
            trail.pop();
            way.reopen_last(&root_fd, &trail)?;
        }
    }

    /// The way down from the root to the current directory, and which of its
    /// directories keep their descriptor (`held`, by index, shallowest first).
    struct Way {
        levels: Vec<Level>,
        held: std::collections::VecDeque<usize>,
        budget: usize,
    }

    impl Way {
        /// Keeps `fd` as level `index`'s descriptor, letting go of the shallowest
        /// one kept if that goes over the budget.
        fn keep(&mut self, index: usize, fd: OwnedFd) {
            self.levels[index].fd = Some(fd);
            self.held.push_back(index);
            while self.held.len() > self.budget {
                if let Some(shallowest) = self.held.pop_front() {
                    self.levels[shallowest].fd = None;
                }
            }
        }

        /// Makes the last level's descriptor available again: opens the way down
        /// from the nearest level still held (or the root), each directory checked
        /// to be the one first opened, and keeps the last few levels of it and
        /// checkpoints spread evenly over the rest, so that going on up costs a
        /// short walk from a near checkpoint, not one from the root: the whole
        /// removal stays close to linear in the tree's depth.
        fn reopen_last(
            &mut self,
            root: &OwnedFd,
            trail: &Trail,
        ) -> Result<(), (String, io::Error)> {
            let end = self.levels.len();
            if self.levels.last().is_none_or(|l| l.fd.is_some()) {
                return Ok(());
            }
            let start = self.held.back().map_or(0, |&i| i + 1);
            let span = end - start;
            let checkpoints = self.budget.saturating_sub(DENSE + self.held.len()).max(1);
            let stride = (span / (checkpoints + 1)).max(1);
            let mut carried: Option<OwnedFd> = None;
            for i in start..end {
                let fd = {
                    let parent: &OwnedFd = match &carried {
                        Some(fd) => fd,
                        None => match i.checked_sub(1) {
                            Some(above) => self.levels[above].fd.as_ref().unwrap_or(root),
                            None => root,
                        },
                    };
                    let replaced = [Errno::LOOP, Errno::NOTDIR, Errno::NOENT];
                    open_dir(parent, &self.levels[i].name)
                        .map_err(|e| at(trail.show(""), e, &replaced))?
                };
                let id = id_of(&fd).map_err(|e| at(trail.show(""), e, &[]))?;
                if id != self.levels[i].id {
                    let shown = trail.show("");
                    return Err((shown.clone(), moved(&shown)));
                }
                if i + DENSE >= end || (i - start + 1).is_multiple_of(stride) {
                    carried = None;
                    self.keep(i, fd);
                } else {
                    carried = Some(fd);
                }
            }
            Ok(())
        }
    }

    enum Step {
        /// The directory is empty.
        Done,
        /// This subdirectory has entries: empty it first.
        Descend(CString),
    }

    /// Removes what it can of one directory's entries; stops at the first
    /// subdirectory that is not empty.
    fn empty_one(current: &OwnedFd, trail: &Trail) -> Result<Step, (String, io::Error)> {
        let entries = Dir::read_from(current).map_err(|e| (trail.show(""), e.into()))?;
        for entry in entries {
            let entry = entry.map_err(|e| (trail.show(""), io::Error::from(e)))?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let shown = || trail.show(&name.to_string_lossy());
            let mut file_type = entry.file_type();
            if file_type == FileType::Unknown {
                file_type = statat(current, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map(|s| FileType::from_raw_mode(s.st_mode))
                    .map_err(|e| (shown(), e.into()))?;
            }
            let flags = if file_type == FileType::Directory {
                AtFlags::REMOVEDIR
            } else {
                AtFlags::empty()
            };
            match with_write_access(current, || unlinkat(current, name, flags)) {
                Ok(()) => {}
                Err(Errno::NOTEMPTY | Errno::EXIST) if file_type == FileType::Directory => {
                    return Ok(Step::Descend(name.to_owned()));
                }
                Err(e) => return Err((shown(), e.into())),
            }
        }
        Ok(Step::Done)
    }

    /// Gives the directory `name` in `parent` its owner's rights (0700), if it is a
    /// directory of this user's, found without following a link; whether it did.
    /// The mode is changed through /proc/self/fd, the one way to change a file
    /// held only by an O_PATH descriptor, so that no link at that name is followed.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn give_back_rights(parent: &OwnedFd, name: &CStr) -> bool {
        let Ok(path_fd) = openat(
            parent,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return false;
        };
        let ours = fstat(&path_fd).is_ok_and(|stat| {
            stat.st_uid == rustix::process::geteuid().as_raw()
                && FileType::from_raw_mode(stat.st_mode) == FileType::Directory
        });
        if !ours {
            return false;
        }
        use std::os::fd::AsRawFd;
        let proc_path = format!("/proc/self/fd/{}", path_fd.as_raw_fd());
        rustix::fs::chmod(proc_path.as_str(), Mode::RWXU).is_ok()
    }

    /// Elsewhere a directory made unreadable stops the removal, which says so.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn give_back_rights(_: &OwnedFd, _: &CStr) -> bool {
        false
    }

    /// Runs `remove`; if this user's own directory refused it for want of write
    /// access (a job may make its directories read-only), gives the directory back
    /// its owner's rights once and tries again.
    fn with_write_access(
        dir: &OwnedFd,
        remove: impl Fn() -> rustix::io::Result<()>,
    ) -> rustix::io::Result<()> {
        match remove() {
            Err(Errno::ACCESS | Errno::PERM) => {
                let stat = fstat(dir)?;
                if stat.st_uid != rustix::process::geteuid().as_raw() {
                    return remove();
                }
                rustix::fs::fchmod(dir, Mode::RWXU)?;
                remove()
            }
            other => other,
        }
    }
}

#[cfg(windows)]
mod platform {
    use super::{FileId, Trail};
    use crate::sandbox::file_id;
    use std::fs;
    use std::io;
    use std::path::{Path, PathBuf};

    /// Empties `root` depth first with an explicit stack of paths (std makes long
    /// paths verbatim, so depth is not bounded by MAX_PATH); one listing is open at
    /// a time. Reparse points (links, junctions) are removed, never entered. Windows
    /// has no calls relative to an open directory in std, so each directory's
    /// identity is taken when it is entered and checked again before every listing
    /// and removal in it: one that changed stops the removal there.
    pub fn remove_contents(
        root: &Path,
        expected: Option<FileId>,
        _budget: usize,
    ) -> Result<(), (String, io::Error)> {
        let root_id = file_id::of_path(root).map_err(|e| (String::new(), e))?;
        if expected.is_some_and(|e| e != root_id)
            || !fs::symlink_metadata(root).is_ok_and(|m| m.is_dir() && !m.is_symlink())
        {
            return Err((String::new(), super::super::dir_handle::replaced(root)));
        }
        let mut stack: Vec<(PathBuf, FileId)> = vec![(root.to_path_buf(), root_id)];
        let mut trail = Trail::default();
        while let Some((dir, id)) = stack.last().cloned() {
            let still = || {
                if file_id::of_path(&dir).is_ok_and(|now| now == id) {
                    Ok(())
                } else {
                    Err((trail.show(""), super::super::dir_handle::replaced(&dir)))
                }
            };
            still()?;
            let shown =
                |path: &Path| trail.show(&path.file_name().unwrap_or_default().to_string_lossy());
            let mut subdir = None;
            let listing: Vec<fs::DirEntry> = fs::read_dir(&dir)
                .and_then(|entries| entries.collect())
                .map_err(|e| (trail.show(""), e))?;
            for entry in listing {
                still()?;
                let path = entry.path();
                let file_type = entry.file_type().map_err(|e| (shown(&path), e))?;
                let removed = if file_type.is_dir() {
                    match fs::remove_dir(&path) {
                        Err(_) if fs::read_dir(&path).is_ok_and(|mut d| d.next().is_some()) => {
                            subdir = Some(path);
                            break;
                        }
                        other => other,
                    }
                } else if file_type.is_symlink() {
                    fs::remove_file(&path).or_else(|_| fs::remove_dir(&path))
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(|e| (shown(&path), e))?;
            }
            match subdir {
                Some(path) => {
                    let child = file_id::of_path(&path).map_err(|e| (shown(&path), e))?;
                    if child.raw().0 != root_id.raw().0 {
                        return Err((shown(&path), super::super::dir_handle::replaced(&path)));
                    }
                    trail.push(
                        path.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned(),
                    );
                    stack.push((path, child));
                }
                None => {
                    stack.pop();
                    if !stack.is_empty() {
                        still()?;
                        fs::remove_dir(&dir).map_err(|e| (trail.show(""), e))?;
                        trail.pop();
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::fs;

    /// What a test runs as the removal enters a directory, given the new depth.
    #[cfg(unix)]
    type Hook = Box<dyn FnMut(usize)>;

    #[cfg(unix)]
    thread_local! {
        /// Called with the new depth each time the removal enters a directory: a
        /// test's stand-in for a process that still writes the tree.
        pub static AFTER_DESCENT: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    /// `root/d1/d2/.../d<depth>`, a file `f` in each.
    #[cfg(unix)]
    fn chain(root: &Path, depth: usize) -> PathBuf {
        let mut dir = root.to_path_buf();
        for level in 1..=depth {
            dir = dir.join(format!("d{level}"));
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("f"), "f").unwrap();
        }
        dir
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_moved_up_during_the_removal_never_takes_it_outside() {
        // top/victim/keep beside the tree; a directory deep in the tree is moved
        // right under the root while the removal is inside it, as a process still
        // writing the staging could: walking back up by `..` then leaves the tree.
        for (depth, moved_at) in [(20, 19), (20, 5), (3, 2)] {
            let top = scratch("moved");
            fs::create_dir(top.join("victim")).unwrap();
            fs::write(top.join("victim/keep"), "keep").unwrap();
            fs::write(top.join("keep"), "keep").unwrap();
            let root = top.join("staging");
            fs::create_dir(&root).unwrap();
            chain(&root, depth);
            let from: PathBuf = (1..=moved_at).fold(root.clone(), |p, l| p.join(format!("d{l}")));
            let to = root.join("moved");
            AFTER_DESCENT.with(|hook| {
                *hook.borrow_mut() = Some(Box::new(move |level| {
                    if level == depth {
                        fs::rename(&from, &to).unwrap();
                    }
                }))
            });
            let removed = remove_tree(&root, None, 6);
            AFTER_DESCENT.with(|hook| *hook.borrow_mut() = None);
            assert_eq!(
                fs::read(top.join("victim/keep")).unwrap(),
                b"keep",
                "{removed:?}"
            );
            assert_eq!(fs::read(top.join("keep")).unwrap(), b"keep", "{removed:?}");
            if let Err(e) = &removed {
                assert!(
                    e.to_string()
                        .contains("was moved or replaced while it was being removed"),
                    "{e}"
                );
            }
            fs::remove_dir_all(top).unwrap();
        }
    }

    /// A fresh directory of its own, which the test removes when it passes.
    fn scratch(name: &str) -> PathBuf {
        tempfile::Builder::new()
            .prefix(&format!("dtlto-remove-{name}-"))
            .tempdir()
            .unwrap()
            .keep()
    }

    #[test]
    fn removes_files_directories_and_links_without_following_them() {
        let root = scratch("mixed");
        let outside = scratch("mixed-outside");
        fs::write(outside.join("keep"), "keep").unwrap();
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::write(root.join("a/b/c/x"), "x").unwrap();
        fs::write(root.join("a/y"), "y").unwrap();
        fs::create_dir(root.join("empty")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, root.join("a/b/link")).unwrap();
        remove_tree(&root, None, 6).unwrap();
        assert!(!root.exists());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
        fs::remove_dir_all(outside).unwrap();
        // Already gone: nothing to do.
        remove_tree(&root, None, 6).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_chain_deeper_than_path_max_is_removed() {
        use rustix::fs::{mkdirat, openat, Mode, OFlags};
        let root = scratch("deep");
        // 40 levels of 200-byte names: 8,000 bytes of path, twice Linux's PATH_MAX.
        let name = "d".repeat(200);
        let flags = OFlags::DIRECTORY | OFlags::RDONLY;
        let mut dir = rustix::fs::open(&root, flags, Mode::empty()).unwrap();
        for _ in 0..40 {
            mkdirat(&dir, name.as_str(), Mode::RWXU).unwrap();
            dir = openat(&dir, name.as_str(), flags, Mode::empty()).unwrap();
        }
        drop(dir);
        remove_tree(&root, None, 6).unwrap();
        assert!(!root.exists());
    }

    #[test]
    fn failures_name_the_entry() {
        let trail = {
            let mut t = Trail::default();
            for i in 0..12 {
                t.push(format!("d{i}"));
            }
            t
        };
        assert_eq!(trail.show("x"), "d0/d1/d2/d3/…(4 more)…/d8/d9/d10/d11/x");
    }
}
