//! The user an action runs as, and becoming it.

use std::io;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// This process becomes `user` for good: every uid and gid (real, effective, saved)
/// the user's, no supplementary group of root's, so no capability left, and a
/// session keyring of its own. Only system calls: safe between fork and exec.
pub fn become_user(user: User) -> io::Result<()> {
    switch(user, user.uid, user.gid)
}

/// This process acts on files as `user` (its effective ids, without capabilities),
/// while its real and saved ids stay root's: no process of the user's may signal,
/// stop or trace it. For the cleanup of what the user left, which the user must not
/// be able to hold up.
pub fn act_on_files_as(user: User) -> io::Result<()> {
    switch(user, 0, 0)
}

fn switch(user: User, real_uid: u32, real_gid: u32) -> io::Result<()> {
    // KEYCTL_JOIN_SESSION_KEYRING, which the libc crate does not name for this target.
    const JOIN_SESSION_KEYRING: libc::c_long = 1;
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
        check(libc::setresgid(real_gid, user.gid, real_gid))?;
        check(libc::setresuid(real_uid, user.uid, real_uid))?;
        // A new, empty session keyring: root's, where casd has one (a systemd service,
        // a PAM login), would give its possessor every key in it. (Without keyrings,
        // or with keyctl refused to all, as container profiles do, there is none to
        // leave.)
        let joined = libc::syscall(
            libc::SYS_keyctl,
            JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        );
        if joined < 0 && ![libc::ENOSYS, libc::EPERM].contains(&*libc::__errno_location()) {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A libc call's result: 0 (or any non-negative value) is success, else errno.
pub fn check(result: libc::c_int) -> io::Result<()> {
    if result >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
