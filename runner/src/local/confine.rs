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
//! `--hermetic` only what `Rules::readable` lists. Landlock does not govern what is
//! already open (the inherited stdin, stdout and stderr), path resolution itself
//! (`stat`, following links), nor anything but the file system.

use std::path::PathBuf;

/// What one job may touch.
#[derive(Debug, Default)]
pub struct Rules {
    /// Directories (and files) the job may write beneath.
    pub writable: Vec<PathBuf>,
    /// Directories and files the job may read; `None`: everything.
    pub readable: Option<Vec<PathBuf>>,
}

/// The Landlock ABI version this kernel offers, if any.
pub fn abi_version() -> Option<i32> {
    imp::abi_version()
}

pub use imp::{prepare, Prepared};

#[cfg(target_os = "linux")]
mod imp {
    use super::Rules;
    use crate::error::ConfineError;
    use landlock::{
        Access, AccessFs, PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI,
    };
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::process::Command;

    /// The file-system rights handled (denied unless a rule grants them): those of
    /// ABI 3 (Linux 6.2), which include renaming across directories and truncation.
    /// Later ABIs add device ioctls, networking and scopes, which a compile job's
    /// confinement does not need; the crate leaves out what an older kernel lacks.
    const ABI_HANDLED: ABI = ABI::V3;
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
            .create()
            .map_err(|e| failed(&e))?;
        let mut add = |path: &std::path::Path, access| -> Result<(), ConfineError> {
            match PathFd::new(path) {
                Ok(fd) => {
                    (&mut ruleset)
                        .add_rule(PathBeneath::new(fd, access))
                        .map_err(|e| failed(&format!("{}: {e}", path.display())))?;
                    Ok(())
                }
                // Not there: nothing to grant.
                Err(_) if !path.exists() => Ok(()),
                Err(e) => Err(failed(&format!("{}: {e}", path.display()))),
            }
        };
        for path in &rules.writable {
            add(path, all)?;
        }
        add(std::path::Path::new("/dev/null"), all)?;
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
        Ok(Prepared {
            ruleset,
            proc_self: rules.readable.is_some(),
        })
    }

    impl Prepared {
        /// Makes `command`'s child confine itself before it execs. The ruleset must
        /// outlive the spawn.
        pub fn apply_to(&self, command: &mut Command) {
            use std::os::unix::process::CommandExt;
            let fd = self.ruleset.as_raw_fd();
            let proc_self = self.proc_self;
            // SAFETY: the closure makes only async-signal-safe system calls, on
            // memory of its own stack, and allocates nothing.
            unsafe {
                command.pre_exec(move || restrict(fd, proc_self));
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
    use crate::error::ConfineError;
    use std::process::Command;

    pub fn abi_version() -> Option<i32> {
        None
    }

    /// Never made: there is no Landlock here.
    pub struct Prepared(());

    pub fn prepare(_: &Rules) -> Result<Prepared, ConfineError> {
        Err(ConfineError::Unsupported)
    }

    impl Prepared {
        pub fn apply_to(&self, _: &mut Command) {}
    }
}
