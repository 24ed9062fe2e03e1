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
pub fn remove_tree(root: &Path, expected: Option<FileId>) -> Result<(), RemoveError> {
    let fail = |entry: String, error: io::Error| RemoveError {
        root: root.to_path_buf(),
        entry,
        error,
    };
    match platform::remove_contents(root, expected) {
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
    use rustix::fs::{openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
    use std::io;
    use std::os::fd::OwnedFd;
    use std::path::Path;

    fn open_dir(at: &impl std::os::fd::AsFd, name: &std::ffi::CStr) -> rustix::io::Result<OwnedFd> {
        openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    /// Empties `root`, walking down and back up through file descriptors: at most three
    /// are open at once, and no path longer than one name is ever built, so neither the
    /// open-file limit nor PATH_MAX bounds the depth it can remove.
    pub fn remove_contents(
        root: &Path,
        expected: Option<FileId>,
    ) -> Result<(), (String, io::Error)> {
        let root_fd = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => {
                (String::new(), super::super::dir_handle::replaced(root))
            }
            e => (String::new(), e.into()),
        })?;
        if let Some(expected) = expected {
            let stat = rustix::fs::fstat(&root_fd).map_err(|e| (String::new(), e.into()))?;
            if FileId::from_raw(stat.st_dev as u64, stat.st_ino as u64) != expected {
                return Err((String::new(), super::super::dir_handle::replaced(root)));
            }
        }
        let mut current = root_fd;
        let mut trail = Trail::default();
        loop {
            let mut descended = false;
            let entries = Dir::read_from(&current).map_err(|e| (trail.show(""), e.into()))?;
            for entry in entries {
                let entry = entry.map_err(|e| (trail.show(""), io::Error::from(e)))?;
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                let shown = || trail.show(&name.to_string_lossy());
                let mut file_type = entry.file_type();
                if file_type == FileType::Unknown {
                    file_type = statat(&current, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| FileType::from_raw_mode(s.st_mode))
                        .map_err(|e| (shown(), e.into()))?;
                }
                if file_type != FileType::Directory {
                    unlinkat(&current, name, AtFlags::empty()).map_err(|e| (shown(), e.into()))?;
                    continue;
                }
                match unlinkat(&current, name, AtFlags::REMOVEDIR) {
                    Ok(()) => {}
                    Err(rustix::io::Errno::NOTEMPTY | rustix::io::Errno::EXIST) => {
                        let child = open_dir(&current, name).map_err(|e| (shown(), e.into()))?;
                        trail.push(name.to_string_lossy().into_owned());
                        current = child;
                        descended = true;
                        break;
                    }
                    Err(e) => return Err((shown(), e.into())),
                }
            }
            if descended {
                continue;
            }
            if trail.depth == 0 {
                return Ok(());
            }
            // Back up; the parent's next listing finds this directory empty.
            current = open_dir(&current, c"..").map_err(|e| (trail.show(""), e.into()))?;
            trail.pop();
        }
    }
}

#[cfg(windows)]
mod platform {
    use super::{FileId, Trail};
    use std::fs;
    use std::io;
    use std::path::{Path, PathBuf};

    /// Empties `root` depth first with an explicit stack of paths (std makes long
    /// paths verbatim, so depth is not bounded by MAX_PATH); one listing is open at
    /// a time. Reparse points (links, junctions) are removed, never entered.
    pub fn remove_contents(
        root: &Path,
        expected: Option<FileId>,
    ) -> Result<(), (String, io::Error)> {
        if expected.is_some_and(|e| crate::sandbox::file_id::of_path(root).is_ok_and(|id| id != e))
        {
            return Err((String::new(), super::super::dir_handle::replaced(root)));
        }
        let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
        let mut trail = Trail::default();
        while let Some(dir) = stack.last().cloned() {
            let shown =
                |path: &Path| trail.show(&path.file_name().unwrap_or_default().to_string_lossy());
            let mut subdir = None;
            let listing: Vec<fs::DirEntry> = fs::read_dir(&dir)
                .and_then(|entries| entries.collect())
                .map_err(|e| (trail.show(""), e))?;
            for entry in listing {
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
                    trail.push(
                        path.file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned(),
                    );
                    stack.push(path);
                }
                None => {
                    stack.pop();
                    if !stack.is_empty() {
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
mod tests {
    use super::*;
    use std::fs;

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
        remove_tree(&root, None).unwrap();
        assert!(!root.exists());
        assert_eq!(fs::read(outside.join("keep")).unwrap(), b"keep");
        fs::remove_dir_all(outside).unwrap();
        // Already gone: nothing to do.
        remove_tree(&root, None).unwrap();
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
        remove_tree(&root, None).unwrap();
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
