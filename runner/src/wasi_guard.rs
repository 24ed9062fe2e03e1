//! Checks in front of wasmtime-wasi's preview-1 calls, for what it does not check
//! itself: a cap on the bytes a guest stages (`--max-output-bytes`), and, on
//! Windows, guest paths that Windows would read as a drive, a device, a stream or
//! another name (`C:x`, `\\?\`, `NUL`, `a.o.`). Each check wraps the original
//! call: it looks at the arguments in guest memory, then refuses or passes through.

use std::collections::{BTreeSet, HashMap};
use wasmtime::{Caller, Extern, Func, Linker, Store, WasmParams, WasmResults};

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
    originals: HashMap<&'static str, Func>,
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
            originals: HashMap::new(),
            exceeded: None,
            refused_paths: Vec::new(),
        }
    }

    fn original(&self, name: &str) -> wasmtime::Result<Func> {
        self.originals
            .get(name)
            .copied()
            .ok_or_else(|| wasmtime::Error::msg(format!("no original {name}")))
    }

    /// Charges `bytes` more to the cap; a trap that ends the guest if it is exceeded.
    fn charge(&mut self, fd: i32, bytes: u64) -> wasmtime::Result<()> {
        let Some(cap) = self.checks.max_output_bytes else {
            return Ok(());
        };
        if self.stdio.contains(&fd) {
            return Ok(());
        }
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

/// The functions wrapped for each check.
const BUDGET_CALLS: &[&str] = &[
    "fd_write",
    "fd_pwrite",
    "fd_filestat_set_size",
    "fd_allocate",
    "fd_close",
    "fd_renumber",
];
const PATH_CALLS: &[&str] = &[
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_open",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
];

/// Puts the checks of `checks` in front of the WASI functions already in `linker`.
/// `store` keeps the originals, which the checks call.
pub fn install<T: 'static>(
    linker: &mut Linker<T>,
    store: &mut Store<T>,
    guard: fn(&mut T) -> &mut Guard,
) -> wasmtime::Result<()> {
    let checks = guard(store.data_mut()).checks;
    let mut names: Vec<&'static str> = Vec::new();
    if checks.max_output_bytes.is_some() {
        names.extend(BUDGET_CALLS);
    }
    if checks.windows_paths {
        names.extend(PATH_CALLS);
    }
    for name in names.iter().copied() {
        if let Ok(Extern::Func(func)) = linker.get(&mut *store, MODULE, name) {
            guard(store.data_mut()).originals.insert(name, func);
        }
    }
    linker.allow_shadowing(true);
    if checks.max_output_bytes.is_some() {
        add_budget_checks(linker, guard)?;
    }
    if checks.windows_paths {
        add_path_checks(linker, guard)?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// Calls the original `name` with `params`.
fn call<T, P: WasmParams, R: WasmResults>(
    caller: &mut Caller<'_, T>,
    guard: fn(&mut T) -> &mut Guard,
    name: &str,
    params: P,
) -> wasmtime::Result<R> {
    let original = guard(caller.data_mut()).original(name)?;
    original.typed::<P, R>(&*caller)?.call(caller, params)
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

fn add_budget_checks<T: 'static>(
    linker: &mut Linker<T>,
    guard: fn(&mut T) -> &mut Guard,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        move |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, written: i32| {
            let want = iovec_total(&mut caller, iovs, count);
            guard(caller.data_mut()).charge(fd, want)?;
            call::<T, _, i32>(&mut caller, guard, "fd_write", (fd, iovs, count, written))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        move |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, at: i64, written: i32| {
            let want = iovec_total(&mut caller, iovs, count);
            guard(caller.data_mut()).charge(fd, want)?;
            call::<T, _, i32>(
                &mut caller,
                guard,
                "fd_pwrite",
                (fd, iovs, count, at, written),
            )
        },
    )?;
    // Growing a file stages its new size (a sparse file is still a file of that size).
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        move |mut caller: Caller<'_, T>, fd: i32, size: i64| {
            guard(caller.data_mut()).charge(fd, size as u64)?;
            call::<T, _, i32>(&mut caller, guard, "fd_filestat_set_size", (fd, size))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        move |mut caller: Caller<'_, T>, fd: i32, at: i64, len: i64| {
            guard(caller.data_mut()).charge(fd, (at as u64).saturating_add(len as u64))?;
            call::<T, _, i32>(&mut caller, guard, "fd_allocate", (fd, at, len))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_close",
        move |mut caller: Caller<'_, T>, fd: i32| {
            let errno = call::<T, _, i32>(&mut caller, guard, "fd_close", fd)?;
            if errno == 0 {
                guard(caller.data_mut()).stdio.remove(&fd);
            }
            Ok(errno)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        move |mut caller: Caller<'_, T>, from: i32, to: i32| {
            let errno = call::<T, _, i32>(&mut caller, guard, "fd_renumber", (from, to))?;
            let stdio = &mut guard(caller.data_mut()).stdio;
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
fn refuse_path<T>(
    caller: &mut Caller<'_, T>,
    guard: fn(&mut T) -> &mut Guard,
    call_name: &str,
    ptr: i32,
    len: i32,
) -> Option<i32> {
    let path = guest_bytes(caller, ptr, len)?;
    let why = windows_path_hazard(&path)?;
    guard(caller.data_mut()).refused_paths.push(format!(
        "{call_name} {}: {why}",
        dtlto_mock::message::quoted(&String::from_utf8_lossy(&path))
    ));
    Some(ERRNO_PERM)
}

/// Wraps the WASI function `$name`, whose parameters are `$param: $type`, so that
/// each of its `(pointer, length)` paths is checked before the original runs.
macro_rules! check_paths {
    ($linker:ident, $guard:ident, $name:literal, ($($param:ident: $type:ty),*), $(($ptr:ident, $len:ident)),+) => {
        $linker.func_wrap(MODULE, $name, move |mut caller: Caller<'_, T>, $($param: $type),*| {
            $(
                if let Some(errno) = refuse_path(&mut caller, $guard, $name, $ptr, $len) {
                    return Ok(errno);
                }
            )+
            call::<T, _, i32>(&mut caller, $guard, $name, ($($param,)*))
        })?;
    };
}

#[rustfmt::skip]
fn add_path_checks<T: 'static>(
    linker: &mut Linker<T>,
    guard: fn(&mut T) -> &mut Guard,
) -> wasmtime::Result<()> {
    {
        check_paths!(linker, guard, "path_create_directory", (fd: i32, path: i32, len: i32), (path, len));
        check_paths!(linker, guard, "path_remove_directory", (fd: i32, path: i32, len: i32), (path, len));
        check_paths!(linker, guard, "path_unlink_file", (fd: i32, path: i32, len: i32), (path, len));
        check_paths!(linker, guard, "path_filestat_get",
            (fd: i32, flags: i32, path: i32, len: i32, out: i32), (path, len));
        check_paths!(linker, guard, "path_filestat_set_times",
            (fd: i32, flags: i32, path: i32, len: i32, atime: i64, mtime: i64, which: i32), (path, len));
        check_paths!(linker, guard, "path_link",
            (old_fd: i32, flags: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
            (old, old_len), (new, new_len));
        check_paths!(linker, guard, "path_open",
            (fd: i32, dirflags: i32, path: i32, len: i32, oflags: i32, base: i64, inheriting: i64,
             fdflags: i32, opened: i32),
            (path, len));
        check_paths!(linker, guard, "path_readlink",
            (fd: i32, path: i32, len: i32, buf: i32, size: i32, used: i32), (path, len));
        check_paths!(linker, guard, "path_rename",
            (fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
            (old, old_len), (new, new_len));
        // A link's content is a path too: Windows would follow `C:\` out of the sandbox.
        check_paths!(linker, guard, "path_symlink",
            (target: i32, target_len: i32, fd: i32, path: i32, len: i32),
            (target, target_len), (path, len));
    }
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
