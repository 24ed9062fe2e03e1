//! Confining one compile job with Landlock (Linux 5.13 and later).
//!
//! The ruleset is built in the runner, before the job's process is forked: building
//! it opens files and allocates, which a forked child of a multi-threaded process
//! must not do. The child, between fork and exec (`pre_exec`), only makes system
//! calls: it opens `/proc/self` (which must be its own, so it cannot be opened in
//! the parent), adds that one rule, sets no_new_privs and restricts itself. No
//! re-exec of the runner as a shim is needed, and no allocation happens after fork.
//!
//! What a job may do then: write (create, replace, remove, rename) only beneath its
//! writable directories (its staging) and `/dev/null`; read everything, or with
//! `--hermetic` only what `Rules::readable` lists. The ruleset handles every right of
//! the newest Landlock ABI the `landlock` crate knows (10): the kernel enforces those
//! of its own ABI, and [`Promises`] says which hold (truncation needs ABI 3, device
//! ioctls ABI 5, signal and abstract-socket scopes ABI 6). Landlock does not govern
//! what is already open (the inherited stdin, stdout and stderr), path resolution
//! itself (`stat`, following links), metadata (`chmod`, `utime`, xattrs), nor the
//! network (left unhandled: a compiler wrapper may use a remote cache).
//!
//! For metadata, a job is also sealed where the kernel allows it (`Seal`): before
//! Landlock (which refuses mounts), its child makes a mount namespace (inside a user
//! namespace mapping only the user, unless the runner is root), makes every mount
//! read-only, and bind-mounts its writable directories writable over themselves;
//! as root it then drops CAP_SYS_ADMIN from its bounding set, so that the exec'd job
//! cannot `mount_setattr` them writable again. Everything it needs (C strings, the
//! id maps) is made before the fork.

use std::path::PathBuf;

/// What one job may touch.
#[derive(Debug, Default)]
pub struct Rules {
    /// Directories (and files) the job may write beneath.
    pub writable: Vec<PathBuf>,
    /// Directories and files the job may read; `None`: everything.
    pub readable: Option<Vec<PathBuf>>,
    /// Whether the job also gets a mount namespace of its own in which everything
    /// but `writable` is read-only (see [`sealing_works`]).
    pub seal: bool,
    /// The job's working directory, entered again once the namespace is made.
    pub cwd: PathBuf,
}

/// Whether jobs can be sealed here: a child of the runner could make a mount
/// namespace of its own (as root; otherwise inside a user namespace that maps only
/// the user) and mount everything read-only in it. Tried in a forked child; a run
/// asks once, when it decides its confinement.
pub fn sealing_works() -> bool {
    imp::sealing_works()
}

/// The Landlock ABI version this kernel offers, if any.
pub fn abi_version() -> Option<i32> {
    imp::abi_version()
}

pub use imp::{prepare, Prepared};

/// What confinement holds on a kernel whose Landlock ABI is `abi`: what `--verbose`
/// says, and whether `--hermetic` can keep its promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promises {
    /// The kernel's Landlock ABI version.
    pub abi: i32,
    /// Whether jobs are sealed: everything outside their staging read-only.
    pub sealed: bool,
}

impl Promises {
    /// The promises of ABI `abi`, with jobs `sealed` or not.
    pub fn of(abi: i32, sealed: bool) -> Promises {
        Promises { abi, sealed }
    }

    /// What a confined job cannot do on this kernel beyond writing outside its
    /// staging (ABI 1), in words.
    pub fn held(&self) -> Vec<&'static str> {
        let mut held = Vec::new();
        if self.sealed {
            held.push(
                "change a file outside or its metadata (truncate, chmod, utime, xattrs): \
                 everything outside its staging is read-only in a mount namespace of its own",
            );
        } else if self.abi >= 3 {
            held.push("truncate a file outside (ABI 3)");
        }
        if self.abi >= 5 {
            held.push("use ioctls on a device it opens outside (ABI 5)");
        }
        if self.abi >= 6 {
            held.push(
                "signal processes outside its job or connect to abstract unix sockets \
                 outside (ABI 6)",
            );
        }
        if self.abi >= 9 {
            held.push("connect to unix sockets by path outside (ABI 9)");
        }
        held
    }

    /// What a confined job can still do on this kernel, in words.
    pub fn gaps(&self) -> Vec<&'static str> {
        let mut gaps = Vec::new();
        if self.abi < 3 && !self.sealed {
            gaps.push(
                "truncate a file outside with truncate(2) (Landlock ABI 3, Linux 6.2, \
                 prevents it)",
            );
        }
        if self.abi < 5 {
            gaps.push(
                "use ioctls on a device it opens, such as a terminal (Landlock ABI 5, \
                 Linux 6.10, prevents it)",
            );
        }
        if self.abi < 6 {
            gaps.push(
                "signal the user's other processes and connect to abstract unix sockets \
                 (Landlock ABI 6, Linux 6.12, prevents it)",
            );
        }
        if self.abi < 9 {
            gaps.push("connect to unix sockets by path (Landlock ABI 9 prevents it)");
        }
        if !self.sealed {
            gaps.push(
                "change the metadata of files outside (chmod, utime, xattrs): Landlock has \
                 no rights for them, and no mount namespace could be made here",
            );
        }
        gaps.push("use the network");
        gaps
    }

    /// Why `--hermetic`, which promises that each job writes only into its staging and
    /// reads only what it declares, cannot keep that promise on this kernel.
    pub fn hermetic_refusal(&self) -> Option<String> {
        (self.abi < 3 && !self.sealed).then(|| {
            format!(
                "this kernel's Landlock (ABI {}) cannot stop a job from emptying a file \
                 outside its staging with truncate(2), which needs ABI 3 (Linux 6.2)",
                self.abi
            )
        })
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::Rules;
    use crate::local::error::ConfineError;
    use dtlto_mock::message::quoted;
    use landlock::{
        Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope, ABI,
    };
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Arc;

    /// The file-system rights and scopes handled (denied unless a rule grants them):
    /// every one of the newest ABI the crate knows, so that each kernel enforces all
    /// it can (truncation at 3, device ioctls at 5, signals and abstract unix sockets
    /// at 6, unix sockets by path at 9). The crate leaves out what an older kernel
    /// lacks; `Promises` says what that leaves. The network is not handled.
    const ABI_HANDLED: ABI = ABI::V10;
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;
    const ACCESS_READ_FILE: u64 = 1 << 2;
    const ACCESS_READ_DIR: u64 = 1 << 3;

    pub fn abi_version() -> Option<i32> {
        // SAFETY: with a null attribute and the version flag, the call only answers.
        let version = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        i32::try_from(version).ok().filter(|v| *v >= 1)
    }

    /// A ruleset ready to be applied by a child.
    pub struct Prepared {
        ruleset: OwnedFd,
        /// Whether the job may read `/proc/self` under a restricted read set.
        proc_self: bool,
        seal: Option<Arc<Seal>>,
    }

    /// A job's mount namespace, ready to be made by its child: every C string and
    /// map it needs, made before the fork.
    pub struct Seal {
        /// Whether the runner is root: then a mount namespace alone (and the job
        /// loses CAP_SYS_ADMIN); otherwise a user namespace too.
        root: bool,
        uid_map: CString,
        gid_map: CString,
        /// Mounted writable again: its staging, its TMPDIR.
        writable: Vec<CString>,
        cwd: CString,
    }

    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }

    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: u64 = 0x2;
    const MOUNT_ATTR_NODEV: u64 = 0x4;
    const CAP_SYS_ADMIN: libc::c_ulong = 21;
    const AT_RECURSIVE: libc::c_uint = 0x8000;

    impl Seal {
        fn new(writable: &[PathBuf], cwd: &Path) -> Option<Seal> {
            let c = |path: &Path| CString::new(path.as_os_str().as_bytes()).ok();
            // SAFETY: getters without side effects.
            let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
            Some(Seal {
                root: uid == 0,
                uid_map: CString::new(format!("{uid} {uid} 1")).ok()?,
                gid_map: CString::new(format!("{gid} {gid} 1")).ok()?,
                writable: writable
                    .iter()
                    .filter(|path| path.exists())
                    .map(|path| c(path))
                    .collect::<Option<_>>()?,
                cwd: c(cwd)?,
            })
        }

        /// In the child, after fork: only system calls, on memory made before it.
        fn apply(&self) -> io::Result<()> {
            let check = |result: libc::c_long| {
                if result < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            // SAFETY: unshare, open, write, close, mount, mount_setattr, chdir and
            // prctl are system calls, given C strings and a struct that live
            // across them; none allocates.
            unsafe {
                if self.root {
                    check(libc::unshare(libc::CLONE_NEWNS).into())?;
                } else {
                    check(libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS).into())?;
                    write_proc(c"/proc/self/setgroups", c"deny")?;
                    write_proc(c"/proc/self/uid_map", &self.uid_map)?;
                    write_proc(c"/proc/self/gid_map", &self.gid_map)?;
                }
                // Nothing of this namespace's reaches the runner's.
                check(
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    )
                    .into(),
                )?;
                for path in &self.writable {
                    check(
                        libc::mount(
                            path.as_ptr(),
                            path.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        )
                        .into(),
                    )?;
                }
                let read_only = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                check(libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    c"/".as_ptr(),
                    AT_RECURSIVE,
                    &raw const read_only,
                    std::mem::size_of::<MountAttr>(),
                ))?;
                // Writable again, but no device node or set-user-ID program there
                // works.
                let writable = MountAttr {
                    attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    attr_clr: MOUNT_ATTR_RDONLY,
                    propagation: 0,
                    userns_fd: 0,
                };
                for path in &self.writable {
                    check(libc::syscall(
                        libc::SYS_mount_setattr,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        0 as libc::c_uint,
                        &raw const writable,
                        std::mem::size_of::<MountAttr>(),
                    ))?;
                }
                // The working directory again, through the new mounts.
                check(libc::chdir(self.cwd.as_ptr()).into())?;
                if self.root {
                    // Root keeps its other capabilities, but not the one that could
                    // make the mounts writable again (Landlock does not refuse
                    // mount_setattr).
                    check(libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0).into())?;
                }
            }
            Ok(())
        }
    }

    /// Writes `text` to a file of `/proc/self`, in the child.
    fn write_proc(path: &std::ffi::CStr, text: &std::ffi::CStr) -> io::Result<()> {
        let bytes = text.to_bytes();
        // SAFETY: open, write and close on a C string and bytes that outlive them.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
            let error = io::Error::last_os_error();
            libc::close(fd);
            if written != bytes.len() as isize {
                return Err(error);
            }
        }
        Ok(())
    }

    pub fn sealing_works() -> bool {
        let Some(seal) = Seal::new(&[], Path::new("/")) else {
            return false;
        };
        // SAFETY: the child makes only system calls (Seal::apply, _exit) on memory
        // made before the fork; the parent waits for that child alone.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                libc::_exit(i32::from(seal.apply().is_err()));
            }
            if pid < 0 {
                return false;
            }
            let mut status = 0;
            loop {
                let waited = libc::waitpid(pid, &mut status, 0);
                if waited == pid {
                    break;
                }
                if waited < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    return false;
                }
            }
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
        }
    }

    #[repr(C, packed)]
    struct PathBeneathAttr {
        allowed_access: u64,
        parent_fd: i32,
    }

    /// Builds the job's ruleset. Paths that do not exist are left out (a system
    /// without `/lib64`).
    pub fn prepare(rules: &Rules) -> Result<Prepared, ConfineError> {
        let failed = |e: &dyn std::fmt::Display| ConfineError::Ruleset(e.to_string());
        let all = AccessFs::from_all(ABI_HANDLED);
        let read = AccessFs::from_read(ABI_HANDLED);
        let mut ruleset = Ruleset::default()
            .handle_access(all)
            .map_err(|e| failed(&e))?
            .scope(Scope::from_all(ABI_HANDLED))
            .map_err(|e| failed(&e))?
            .create()
            .map_err(|e| failed(&e))?;
        let mut add = |path: &std::path::Path, access| -> Result<(), ConfineError> {
            match PathFd::new(path) {
                Ok(fd) => {
                    (&mut ruleset)
                        .add_rule(PathBeneath::new(fd, access))
                        .map_err(|e| {
                            failed(&format!("{}: {e}", quoted(&path.to_string_lossy())))
                        })?;
                    Ok(())
                }
                // Not there: nothing to grant.
                Err(_) if !path.exists() => Ok(()),
                Err(e) => Err(failed(&format!("{}: {e}", quoted(&path.to_string_lossy())))),
            }
        };
        // Everything beneath the staging but device nodes: a root job could make one
        // for a disk and write the whole file system through it.
        let writable = all & !(AccessFs::MakeBlock | AccessFs::MakeChar);
        for path in &rules.writable {
            add(path, writable)?;
        }
        add(std::path::Path::new("/dev/null"), writable)?;
        match &rules.readable {
            None => add(std::path::Path::new("/"), read)?,
            Some(paths) => {
                for path in paths {
                    add(path, read)?;
                }
            }
        }
        let ruleset: Option<OwnedFd> = ruleset.into();
        let ruleset = ruleset.ok_or_else(|| failed(&"this kernel does not offer Landlock"))?;
        let seal = if rules.seal {
            let seal = Seal::new(&rules.writable, &rules.cwd)
                .ok_or_else(|| failed(&"a path holds a NUL byte"))?;
            Some(Arc::new(seal))
        } else {
            None
        };
        Ok(Prepared {
            ruleset,
            proc_self: rules.readable.is_some(),
            seal,
        })
    }

    impl Prepared {
        /// Makes `command`'s child confine itself before it execs. The ruleset must
        /// outlive the spawn.
        pub fn apply_to(&self, command: &mut Command) {
            use std::os::unix::process::CommandExt;
            let fd = self.ruleset.as_raw_fd();
            let proc_self = self.proc_self;
            let seal = self.seal.clone();
            // SAFETY: the closure makes only async-signal-safe system calls, on
            // memory of its own stack or made before the fork (the seal's), and
            // allocates nothing. The namespace comes first: Landlock refuses mounts.
            unsafe {
                command.pre_exec(move || {
                    if let Some(seal) = &seal {
                        seal.apply()?;
                    }
                    restrict(fd, proc_self)
                });
            }
        }
    }

    /// In the child, after fork: `/proc/self`'s rule, then the restriction.
    fn restrict(ruleset: RawFd, proc_self: bool) -> io::Result<()> {
        if proc_self {
            // SAFETY: a constant C string; open(2) is async-signal-safe.
            let fd = unsafe {
                libc::open(
                    c"/proc/self".as_ptr(),
                    libc::O_PATH | libc::O_CLOEXEC | libc::O_DIRECTORY,
                )
            };
            if fd >= 0 {
                let attr = PathBeneathAttr {
                    allowed_access: ACCESS_READ_FILE | ACCESS_READ_DIR,
                    parent_fd: fd,
                };
                // SAFETY: `attr` is a valid landlock_path_beneath_attr on the stack.
                let added = unsafe {
                    libc::syscall(
                        libc::SYS_landlock_add_rule,
                        ruleset,
                        LANDLOCK_RULE_PATH_BENEATH,
                        &raw const attr,
                        0u32,
                    )
                };
                // SAFETY: our own descriptor.
                unsafe { libc::close(fd) };
                if added != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        // SAFETY: plain prctl(2) and landlock_restrict_self(2) calls.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::Rules;
    use crate::local::error::ConfineError;
    use std::process::Command;

    pub fn abi_version() -> Option<i32> {
        None
    }

    pub fn sealing_works() -> bool {
        false
    }

    /// Never made: there is no Landlock here.
    pub struct Prepared(());

    /// Refuses: there is no Landlock to build a ruleset for.
    pub fn prepare(_: &Rules) -> Result<Prepared, ConfineError> {
        Err(ConfineError::Unsupported)
    }

    impl Prepared {
        /// Nothing to apply.
        pub fn apply_to(&self, _: &mut Command) {}
    }
}

#[cfg(test)]
mod tests {
    use super::Promises;

    #[test]
    fn each_abi_says_what_holds_and_what_does_not() {
        // Linux 5.13 to 6.1: writes, but not truncation; --hermetic refuses.
        for abi in [1, 2] {
            let promises = Promises::of(abi, false);
            assert!(promises.held().is_empty(), "{abi}");
            assert!(promises.gaps()[0].starts_with("truncate a file outside"));
            assert!(promises.hermetic_refusal().is_some_and(|why| why
                .contains(&format!("(ABI {abi})"))
                && why.contains("truncate(2)")));
        }
        let v3 = Promises::of(3, false);
        assert_eq!(v3.held(), ["truncate a file outside (ABI 3)"]);
        assert!(v3.gaps()[0].starts_with("use ioctls on a device"));
        assert_eq!(v3.hermetic_refusal(), None);
        let v5 = Promises::of(5, false);
        assert!(v5.held()[1].starts_with("use ioctls"));
        assert!(v5.gaps()[0].starts_with("signal the user's other processes"));
        let v7 = Promises::of(7, false);
        assert_eq!(v7.held().len(), 3);
        assert!(v7.gaps()[0].starts_with("connect to unix sockets by path"));
        let v9 = Promises::of(9, false);
        assert_eq!(v9.held().len(), 4);
        // Metadata and the network are never Landlock's.
        for abi in 1..=10 {
            let gaps = Promises::of(abi, false).gaps();
            assert!(gaps.iter().any(|g| g.starts_with("change the metadata")));
            assert!(gaps.contains(&"use the network"));
        }
        // Sealed, metadata and truncation hold on every ABI, and --hermetic runs.
        for abi in [1, 7] {
            let sealed = Promises::of(abi, true);
            assert!(sealed.held()[0].starts_with("change a file outside or its metadata"));
            assert!(!sealed
                .gaps()
                .iter()
                .any(|g| g.starts_with("change the metadata") || g.starts_with("truncate")));
            assert_eq!(sealed.hermetic_refusal(), None);
        }
    }
}
