//! Checks in front of wasmtime-wasi's preview-1 calls, for what it does not check
//! itself: a cap on the bytes a guest stages (`--max-output-bytes`), and, on
//! Windows, guest paths that Windows would read as a drive, a device, a stream or
//! another name (`C:x`, `\\?\`, `NUL`, `a.o.`). Each check replaces a function of
//! the WASI linker: it looks at the arguments in guest memory, then refuses, or runs
//! wasmtime-wasi's own implementation of the call exactly as its linker would.

use std::collections::BTreeSet;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmtime_wasi::p1::WasiP1Ctx;
use wiggle::GuestMemory;

const MODULE: &str = "wasi_snapshot_preview1";
/// WASI errno values.
const ERRNO_PERM: i32 = 63;

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Bytes the guest may write to files, in all.
    pub max_output_bytes: Option<u64>,
    /// Refuse paths with Windows drive, device or stream syntax.
    pub windows_paths: bool,
}

impl Checks {
    pub fn any(&self) -> bool {
        self.max_output_bytes.is_some() || self.windows_paths
    }
}

/// The state of the checks in one store.
pub struct Guard {
    checks: Checks,
    /// Bytes written to files so far.
    written: u64,
    /// Descriptors that are the guest's stdin, stdout and stderr: writes to them are
    /// not staged. They follow `fd_renumber` and `fd_close`.
    stdio: BTreeSet<i32>,
    /// The cap the guest ran into, in words.
    pub exceeded: Option<String>,
    /// Guest paths refused, with the reason, for the report.
    pub refused_paths: Vec<String>,
}

impl Guard {
    pub fn new(checks: Checks) -> Guard {
        Guard {
            checks,
            written: 0,
            stdio: BTreeSet::from([0, 1, 2]),
            exceeded: None,
            refused_paths: Vec::new(),
        }
    }

    /// Charges `bytes` written to `fd` to the cap, unless `fd` is stdio; a trap that
    /// ends the guest if the cap is exceeded.
    fn charge(&mut self, fd: i32, bytes: u64) -> wasmtime::Result<()> {
        if self.stdio.contains(&fd) {
            return Ok(());
        }
        self.charge_staged(bytes)
    }

    /// Charges `bytes` staged in a file or a link to the cap.
    fn charge_staged(&mut self, bytes: u64) -> wasmtime::Result<()> {
        let Some(cap) = self.checks.max_output_bytes else {
            return Ok(());
        };
        let total = self.written.saturating_add(bytes);
        if total > cap {
            let message = format!(
                "the distributor tried to stage more than {cap} bytes of output \
                 (--max-output-bytes {cap})"
            );
            self.exceeded.get_or_insert(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        self.written = total;
        Ok(())
    }
}

/// A store's data with the checks and the WASI context they stand in front of.
pub trait Guarded: Send + 'static {
    fn guard(&mut self) -> &mut Guard;
    fn wasi(&mut self) -> &mut WasiP1Ctx;
}

/// Puts the checks of `checks` in front of the WASI functions already in `linker`.
pub fn install<T: Guarded>(linker: &mut Linker<T>, checks: Checks) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    if checks.max_output_bytes.is_some() {
        add_budget_checks(linker)?;
    }
    if checks.windows_paths {
        add_path_checks(linker)?;
    }
    if checks.any() {
        add_symlink_checks(linker)?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Runs wasmtime-wasi's implementation of `$call` for the guest, as the linker that
/// `add_to_linker_sync` builds would: on the caller's exported memory, with the
/// store's per-call copy allowance. Most calls are asynchronous, run to completion
/// here; `sync` marks those that are not.
macro_rules! wasi {
    ($caller:ident, sync $call:ident($($arg:expr),*)) => {
        wasi!(@on $caller, |wasi, memory| p1::$call(wasi, memory, $($arg),*))
    };
    ($caller:ident, $call:ident($($arg:expr),*)) => {
        wasi!(@on $caller, |wasi, memory| {
            wasmtime_wasi::runtime::in_tokio(p1::$call(wasi, memory, $($arg),*))
        })
    };
    (@on $caller:ident, |$wasi:ident, $memory:ident| $run:expr) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        let Some(memory) = memory(&mut $caller) else {
            wasmtime::bail!("missing required memory export");
        };
        let (bytes, host) = memory.data_and_store_mut(&mut $caller);
        let $wasi = host.wasi();
        $wasi.set_hostcall_fuel(fuel);
        let $memory = &mut GuestMemory::Unshared(bytes);
        $run
    }};
}

fn memory<T>(caller: &mut Caller<'_, T>) -> Option<wasmtime::Memory> {
    caller.get_export("memory").and_then(Extern::into_memory)
}

/// `len` bytes at `ptr` in guest memory, if they are all there.
fn guest_bytes<T>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = memory(caller)?;
    let start = ptr as u32 as usize;
    let end = start.checked_add(len as u32 as usize)?;
    memory.data(&*caller).get(start..end).map(<[u8]>::to_vec)
}

/// The total length of an iovec array (`{buf: u32, len: u32}` each).
fn iovec_total<T>(caller: &mut Caller<'_, T>, iovs: i32, count: i32) -> u64 {
    let Some(table) = guest_bytes(caller, iovs, count.saturating_mul(8)) else {
        return 0; // the original refuses it
    };
    table
        .chunks_exact(8)
        .map(|iov| u64::from(u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]])))
        .sum()
}

fn add_budget_checks<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, written: i32| {
            let want = iovec_total(&mut caller, iovs, count);
            caller.data_mut().guard().charge(fd, want)?;
            wasi!(caller, fd_write(fd, iovs, count, written))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, at: i64, written: i32| {
            let want = iovec_total(&mut caller, iovs, count);
            caller.data_mut().guard().charge(fd, want)?;
            wasi!(caller, fd_pwrite(fd, iovs, count, at, written))
        },
    )?;
    // Growing a file stages its new size (a sparse file is still a file of that size).
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, T>, fd: i32, size: i64| {
            caller.data_mut().guard().charge(fd, size as u64)?;
            wasi!(caller, fd_filestat_set_size(fd, size))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |mut caller: Caller<'_, T>, fd: i32, at: i64, len: i64| {
            let end = (at as u64).saturating_add(len as u64);
            caller.data_mut().guard().charge(fd, end)?;
            wasi!(caller, sync fd_allocate(fd, at, len))
        },
    )?;
    linker.func_wrap(MODULE, "fd_close", |mut caller: Caller<'_, T>, fd: i32| {
        let errno = wasi!(caller, fd_close(fd))?;
        if errno == 0 {
            caller.data_mut().guard().stdio.remove(&fd);
        }
        Ok(errno)
    })?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, T>, from: i32, to: i32| {
            let errno = wasi!(caller, fd_renumber(from, to))?;
            let stdio = &mut caller.data_mut().guard().stdio;
            if errno == 0 && from != to {
                if stdio.remove(&from) {
                    stdio.insert(to);
                } else {
                    stdio.remove(&to);
                }
            }
            Ok(errno)
        },
    )?;
    Ok(())
}

/// Why Windows would not read `path` as the plain relative name it is in WASI, if
/// it would not.
pub fn windows_path_hazard(path: &[u8]) -> Option<&'static str> {
    if path.contains(&b'\\') {
        return Some("a backslash, which Windows reads as a separator");
    }
    if path.contains(&b':') {
        return Some("a colon, which Windows reads as a drive or a stream");
    }
    for name in path.split(|&b| b == b'/') {
        if matches!(name, b"" | b"." | b"..") {
            continue;
        }
        if name.ends_with(b".") || name.ends_with(b" ") {
            return Some("a name ending in a dot or a space, which Windows strips");
        }
        if is_dos_device(name) {
            return Some("a DOS device name");
        }
    }
    None
}

/// `NUL`, `con.txt`, `COM1`, `lpt9.o`...: names Windows gives to devices in every
/// directory, whatever their extension.
fn is_dos_device(name: &[u8]) -> bool {
    let stem = name.split(|&b| b == b'.').next().unwrap_or(name);
    let stem = stem.trim_ascii_end().to_ascii_uppercase();
    match stem.as_slice() {
        b"CON" | b"PRN" | b"AUX" | b"NUL" | b"CONIN$" | b"CONOUT$" => true,
        [b'C', b'O', b'M', digit] | [b'L', b'P', b'T', digit] => digit.is_ascii_digit(),
        // COM¹, LPT² ... in UTF-8.
        [b'C', b'O', b'M', 0xc2, 0xb9 | 0xb2 | 0xb3]
        | [b'L', b'P', b'T', 0xc2, 0xb9 | 0xb2 | 0xb3] => true,
        _ => false,
    }
}

/// `Some(errno)` if the path at `ptr` must not reach wasmtime-wasi.
fn refuse_path<T: Guarded>(
    caller: &mut Caller<'_, T>,
    call_name: &str,
    ptr: i32,
    len: i32,
) -> Option<i32> {
    let path = guest_bytes(caller, ptr, len)?;
    let why = windows_path_hazard(&path)?;
    caller.data_mut().guard().refused_paths.push(format!(
        "{call_name} {}: {why}",
        dtlto_mock::message::quoted(&String::from_utf8_lossy(&path))
    ));
    Some(ERRNO_PERM)
}

/// Wraps the WASI function `$name`, whose parameters are `$param: $type`, so that
/// each of its `(pointer, length)` paths is checked before wasmtime-wasi runs it.
macro_rules! check_paths {
    ($linker:ident, $name:ident, ($($param:ident: $type:ty),*), $(($ptr:ident, $len:ident)),+) => {
        $linker.func_wrap(MODULE, stringify!($name), |mut caller: Caller<'_, T>, $($param: $type),*| {
            $(
                if let Some(errno) = refuse_path(&mut caller, stringify!($name), $ptr, $len) {
                    return Ok(errno);
                }
            )+
            wasi!(caller, $name($($param),*))
        })?;
    };
}

#[rustfmt::skip]
fn add_path_checks<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    check_paths!(linker, path_create_directory, (fd: i32, path: i32, len: i32), (path, len));
    check_paths!(linker, path_remove_directory, (fd: i32, path: i32, len: i32), (path, len));
    check_paths!(linker, path_unlink_file, (fd: i32, path: i32, len: i32), (path, len));
    check_paths!(linker, path_filestat_get,
        (fd: i32, flags: i32, path: i32, len: i32, out: i32), (path, len));
    check_paths!(linker, path_filestat_set_times,
        (fd: i32, flags: i32, path: i32, len: i32, atime: i64, mtime: i64, which: i32), (path, len));
    check_paths!(linker, path_link,
        (old_fd: i32, flags: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
        (old, old_len), (new, new_len));
    check_paths!(linker, path_open,
        (fd: i32, dirflags: i32, path: i32, len: i32, oflags: i32, base: i64, inheriting: i64,
         fdflags: i32, opened: i32),
        (path, len));
    check_paths!(linker, path_readlink,
        (fd: i32, path: i32, len: i32, buf: i32, size: i32, used: i32), (path, len));
    check_paths!(linker, path_rename,
        (fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
        (old, old_len), (new, new_len));
    Ok(())
}

/// `path_symlink` under both checks: a link's content is a path too (Windows would
/// follow `C:\` out of the sandbox), and it is staged bytes.
fn add_symlink_checks<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, T>, target: i32, target_len: i32, fd: i32, path: i32, len: i32| {
            if caller.data_mut().guard().checks.windows_paths {
                for (ptr, len) in [(target, target_len), (path, len)] {
                    if let Some(errno) = refuse_path(&mut caller, "path_symlink", ptr, len) {
                        return Ok(errno);
                    }
                }
            }
            caller
                .data_mut()
                .guard()
                .charge_staged(u64::from(target_len as u32))?;
            wasi!(caller, path_symlink(target, target_len, fd, path, len))
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_path_syntax_is_refused_and_plain_names_pass() {
        for path in [
            "C:foo",
            "C:\\",
            "\\\\?\\C:\\",
            "\\\\.\\pipe",
            "Z:..",
            "\\\\server\\share",
            "NUL",
            "con",
            "COM1",
            "aux.txt",
            "out/lpt9.o",
            "a.o:stream",
            "a.o.",
            "a.o ",
            "COM\u{b9}",
        ] {
            assert!(
                windows_path_hazard(path.as_bytes()).is_some(),
                "{path:?} passed"
            );
        }
        for path in [
            "a.o",
            "out/x.native.o",
            "../in.o",
            ".",
            "console.o",
            "nul-ish.o",
            "COM10",
            "t.a(t1.o at 1234).1.native.o",
            "Ωμέγα.o",
        ] {
            assert_eq!(
                windows_path_hazard(path.as_bytes()),
                None,
                "{path:?} refused"
            );
        }
    }
}
