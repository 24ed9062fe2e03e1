//! The user's directory for one action: made by root in WORK and reached only
//! through descriptors (WORK's and its own), so that no name on the way to it, which
//! another user might control, decides what root touches. Root creates files in it
//! only while it is root's alone; once it is the user's, root only reads from it, a
//! regular file of the user's, and the user empties it.

use crate::credentials::{self, check, User};
use std::ffi::{CString, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The most of a result root copies back: an ActionResult, or the status
/// buildbox-run writes when it fails, is a few hundred bytes.
const RESULT_LIMIT: u64 = 16 << 20;

pub struct ActionDir {
    work: File,
    name: CString,
    dir: File,
    path: PathBuf,
    /// Whose the directory is once handed over: that user empties it.
    handed_to: Option<User>,
}

impl ActionDir {
    /// A new directory (mode 0700, root's) in `work`, which must be this process's
    /// user's and writable by no one else: then nobody else can rename or replace
    /// what is in it, and a descriptor of it is as good as its name.
    pub fn make(work: &Path) -> Result<ActionDir, String> {
        let shown = work.display();
        let work_dir = open_dir(libc::AT_FDCWD, &c_path(work.as_os_str().as_bytes())?)
            .map_err(|e| format!("cannot open the actions' directory {shown}: {e}"))?;
        let meta = work_dir
            .metadata()
            .map_err(|e| format!("cannot stat {shown}: {e}"))?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            return Err(format!(
                "the actions' directory {shown} must be uid {me}'s and writable by no one \
                 else (it is uid {}'s, mode {:o})",
                meta.uid(),
                meta.mode() & 0o7777
            ));
        }
        let name = make_unique_dir(&work_dir)
            .map_err(|e| format!("cannot make a directory in {shown}: {e}"))?;
        let dir = open_dir(work_dir.as_raw_fd(), &name)
            .map_err(|e| format!("cannot open the directory made in {shown}: {e}"))?;
        let path = work.join(OsString::from_vec(name.as_bytes().to_vec()));
        Ok(ActionDir {
            work: work_dir,
            name,
            dir,
            path,
            handed_to: None,
        })
    }

    /// The directory's name, for RUNNER, which runs as the user: a name swapped on
    /// the way leads the user only where it could go anyway.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> RawFd {
        self.dir.as_raw_fd()
    }

    /// A new file `name` for `user` (mode 0600), open for reading and writing; made
    /// before the directory is handed over.
    pub fn create(&self, name: &str, user: User) -> io::Result<File> {
        let file = open_at(
            self.dir.as_raw_fd(),
            &CString::new(name)?,
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
            0o600,
        )?;
        std::os::unix::fs::fchown(&file, Some(user.uid), Some(user.gid))?;
        Ok(file)
    }

    /// The directory becomes `user`'s.
    pub fn hand_over(&mut self, user: User) -> io::Result<()> {
        std::os::unix::fs::fchown(&self.dir, Some(user.uid), Some(user.gid))?;
        self.handed_to = Some(user);
        Ok(())
    }

    /// The user's `name`, if RUNNER wrote it, copied to casd's `to`: only a regular
    /// file that the user owns (never a link, a FIFO, or another's file linked in),
    /// and within RESULT_LIMIT.
    pub fn bring_back(&self, name: &str, to: &Path, uid: u32) -> Result<(), String> {
        let from = self.path.join(name);
        let refuse = |why: String| format!("refusing {} as a result: {why}", from.display());
        let c_name = CString::new(name).map_err(|e| refuse(e.to_string()))?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let file = match open_at(self.dir.as_raw_fd(), &c_name, flags, 0) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(refuse(e.to_string())),
        };
        let metadata = file.metadata().map_err(|e| refuse(e.to_string()))?;
        if !metadata.file_type().is_file() {
            return Err(refuse("not a regular file".to_owned()));
        }
        if metadata.uid() != uid {
            return Err(refuse(format!(
                "owned by uid {}, not {uid}",
                metadata.uid()
            )));
        }
        let mut bytes = Vec::new();
        file.take(RESULT_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| refuse(e.to_string()))?;
        if bytes.len() as u64 > RESULT_LIMIT {
            return Err(refuse(format!("larger than {RESULT_LIMIT} bytes")));
        }
        fs::write(to, &bytes).map_err(|e| format!("cannot write {}: {e}", to.display()))
    }

    /// Empties the directory, as its user once handed over (root deletes nothing
    /// the user could not: whatever of another's the user moved in stays), then
    /// removes it, as root, by its name in WORK.
    fn remove(&self) -> io::Result<()> {
        match self.handed_to {
            Some(user) => self.empty_as(user)?,
            // Still root's alone: only the files made here are in it.
            None => {
                for name in ["action", "runner.log"] {
                    let name = CString::new(name)?;
                    // SAFETY: a NUL-terminated name and a directory descriptor this holds.
                    let _ = unsafe { libc::unlinkat(self.dir.as_raw_fd(), name.as_ptr(), 0) };
                }
            }
        }
        // SAFETY: a NUL-terminated name and a directory descriptor this holds.
        check(unsafe {
            libc::unlinkat(
                self.work.as_raw_fd(),
                self.name.as_ptr(),
                libc::AT_REMOVEDIR,
            )
        })
    }

    /// Removes everything in the directory as `user`, in a child process that the
    /// user's processes cannot signal (see `act_on_files_as`).
    fn empty_as(&self, user: User) -> io::Result<()> {
        // SAFETY: this process has one thread, so the child may do anything; it
        // leaves by _exit, running nothing of the parent's.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let emptied = credentials::act_on_files_as(user)
                // SAFETY: fchdir on a directory descriptor the child inherited.
                .and_then(|()| check(unsafe { libc::fchdir(self.dir.as_raw_fd()) }))
                .and_then(|()| remove_entries_of_current_dir());
            // SAFETY: _exit ends the child at once, as a forked child must.
            unsafe { libc::_exit(i32::from(emptied.is_err())) };
        }
        check(pid)?;
        let mut status = 0;
        // SAFETY: waits for the child just forked, into a local.
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "uid {} could not empty it",
                user.uid
            )))
        }
    }
}

impl Drop for ActionDir {
    fn drop(&mut self) {
        if let Err(error) = self.remove() {
            eprintln!(
                "reapi-engine-run-as: warning: {} is left: {error}",
                self.path.display()
            );
        }
    }
}

fn remove_entries_of_current_dir() -> io::Result<()> {
    for entry in fs::read_dir(".")? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.file_name())?;
        } else {
            fs::remove_file(entry.file_name())?;
        }
    }
    Ok(())
}

fn c_path(bytes: &[u8]) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| "a path with a NUL byte".to_owned())
}

/// `name` in the directory `at` (or AT_FDCWD), opened with `flags` (and `mode`, for
/// a file it creates), closed at exec.
fn open_at(at: RawFd, name: &CString, flags: libc::c_int, mode: libc::c_uint) -> io::Result<File> {
    // SAFETY: a NUL-terminated name; `at` is AT_FDCWD or a descriptor the caller holds.
    let fd = unsafe { libc::openat(at, name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    check(fd)?;
    // SAFETY: openat just returned this descriptor, owned by no one else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `name` in `at`, opened as a directory, never through a link.
fn open_dir(at: RawFd, name: &CString) -> io::Result<File> {
    open_at(
        at,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
}

/// `action.XXXXXX`, a new directory in `work`, with a random suffix.
fn make_unique_dir(work: &File) -> io::Result<CString> {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for _ in 0..100 {
        let mut random = [0u8; 8];
        // SAFETY: getrandom fills the buffer it is given, of the length given.
        let got = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
        if got != random.len() as isize {
            return Err(io::Error::last_os_error());
        }
        let mut name = b"action.".to_vec();
        name.extend(random.iter().map(|b| LETTERS[*b as usize % LETTERS.len()]));
        let name = CString::new(name)?;
        // SAFETY: a NUL-terminated name and a directory descriptor the caller holds.
        match check(unsafe { libc::mkdirat(work.as_raw_fd(), name.as_ptr(), 0o700) }) {
            Ok(()) => return Ok(name),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("100 names taken"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A WORK of this user's, mode 0711, and an action directory in it.
    fn action_dir() -> (tempfile::TempDir, ActionDir, User) {
        let work = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o711)).expect("chmod");
        let meta = fs::metadata(work.path()).expect("stat");
        let me = User {
            uid: meta.uid(),
            gid: meta.gid(),
        };
        let dir = ActionDir::make(work.path()).expect("an action directory");
        (work, dir, me)
    }

    #[test]
    fn a_work_directory_others_may_write_is_refused() {
        let work = tempfile::tempdir().expect("tempdir");
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = ActionDir::make(work.path()).err().expect("refused");
        assert!(error.contains("writable by no one else"), "{error}");
        let link = work.path().join("link");
        let real = tempfile::tempdir().expect("tempdir");
        symlink(real.path(), &link).expect("symlink");
        let error = ActionDir::make(&link).err().expect("refused");
        assert!(error.contains("cannot open"), "{error}");
    }

    #[test]
    fn the_directory_and_what_the_user_left_in_it_go_when_it_is_dropped() {
        let (work, mut dir, me) = action_dir();
        dir.create("action", me).expect("create");
        dir.hand_over(me).expect("hand over");
        fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        fs::write(dir.path().join("a/b/c"), "x").expect("write");
        drop(dir);
        assert_eq!(fs::read_dir(work.path()).expect("ls").count(), 0);
    }

    #[test]
    fn only_a_regular_file_of_the_users_within_the_limit_comes_back() {
        let (_work, mut dir, me) = action_dir();
        dir.hand_over(me).expect("hand over");
        let to = dir.path().join("back");
        fs::write(dir.path().join("result"), "a result").expect("write");
        dir.bring_back("result", &to, me.uid)
            .expect("the owner's result");
        assert_eq!(fs::read(&to).expect("read back"), b"a result");
        fs::remove_file(&to).expect("rm");

        let refused = |name: &str, uid: u32, why: &str| {
            let error = dir.bring_back(name, &to, uid).expect_err("refused");
            assert!(error.contains(why), "{error}");
            assert!(!to.exists(), "{error}: came back anyway");
        };
        // Another's file (linked in, where the system lets a user link others' files).
        refused("result", me.uid.wrapping_add(1), "owned by uid");
        symlink(dir.path().join("result"), dir.path().join("link")).expect("symlink");
        refused("link", me.uid, "refusing");
        let fifo = c_path(dir.path().join("fifo").as_os_str().as_bytes()).expect("path");
        // SAFETY: a NUL-terminated path that mkfifo only reads.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        refused("fifo", me.uid, "not a regular file");
        File::create(dir.path().join("huge"))
            .and_then(|f| f.set_len(RESULT_LIMIT + 1))
            .expect("a sparse file");
        refused("huge", me.uid, "larger than");
        // None written: nothing to bring back, and no error.
        dir.bring_back("none", &to, me.uid).expect("nothing");
        assert!(!to.exists());
    }
}
