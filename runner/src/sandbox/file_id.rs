//! Which file a handle or a path is (device and file number), and how many names it
//! has: what tells a directory swapped behind our back, or an output hard-linked to
//! another, from the real thing. std has both on Unix only, so Windows asks the OS.

use std::fs::File;
use std::io;
use std::path::Path;

/// A file's identity: equal for two handles exactly when they are one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    device: u64,
    file: u64,
}

impl FileId {
    pub fn from_raw(device: u64, file: u64) -> FileId {
        FileId { device, file }
    }

    /// The device and the file number, as `from_raw` takes them.
    pub fn raw(&self) -> (u64, u64) {
        (self.device, self.file)
    }

    /// A text that is equal exactly when the identities are.
    pub fn as_key(&self) -> String {
        format!("{}:{}", self.device, self.file)
    }
}

#[cfg(unix)]
pub fn of_file(file: &File) -> io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata()?;
    Ok(FileId {
        device: meta.dev(),
        file: meta.ino(),
    })
}

/// The number of directory entries that name `file`.
#[cfg(all(unix, test))]
pub fn link_count(file: &File) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(file.metadata()?.nlink())
}

/// Opens `path` (a file or a directory, not following a final symlink on Unix) to
/// look at it.
#[cfg(unix)]
pub fn open_to_inspect(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

#[cfg(windows)]
fn information(
    file: &File,
) -> io::Result<windows_sys::Win32::Storage::FileSystem::BY_HANDLE_FILE_INFORMATION> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::GetFileInformationByHandle;
    // SAFETY: a zeroed struct of plain integers is valid.
    let mut info = unsafe { std::mem::zeroed() };
    // SAFETY: the handle is open for the call, and `info` is valid for writes.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(info)
}

#[cfg(windows)]
pub fn of_file(file: &File) -> io::Result<FileId> {
    let info = information(file)?;
    Ok(FileId {
        device: u64::from(info.dwVolumeSerialNumber),
        file: (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    })
}

#[cfg(windows)]
pub fn link_count(file: &File) -> io::Result<u64> {
    Ok(u64::from(information(file)?.nNumberOfLinks))
}

#[cfg(windows)]
pub fn open_to_inspect(path: &Path) -> io::Result<File> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT,
    };
    // Backup semantics open directories too; a reparse point is opened itself.
    std::fs::OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT)
        .open(path)
}

/// The identity of the file `path` leads to, through any links.
pub fn of_path_followed(path: &Path) -> io::Result<FileId> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path)?;
        Ok(FileId::from_raw(meta.dev(), meta.ino()))
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        use windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS;
        let file = std::fs::OpenOptions::new()
            .access_mode(0)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)?;
        of_file(&file)
    }
}

/// The identity of what `path` names now.
pub fn of_path(path: &Path) -> io::Result<FileId> {
    of_file(&open_to_inspect(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_links_share_an_identity_and_count_their_names() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        std::fs::write(dir.join("a"), "a").unwrap();
        std::fs::write(dir.join("b"), "b").unwrap();
        let a = of_path(&dir.join("a")).unwrap();
        assert_ne!(a, of_path(&dir.join("b")).unwrap());
        assert_eq!(link_count(&File::open(dir.join("a")).unwrap()).unwrap(), 1);
        std::fs::hard_link(dir.join("a"), dir.join("c")).unwrap();
        assert_eq!(a, of_path(&dir.join("c")).unwrap());
        assert_eq!(link_count(&File::open(dir.join("a")).unwrap()).unwrap(), 2);
        assert_eq!(of_path(dir).unwrap(), of_path(&dir.join(".")).unwrap());
    }
}
