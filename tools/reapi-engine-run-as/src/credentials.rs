//! The user an action runs as, and becoming it.

use std::io;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// This process becomes `user` for good: every uid and gid (real, effective, saved)
/// the user's, no supplementary group of root's, and so no capability left. Only
/// system calls: safe between fork and exec.
pub fn become_user(user: User) -> io::Result<()> {
    // SAFETY: each is a system call on plain values, async-signal-safe.
    unsafe {
        // Only root switches; anyone else may only already be the user.
        if libc::geteuid() != 0 {
            return match (libc::geteuid(), libc::getegid()) == (user.uid, user.gid) {
                true => Ok(()),
                false => Err(io::Error::from_raw_os_error(libc::EPERM)),
            };
        }
        check(libc::setgroups(0, std::ptr::null()))?;
        check(libc::setresgid(user.gid, user.gid, user.gid))?;
        check(libc::setresuid(user.uid, user.uid, user.uid))
    }
}

/// A libc call's result: 0 (or any non-negative value) is success, else errno.
pub fn check(result: libc::c_int) -> io::Result<()> {
    if result >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
