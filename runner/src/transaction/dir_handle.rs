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
    /// Its size in bytes, and when its contents last changed (nanoseconds since
    /// the epoch, 0 where unknown): with `id`, what tells a file from another that
    /// got the same file number after the first was removed.
    pub size: u64,
    pub modified: i128,
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

#[cfg(test)]
thread_local! {
    /// Makes this thread's hard links fail as on a file system without them
    /// (exFAT), so that unit tests prove the way by renames.
    pub static NO_HARD_LINKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
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

/// The error for a file that is not one the runner made: `why` says how it differs.
fn not_ours(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads `file` to its end, if that is at most `limit` bytes.
fn read_at_most(file: std::fs::File, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut contents = Vec::new();
    file.take(limit + 1).read_to_end(&mut contents)?;
    if contents.len() as u64 > limit {
        return Err(not_ours(format!("it is larger than {limit} bytes")));
    }
    Ok(contents)
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
    use super::{not_ours, one_step_calls, read_at_most, replaced, DirHandle, Entry, Kind, Names};
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
                size: stat.st_size as u64,
                modified: i128::from(stat.st_mtime) * 1_000_000_000
                    + i128::from(stat.st_mtime_nsec),
            })
        }

        /// Takes the set-user-ID and set-group-ID bits off the file `name`, if it
        /// has them (nothing runs in the staging by then to swap it).
        pub fn clear_set_id(&self, name: &str) -> io::Result<()> {
            let stat = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(os)?;
            let mode = stat.st_mode as u32;
            if mode & 0o6000 == 0 || FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
            {
                return Ok(());
            }
            rustix::fs::chmodat(
                &self.fd,
                name,
                Mode::from_raw_mode((mode & 0o1777) as _),
                AtFlags::empty(),
            )
            .map_err(os)
        }

        /// Whether this directory belongs to the user running this, and only to
        /// them: no rights for its group or others.
        /// On a file system that keeps no Unix modes (FAT, exFAT, NTFS through
        /// FUSE), where every entry shows the same mount-wide mode and nothing can be
        /// private, the owner alone decides.
        pub fn is_private(&self) -> io::Result<bool> {
            let stat = rustix::fs::fstat(&self.fd).map_err(os)?;
            if stat.st_uid != rustix::process::geteuid().as_raw() {
                return Ok(false);
            }
            Ok(stat.st_mode & 0o077 == 0 || keeps_no_modes(&self.fd, stat.st_dev as u64))
        }

        /// Reads the regular file `name`, never through a link and never waiting on
        /// a FIFO or a device: at most `limit` bytes, or `InvalidData`.
        pub fn read_small_file(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(os)?;
            let stat = rustix::fs::fstat(&fd).map_err(os)?;
            if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
                return Err(not_ours("it is not a regular file".to_owned()));
            }
            if stat.st_uid != rustix::process::geteuid().as_raw() {
                return Err(not_ours("it belongs to another user".to_owned()));
            }
            read_at_most(std::fs::File::from(fd), limit)
        }

        /// Creates the file `name` (mode 0600), which must not exist, never through
        /// a link, with `contents`.
        pub fn create_file(&self, name: &str, contents: &[u8]) -> io::Result<()> {
            use std::io::Write;
            let fd = rustix::fs::openat(
                &self.fd,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::RUSR | Mode::WUSR,
            )
            .map_err(os)?;
            let mut file = std::fs::File::from(fd);
            file.write_all(contents)?;
            file.sync_all()
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
            #[cfg(test)]
            if super::NO_HARD_LINKS.with(std::cell::Cell::get) {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            rustix::fs::linkat(&self.fd, name, &to.fd, to_name, AtFlags::empty()).map_err(os)
        }

        /// The type of the file system the directory is on, where the system says
        /// (Linux), for messages.
        pub fn file_system(&self) -> Option<&'static str> {
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                let magic = rustix::fs::fstatfs(&self.fd).ok()?.f_type as u64;
                let name = match magic {
                    0xEF53 => "ext2/3/4",
                    0x5846_5342 => "xfs",
                    0x9123_683E => "btrfs",
                    0x0102_1994 => "tmpfs",
                    0x6573_5546 => "FUSE",
                    0x2011_BAB0 => "exfat",
                    0x4d44 => "FAT",
                    0x5346_544e => "ntfs",
                    0x6969 => "nfs",
                    0x794c_7630 => "overlay",
                    0x2fc1_2fc1 => "zfs",
                    0xFF53_4D42 | 0xFE53_4D42 => "cifs/smb",
                    0x0102_1997 => "9p",
                    0xF2F5_2010 => "f2fs",
                    _ => return None,
                };
                Some(name)
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            None
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

        /// Creates the subdirectory `name`, private to this user (mode 0700; the
        /// umask can only take rights away).
        pub fn create_dir(&self, name: &str) -> io::Result<()> {
            rustix::fs::mkdirat(&self.fd, name, Mode::RWXU).map_err(os)
        }

        /// Removes the subdirectory `name` if it is empty.
        pub fn remove_empty_dir(&self, name: &str) -> io::Result<()> {
            rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(os)
        }
    }

    /// Whether the file system of `fd` (device `device`) has no Unix modes of its
    /// own: FAT or exFAT in the kernel, or a file system on a block device served
    /// through FUSE (`fuseblk`: exFAT, NTFS).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn keeps_no_modes(fd: &std::os::fd::OwnedFd, device: u64) -> bool {
        const MSDOS: u64 = 0x4d44;
        const EXFAT: u64 = 0x2011_BAB0;
        const FUSE: u64 = 0x6573_5546;
        match rustix::fs::fstatfs(fd).map(|s| s.f_type as u64) {
            Ok(MSDOS | EXFAT) => true,
            Ok(FUSE) => mount_type(device).is_some_and(|t| t == "fuseblk"),
            _ => false,
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn keeps_no_modes(_: &std::os::fd::OwnedFd, _: u64) -> bool {
        false
    }

    /// The type of the mount of `device`, from /proc/self/mountinfo.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn mount_type(device: u64) -> Option<String> {
        let wanted = format!(
            "{}:{}",
            rustix::fs::major(device as _),
            rustix::fs::minor(device as _)
        );
        let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        table.lines().find_map(|line| {
            let mut fields = line.split(' ');
            if fields.nth(2)? != wanted {
                return None;
            }
            let (_, after) = line.split_once(" - ")?;
            after.split(' ').next().map(str::to_owned)
        })
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
    use super::{not_ours, read_at_most, replaced, DirHandle, Entry, Kind, Names};
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
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            Ok(Entry {
                id: file_id::of_file(&file)?,
                kind,
                links: file_id::link_count(&file)?,
                size: meta.len(),
                modified,
            })
        }

        /// Windows has no set-user-ID bits.
        pub fn clear_set_id(&self, _: &str) -> io::Result<()> {
            Ok(())
        }

        /// Windows: the staging lives in the user's own directories, whose access
        /// lists the runner does not read; a directory is taken as private.
        pub fn is_private(&self) -> io::Result<bool> {
            self.still().map(|_| true)
        }

        pub fn read_small_file(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
            let path = self.still()?.join(name);
            if !fs::symlink_metadata(&path)?.is_file() {
                return Err(not_ours("it is not a regular file".to_owned()));
            }
            read_at_most(fs::File::open(&path)?, limit)
        }

        pub fn create_file(&self, name: &str, contents: &[u8]) -> io::Result<()> {
            use std::io::Write;
            let mut file = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.still()?.join(name))?;
            file.write_all(contents)?;
            file.sync_all()
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

        pub fn file_system(&self) -> Option<&'static str> {
            None
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

        pub fn remove_empty_dir(&self, name: &str) -> io::Result<()> {
            fs::remove_dir(self.still()?.join(name))
        }
    }
}
