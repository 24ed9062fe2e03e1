//! A directory the transaction acts in, opened once and checked to be the one it
//! planned, and the few calls the commit makes through it. On Unix every call is
//! relative to the open directory (`*at`), so a directory renamed or swapped for a
//! link after the check cannot redirect it; Windows has no such calls in std, so
//! there each call names the path, and identities are checked around it.

use crate::sandbox::file_id::FileId;
use std::io;
use std::path::{Path, PathBuf};

/// The names of a directory's entries, as the OS has them.
pub type Names = Vec<std::ffi::OsString>;

/// What one entry of a directory is, without following a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub id: FileId,
    pub kind: Kind,
    /// How many names the file has.
    pub links: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Directory,
    Symlink,
    Other,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Directory => "a directory",
            Kind::Symlink => "a symbolic link",
            Kind::Other => "a special file",
        }
    }
}

/// An open directory that was checked to be a given one.
#[derive(Debug)]
pub struct DirHandle {
    /// For messages only: calls go through the handle.
    path: PathBuf,
    id: FileId,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

#[cfg(test)]
thread_local! {
    /// Makes this thread's exchanges and no-replace renames `Unsupported`, so that
    /// unit tests prove the portable way on systems that have the one-step calls.
    pub static PORTABLE_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the one-step calls are to be used (always, but in tests that say not).
#[cfg(unix)]
fn one_step_calls() -> bool {
    #[cfg(test)]
    if PORTABLE_ONLY.with(std::cell::Cell::get) {
        return false;
    }
    true
}

/// The error for a directory that is no longer the one planned.
pub fn replaced(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} was moved or replaced during the run",
        dtlto_mock::message::quoted(&path.to_string_lossy())
    ))
}

impl DirHandle {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn id(&self) -> FileId {
        self.id
    }

    /// The path of `name` in this directory, for messages.
    pub fn show(&self, name: &str) -> String {
        dtlto_mock::message::quoted(&self.path.join(name).to_string_lossy())
    }
}

#[cfg(unix)]
mod platform {
    use super::{one_step_calls, replaced, DirHandle, Entry, Kind, Names};
    use crate::sandbox::file_id::FileId;
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    use std::io;
    use std::path::Path;

    fn os(error: rustix::io::Errno) -> io::Error {
        io::Error::from_raw_os_error(error.raw_os_error())
    }

    const DIRECTORY: OFlags = OFlags::RDONLY
        .union(OFlags::DIRECTORY)
        .union(OFlags::CLOEXEC)
        .union(OFlags::NONBLOCK);

    impl DirHandle {
        /// Opens the directory at `path` (links in the path followed, as planned) and
        /// checks that it is `expected`.
        pub fn open(path: &Path, expected: Option<FileId>) -> io::Result<DirHandle> {
            let fd = rustix::fs::open(path, DIRECTORY, Mode::empty()).map_err(os)?;
            DirHandle::checked(path.to_path_buf(), fd, expected)
        }

        /// Opens the subdirectory `name`, never through a link, and checks that it is
        /// `expected`.
        pub fn open_child(&self, name: &str, expected: Option<FileId>) -> io::Result<DirHandle> {
            let path = self.path.join(name);
            let fd =
                rustix::fs::openat(&self.fd, name, DIRECTORY | OFlags::NOFOLLOW, Mode::empty())
                    .map_err(|e| match e {
                        // A link or a file where the directory was.
                        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => replaced(&path),
                        e => os(e),
                    })?;
            DirHandle::checked(path, fd, expected)
        }

        fn checked(
            path: std::path::PathBuf,
            fd: std::os::fd::OwnedFd,
            expected: Option<FileId>,
        ) -> io::Result<DirHandle> {
            let stat = rustix::fs::fstat(&fd).map_err(os)?;
            let id = FileId::from_raw(stat.st_dev as u64, stat.st_ino as u64);
            if expected.is_some_and(|e| e != id) {
                return Err(replaced(&path));
            }
            Ok(DirHandle { path, id, fd })
        }

        /// What `name` is, not following a link.
        pub fn entry(&self, name: &str) -> io::Result<Entry> {
            let stat = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(os)?;
            let kind = match FileType::from_raw_mode(stat.st_mode) {
                FileType::RegularFile => Kind::File,
                FileType::Directory => Kind::Directory,
                FileType::Symlink => Kind::Symlink,
                _ => Kind::Other,
            };
            Ok(Entry {
                id: FileId::from_raw(stat.st_dev as u64, stat.st_ino as u64),
                kind,
                links: stat.st_nlink as u64,
            })
        }

        /// Moves `name` to `to`/`to_name`, which must not exist. `Unsupported` where
        /// the system or file system cannot do it in one step.
        pub fn rename_no_replace(
            &self,
            name: &str,
            to: &DirHandle,
            to_name: &str,
        ) -> io::Result<()> {
            self.rename_in_one_step(name, to, to_name, OneStep::NoReplace)
        }

        /// Swaps `name` and `to`/`to_name`, which must both exist. `Unsupported`
        /// where the system or file system cannot.
        pub fn exchange(&self, name: &str, to: &DirHandle, to_name: &str) -> io::Result<()> {
            self.rename_in_one_step(name, to, to_name, OneStep::Exchange)
        }

        /// `renameat2` on Linux, `renameatx_np` on Apple's systems.
        fn rename_in_one_step(
            &self,
            name: &str,
            to: &DirHandle,
            to_name: &str,
            how: OneStep,
        ) -> io::Result<()> {
            #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
            {
                if !one_step_calls() {
                    return Err(io::ErrorKind::Unsupported.into());
                }
                let flags = match how {
                    OneStep::NoReplace => rustix::fs::RenameFlags::NOREPLACE,
                    OneStep::Exchange => rustix::fs::RenameFlags::EXCHANGE,
                };
                rustix::fs::renameat_with(&self.fd, name, &to.fd, to_name, flags)
                    .map_err(unsupported)
            }
            #[cfg(not(any(target_os = "linux", target_os = "android", target_vendor = "apple")))]
            {
                let _ = (name, to, to_name, how);
                Err(io::ErrorKind::Unsupported.into())
            }
        }

        /// Gives the file `name` a second name, `to`/`to_name`, which must not exist.
        pub fn link(&self, name: &str, to: &DirHandle, to_name: &str) -> io::Result<()> {
            rustix::fs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty()).map_err(os)
        }

        /// Moves `name` to `to`/`to_name`, replacing what is there.
        pub fn rename(&self, name: &str, to: &DirHandle, to_name: &str) -> io::Result<()> {
            rustix::fs::renameat(&self.fd, name, &to.fd, to_name).map_err(os)
        }

        /// The names in the directory, but `.` and `..`.
        pub fn names(&self) -> io::Result<Names> {
            use std::os::unix::ffi::OsStringExt;
            let mut names = Vec::new();
            for entry in rustix::fs::Dir::read_from(&self.fd).map_err(os)? {
                let entry = entry.map_err(os)?;
                let name = entry.file_name().to_bytes();
                if name != b"." && name != b".." {
                    names.push(std::ffi::OsString::from_vec(name.to_vec()));
                }
            }
            Ok(names)
        }

        pub fn remove_file(&self, name: &str) -> io::Result<()> {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(os)
        }

        /// Creates the subdirectory `name` (mode 0700 before the umask).
        pub fn create_dir(&self, name: &str) -> io::Result<()> {
            rustix::fs::mkdirat(&self.fd, name, Mode::RWXU).map_err(os)
        }
    }

    #[derive(Clone, Copy)]
    enum OneStep {
        NoReplace,
        Exchange,
    }

    /// A flag the kernel or the file system does not know is `Unsupported`, so that
    /// the caller takes the portable way.
    #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
    fn unsupported(error: rustix::io::Errno) -> io::Error {
        use rustix::io::Errno;
        if [Errno::INVAL, Errno::NOSYS, Errno::NOTSUP, Errno::OPNOTSUPP].contains(&error) {
            io::ErrorKind::Unsupported.into()
        } else {
            os(error)
        }
    }
}

#[cfg(windows)]
mod platform {
    use super::{replaced, DirHandle, Entry, Kind, Names};
    use crate::sandbox::file_id::{self, FileId};
    use std::fs;
    use std::io;
    use std::path::Path;

    impl DirHandle {
        pub fn open(path: &Path, expected: Option<FileId>) -> io::Result<DirHandle> {
            let id = file_id::of_path(path)?;
            if expected.is_some_and(|e| e != id) || !fs::metadata(path)?.is_dir() {
                return Err(replaced(path));
            }
            Ok(DirHandle {
                path: path.to_path_buf(),
                id,
            })
        }

        pub fn open_child(&self, name: &str, expected: Option<FileId>) -> io::Result<DirHandle> {
            let path = self.path.join(name);
            if !fs::symlink_metadata(&path)?.is_dir() {
                return Err(replaced(&path));
            }
            DirHandle::open(&path, expected)
        }

        /// Checks, before a call by path, that this is still the directory opened.
        fn still(&self) -> io::Result<&Path> {
            if file_id::of_path(&self.path)? != self.id {
                return Err(replaced(&self.path));
            }
            Ok(&self.path)
        }

        pub fn entry(&self, name: &str) -> io::Result<Entry> {
            let path = self.still()?.join(name);
            let meta = fs::symlink_metadata(&path)?;
            let kind = if meta.is_symlink() {
                Kind::Symlink
            } else if meta.is_dir() {
                Kind::Directory
            } else if meta.is_file() {
                Kind::File
            } else {
                Kind::Other
            };
            let file = file_id::open_to_inspect(&path)?;
            Ok(Entry {
                id: file_id::of_file(&file)?,
                kind,
                links: file_id::link_count(&file)?,
            })
        }

        pub fn rename_no_replace(&self, _: &str, _: &DirHandle, _: &str) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub fn exchange(&self, _: &str, _: &DirHandle, _: &str) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }

        pub fn link(&self, name: &str, to: &DirHandle, to_name: &str) -> io::Result<()> {
            fs::hard_link(self.still()?.join(name), to.still()?.join(to_name))
        }

        pub fn rename(&self, name: &str, to: &DirHandle, to_name: &str) -> io::Result<()> {
            fs::rename(self.still()?.join(name), to.still()?.join(to_name))
        }

        pub fn names(&self) -> io::Result<Names> {
            fs::read_dir(self.still()?)?
                .map(|entry| entry.map(|e| e.file_name()))
                .collect()
        }

        pub fn remove_file(&self, name: &str) -> io::Result<()> {
            fs::remove_file(self.still()?.join(name))
        }

        pub fn create_dir(&self, name: &str) -> io::Result<()> {
            fs::create_dir(self.still()?.join(name))
        }
    }
}
