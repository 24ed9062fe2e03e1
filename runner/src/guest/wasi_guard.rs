//! Checks in front of wasmtime-wasi's preview-1 calls, for what it does not check
//! itself: which files of a read-only preopen the guest may reach (the files the run
//! declares, not the whole directory), a cap on the bytes a guest stages
//! (`--max-output-bytes`) and on the entries it creates (`--max-entries`), and, on
//! Windows, guest paths that Windows would read as a drive, a device, a stream or
//! another name (`C:x`, `\\?\`, `NUL`, `a.o.`). Each check replaces a function of
//! the WASI linker: it looks at the arguments in guest memory, then refuses, or runs
//! wasmtime-wasi's own implementation of the call exactly as its linker would.
//! This file holds those replacements; what they allow and count is `guard_policy`,
//! the Windows syntax `windows_paths`.

use super::guard_policy::{shown_path, NAME_KEPT};
pub use super::guard_policy::{Checks, Guard, ReadDir};
use super::windows_paths::windows_path_hazard;
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as p1, WasiSnapshotPreview1};
use wasmtime_wasi::p1::WasiP1Ctx;
use wiggle::GuestMemory;

const MODULE: &str = "wasi_snapshot_preview1";
/// WASI errno values.
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_PERM: i32 = 63;
/// `oflags::creat`, `oflags::trunc`, `fdflags::append`, `filetype::directory`,
/// `filetype::regular_file`.
const OFLAGS_CREAT: i32 = 1;
const OFLAGS_TRUNC: i32 = 8;
const FDFLAGS_APPEND: u16 = 1;
const FILETYPE_DIRECTORY: u8 = 3;
const FILETYPE_REGULAR: u8 = 4;
/// Buffers a write may name (`IOV_MAX`, as Linux's `writev` and wasi-libc have it): the guard reads no larger iovec table.
const IOVECS_MAX: usize = 1024;

/// A store's data with the checks and the WASI context they stand in front of.
pub trait Guarded: Send + 'static {
    fn guard(&mut self) -> &mut Guard;
    fn wasi(&mut self) -> &mut WasiP1Ctx;
}

/// Puts the checks of `checks` (and the read scope `guard` holds) in front of the WASI
/// functions already in `linker`, and runs the hottest calls directly.
pub fn install<T: Guarded>(
    linker: &mut Linker<T>,
    checks: Checks,
    scopes_reads: bool,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    add_direct_calls(linker)?;
    if checks.any() || scopes_reads {
        add_descriptor_tracking(linker)?;
        if checks.max_output_bytes.is_some() {
            add_budget_checks(linker)?;
        }
        add_path_checks(linker)?;
        if scopes_reads {
            add_listing_check(linker)?;
        }
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
            finish(p1::$call(wasi, memory, $($arg),*))
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

/// Runs one of wasmtime-wasi's preview-1 calls to its end. With blocking allowed on
/// the guest's thread (see launch), a call on a file or on stdio is done at its first
/// poll, and the park, waker and budget of tokio's `block_on` around it would cost
/// more than a small read. A call that is not done waits in tokio, as `in_tokio`.
fn finish<F: std::future::Future>(call: F) -> F::Output {
    let mut call = std::pin::pin!(call);
    match wasmtime_wasi::runtime::poll_noop(call.as_mut()) {
        Some(done) => done,
        None => wasmtime_wasi::runtime::in_tokio(call),
    }
}

/// Memory of the runner's own, in which wasmtime-wasi's implementation answers the
/// guard's questions (a file's size, a descriptor's position) without touching the
/// guest's memory.
#[repr(C, align(8))]
struct Scratch<const N: usize>([u8; N]);

/// Runs wasmtime-wasi's `$call` on the runner's scratch memory; `Some(scratch)` if it
/// succeeded.
macro_rules! ask {
    ($caller:ident, $scratch:ident, sync $call:ident($($arg:expr),*)) => {
        ask!(@on $caller, $scratch, |wasi, memory| p1::$call(wasi, memory, $($arg),*))
    };
    ($caller:ident, $scratch:ident, $call:ident($($arg:expr),*)) => {
        ask!(@on $caller, $scratch, |wasi, memory| {
            finish(p1::$call(wasi, memory, $($arg),*))
        })
    };
    (@on $caller:ident, $scratch:ident, |$wasi:ident, $memory:ident| $run:expr) => {{
        let fuel = $caller.as_context_mut().hostcall_fuel();
        let $wasi = $caller.data_mut().wasi();
        $wasi.set_hostcall_fuel(fuel);
        let $memory = &mut GuestMemory::Unshared(&mut $scratch.0);
        matches!($run, Ok(0))
    }};
}

fn memory<T: Guarded>(caller: &mut Caller<'_, T>) -> Option<wasmtime::Memory> {
    caller
        .data_mut()
        .guard()
        .memory
        .or_else(|| caller.get_export("memory").and_then(Extern::into_memory))
}

/// The `len` bytes at the guest pointer `ptr` in `memory`, if they are all there:
/// WASI's pointers and lengths are unsigned 32-bit numbers in `i32`s.
fn in_guest(memory: &[u8], ptr: i32, len: usize) -> Option<&[u8]> {
    let start = ptr as u32 as usize;
    memory.get(start..start.checked_add(len)?)
}

/// A copy of the `len` bytes at `ptr` in guest memory, if they are all there.
fn guest_bytes<T: Guarded>(caller: &mut Caller<'_, T>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let memory = memory(caller)?;
    in_guest(memory.data(&*caller), ptr, len as u32 as usize).map(<[u8]>::to_vec)
}

/// The length of the first non-empty buffer of the iovec table at `iovs` (`count`
/// entries `{buf: u32, len: u32}`): wasmtime-wasi writes that one only, and the
/// guest's libc loops. The whole table is checked before anything is written, as
/// `writev` checks it: `Err(EINVAL)` for more than `IOVECS_MAX` entries, `Err(EFAULT)`
/// for a table that runs past the guest's memory (wasmtime-wasi would read it entry
/// by entry and write a first buffer in memory before it found the rest missing).
/// The table is read where it lies, never copied.
fn first_iovec_len<T: Guarded>(
    caller: &mut Caller<'_, T>,
    iovs: i32,
    count: i32,
) -> Result<u64, i32> {
    let count = count as u32 as usize;
    if count > IOVECS_MAX {
        return Err(ERRNO_INVAL);
    }
    let Some(memory) = memory(caller) else {
        return Ok(0); // the call itself fails for want of a memory
    };
    let table = in_guest(memory.data(&*caller), iovs, count * 8).ok_or(ERRNO_FAULT)?;
    Ok(table
        .chunks_exact(8)
        .map(|iov| u64::from(u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]])))
        .find(|&len| len > 0)
        .unwrap_or(0))
}

/// The size of the regular file `fd` refers to; `None` for anything else (stdio, a
/// directory, a descriptor that does not exist), which stages nothing.
fn file_size<T: Guarded>(caller: &mut Caller<'_, T>, fd: i32) -> Option<u64> {
    if caller.data_mut().guard().stdio.contains(&fd) {
        return None;
    }
    let mut scratch = Scratch([0; 64]);
    if !ask!(caller, scratch, fd_filestat_get(fd, 0)) || scratch.0[16] != FILETYPE_REGULAR {
        return None;
    }
    Some(u64::from_le_bytes(scratch.0[32..40].try_into().ok()?))
}

/// Whether `fd` was opened to append: its writes go to the end, wherever its position
/// or their offset.
fn appends<T: Guarded>(caller: &mut Caller<'_, T>, fd: i32) -> bool {
    let mut scratch = Scratch([0; 64]);
    ask!(caller, scratch, fd_fdstat_get(fd, 0))
        && u16::from_le_bytes([scratch.0[2], scratch.0[3]]) & FDFLAGS_APPEND != 0
}

/// The position of `fd`.
fn position<T: Guarded>(caller: &mut Caller<'_, T>, fd: i32) -> Option<u64> {
    let mut scratch = Scratch([0; 64]);
    if !ask!(caller, scratch, sync fd_tell(fd, 0)) {
        return None;
    }
    Some(u64::from_le_bytes(scratch.0[0..8].try_into().ok()?))
}

/// Runs a call that may grow the file `fd` (of `size` bytes now) to at most `end`
/// bytes: that growth is charged before it runs (a trap instead if it would pass the
/// cap), then the charge is set to what the file really grew by.
fn growing<T: Guarded>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    end: impl FnOnce(&mut Caller<'_, T>, u64) -> u64,
    call: impl FnOnce(&mut Caller<'_, T>) -> wasmtime::Result<i32>,
) -> wasmtime::Result<i32> {
    let Some(before) = file_size(caller, fd) else {
        return call(caller);
    };
    let end = end(caller, before);
    let most = end.saturating_sub(before);
    caller.data_mut().guard().charge_staged(most)?;
    let errno = call(caller)?;
    if let Some(after) = file_size(caller, fd) {
        let guard = caller.data_mut().guard();
        guard.written = guard.written.saturating_sub(most);
        guard.resized(before, after)?;
    }
    Ok(errno)
}

/// The calls a copy makes for every block, unchecked, but run by `finish` instead of
/// the `block_on` of wasmtime-wasi's own linker.
fn add_direct_calls<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    // Both take a descriptor, an iovec array, its length and where to store a count.
    for (name, reads) in [("fd_read", true), ("fd_write", false)] {
        linker.func_wrap(
            MODULE,
            name,
            move |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, done: i32| {
                if reads {
                    wasi!(caller, fd_read(fd, iovs, count, done))
                } else {
                    wasi!(caller, fd_write(fd, iovs, count, done))
                }
            },
        )?;
    }
    Ok(())
}

fn add_budget_checks<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, written: i32| {
            let len = match first_iovec_len(&mut caller, iovs, count) {
                Ok(len) => len,
                Err(errno) => return Ok(errno),
            };
            growing(
                &mut caller,
                fd,
                |caller, size| {
                    let start = if appends(caller, fd) {
                        size
                    } else {
                        position(caller, fd).unwrap_or(size)
                    };
                    start.saturating_add(len)
                },
                |mut caller| wasi!(caller, fd_write(fd, iovs, count, written)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_pwrite",
        |mut caller: Caller<'_, T>, fd: i32, iovs: i32, count: i32, at: i64, written: i32| {
            let len = match first_iovec_len(&mut caller, iovs, count) {
                Ok(len) => len,
                Err(errno) => return Ok(errno),
            };
            growing(
                &mut caller,
                fd,
                // Appending ignores the offset.
                |caller, size| {
                    let start = if appends(caller, fd) { size } else { at as u64 };
                    start.saturating_add(len)
                },
                |mut caller| wasi!(caller, fd_pwrite(fd, iovs, count, at, written)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_filestat_set_size",
        |mut caller: Caller<'_, T>, fd: i32, size: i64| {
            growing(
                &mut caller,
                fd,
                |_, _| size as u64,
                |mut caller| wasi!(caller, fd_filestat_set_size(fd, size)),
            )
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_allocate",
        |mut caller: Caller<'_, T>, fd: i32, at: i64, len: i64| {
            growing(
                &mut caller,
                fd,
                |_, _| (at as u64).saturating_add(len as u64),
                |mut caller| wasi!(caller, sync fd_allocate(fd, at, len)),
            )
        },
    )?;
    Ok(())
}

/// `fd_close` and `fd_renumber`, so that the guard knows what each descriptor is.
fn add_descriptor_tracking<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "fd_close", |mut caller: Caller<'_, T>, fd: i32| {
        let errno = wasi!(caller, fd_close(fd))?;
        if errno == 0 {
            caller.data_mut().guard().forget(fd);
        }
        Ok(errno)
    })?;
    linker.func_wrap(
        MODULE,
        "fd_renumber",
        |mut caller: Caller<'_, T>, from: i32, to: i32| {
            let errno = wasi!(caller, fd_renumber(from, to))?;
            let guard = caller.data_mut().guard();
            if errno == 0 && from != to {
                let stdio = guard.stdio.remove(&from);
                let scoped = guard.scoped.remove(&from);
                guard.forget(to);
                if stdio {
                    guard.stdio.insert(to);
                }
                if let Some(dir) = scoped {
                    guard.scoped.insert(to, dir);
                }
            }
            Ok(errno)
        },
    )?;
    Ok(())
}

/// A scoped read-only preopen lists as empty: its other names are not the guest's to
/// see, and the granted ones it knows from its arguments. Its own stat is that of
/// an empty directory with nothing of the host's in it (device, inode, links, size
/// and times all 0, as wasmtime-wasi gives stdio): the directory itself is not
/// granted, so the guest sees no more of it than that it is one.
fn add_listing_check<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_filestat_get",
        |mut caller: Caller<'_, T>, fd: i32, out: i32| {
            if !caller.data_mut().guard().scoped.contains_key(&fd) {
                return wasi!(caller, fd_filestat_get(fd, out));
            }
            let Some(memory) = memory(&mut caller) else {
                wasmtime::bail!("missing required memory export");
            };
            // `filestat`: dev, ino, filetype (a byte at 16), nlink, size, atim, mtim,
            // ctim; 64 bytes, aligned to 8.
            let mut stat = [0u8; 64];
            stat[16] = FILETYPE_DIRECTORY;
            let at = out as u32 as usize;
            match memory.data_mut(&mut caller).get_mut(at..at + stat.len()) {
                Some(place) if at.is_multiple_of(8) => {
                    place.copy_from_slice(&stat);
                    Ok(0)
                }
                _ => Ok(ERRNO_FAULT),
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_readdir",
        |mut caller: Caller<'_, T>, fd: i32, buf: i32, len: i32, cookie: i64, used: i32| {
            if !caller.data_mut().guard().scoped.contains_key(&fd) {
                return wasi!(caller, fd_readdir(fd, buf, len, cookie, used));
            }
            let Some(memory) = memory(&mut caller) else {
                wasmtime::bail!("missing required memory export");
            };
            let at = used as u32 as usize;
            match memory.data_mut(&mut caller).get_mut(at..at + 4) {
                Some(out) if at.is_multiple_of(4) => {
                    out.copy_from_slice(&0u32.to_le_bytes());
                    Ok(0)
                }
                _ => Ok(ERRNO_FAULT),
            }
        },
    )?;
    Ok(())
}

/// `Some(errno)` if any of `paths` (guest memory `(ptr, len)`, under the directory
/// descriptor `fd` where it is one) must not reach wasmtime-wasi. Paths Windows would
/// misread are refused as such first, then reads beyond what is granted.
fn refuse_paths<T: Guarded>(
    caller: &mut Caller<'_, T>,
    call_name: &str,
    paths: &[(Option<i32>, i32, i32)],
) -> Option<i32> {
    // Most paths (under the staging, on a POSIX host) need no look at all.
    let guard = caller.data_mut().guard();
    let windows = guard.checks.windows_paths;
    if !windows
        && !paths
            .iter()
            .any(|(fd, ..)| fd.is_some_and(|fd| guard.scoped.contains_key(&fd)))
    {
        return None;
    }
    // The paths are looked at where they lie in guest memory, never copied: a path
    // may be as long as the guest's memory.
    let memory = memory(caller)?;
    let (bytes, host) = memory.data_and_store_mut(&mut *caller);
    let mut texts = Vec::with_capacity(paths.len());
    for &(fd, ptr, len) in paths {
        // The original refuses a path out of bounds.
        texts.push((fd, in_guest(bytes, ptr, len as u32 as usize)?));
    }
    let guard = host.guard();
    for (_, path) in texts.iter().filter(|_| windows) {
        if let Some(why) = windows_path_hazard(path) {
            guard.refuse(|_| {
                let (shown, cut) = shown_path(path);
                format!(
                    "{call_name} {}{cut}: {why}",
                    dtlto_mock::message::quoted(&String::from_utf8_lossy(shown))
                )
            });
            return Some(ERRNO_PERM);
        }
    }
    texts
        .iter()
        .find_map(|(fd, path)| guard.refuse_read(call_name, (*fd)?, path))
}

/// Wraps the WASI function `$name`, whose parameters are `$param: $type`, so that
/// each of its paths (`fd` the directory it is under, or `None` for a link's
/// content) is checked before wasmtime-wasi runs it. `creates`: a success creates
/// an entry; `moves`: names may stop naming what they named.
macro_rules! check_paths {
    ($linker:ident, $name:ident $(, $effect:ident)?, ($($param:ident: $type:ty),*),
     $(($fd:expr, $ptr:ident, $len:ident)),+) => {
        $linker.func_wrap(MODULE, stringify!($name), |mut caller: Caller<'_, T>, $($param: $type),*| {
            if let Some(errno) = refuse_paths(&mut caller, stringify!($name),
                &[$(($fd, $ptr, $len)),+]) {
                return Ok(errno);
            }
            let effect: &[&str] = &[$(stringify!($effect))?];
            let guard = caller.data_mut().guard();
            match effect {
                ["creates"] => guard.may_create()?,
                ["moves"] => guard.forget_names(),
                _ => {}
            }
            let errno = wasi!(caller, $name($($param),*))?;
            if effect == ["creates"] && errno == 0 {
                caller.data_mut().guard().created += 1;
            }
            Ok(errno)
        })?;
    };
}

#[rustfmt::skip]
fn add_path_checks<T: Guarded>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    check_paths!(linker, path_create_directory, creates, (fd: i32, path: i32, len: i32),
        (Some(fd), path, len));
    check_paths!(linker, path_remove_directory, moves, (fd: i32, path: i32, len: i32),
        (Some(fd), path, len));
    check_paths!(linker, path_unlink_file, moves, (fd: i32, path: i32, len: i32),
        (Some(fd), path, len));
    check_paths!(linker, path_filestat_get,
        (fd: i32, flags: i32, path: i32, len: i32, out: i32), (Some(fd), path, len));
    check_paths!(linker, path_filestat_set_times,
        (fd: i32, flags: i32, path: i32, len: i32, atime: i64, mtime: i64, which: i32),
        (Some(fd), path, len));
    check_paths!(linker, path_link, creates,
        (old_fd: i32, flags: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
        (Some(old_fd), old, old_len), (Some(new_fd), new, new_len));
    check_paths!(linker, path_readlink,
        (fd: i32, path: i32, len: i32, buf: i32, size: i32, used: i32), (Some(fd), path, len));
    check_paths!(linker, path_rename, moves,
        (fd: i32, old: i32, old_len: i32, new_fd: i32, new: i32, new_len: i32),
        (Some(fd), old, old_len), (Some(new_fd), new, new_len));
    // A link's content is a path too (Windows would follow `C:\` out of the
    // sandbox), and it is staged bytes.
    linker.func_wrap(
        MODULE,
        "path_symlink",
        |mut caller: Caller<'_, T>, target: i32, target_len: i32, fd: i32, path: i32, len: i32| {
            let paths = [(None, target, target_len), (Some(fd), path, len)];
            if let Some(errno) = refuse_paths(&mut caller, "path_symlink", &paths) {
                return Ok(errno);
            }
            let guard = caller.data_mut().guard();
            guard.may_create()?;
            guard.charge_staged(u64::from(target_len as u32))?;
            let errno = wasi!(caller, path_symlink(target, target_len, fd, path, len))?;
            if errno == 0 {
                caller.data_mut().guard().created += 1;
            }
            Ok(errno)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "path_open",
        |mut caller: Caller<'_, T>, fd: i32, dirflags: i32, path: i32, len: i32, oflags: i32,
         base: i64, inheriting: i64, fdflags: i32, opened: i32| {
            if let Some(errno) = refuse_paths(&mut caller, "path_open", &[(Some(fd), path, len)]) {
                return Ok(errno);
            }
            // Whether this open may create an entry, and so counts: one that creates,
            // unless an earlier open created that name (looking would cost a stat).
            // Only names of at most NAME_KEPT bytes are copied, to be remembered.
            let counts = oflags & OFLAGS_CREAT != 0
                && caller.data_mut().guard().checks.max_entries.is_some();
            let name = (counts && len as u32 as usize <= NAME_KEPT)
                .then(|| guest_bytes(&mut caller, path, len))
                .flatten();
            let known = name.as_ref().is_some_and(|name| {
                caller
                    .data_mut()
                    .guard()
                    .opened_names
                    .get(&fd)
                    .is_some_and(|names| names.contains(name))
            });
            let creates = counts && !known;
            // What a truncation frees, from what the file held.
            let truncated = if oflags & OFLAGS_TRUNC != 0
                && caller.data_mut().guard().checks.max_output_bytes.is_some()
            {
                lookup(&mut caller, fd, dirflags, path, len)
                    .filter(|(kind, _)| *kind == FILETYPE_REGULAR)
            } else {
                None
            };
            if creates {
                caller.data_mut().guard().may_create()?;
            }
            let errno = wasi!(caller, path_open(fd, dirflags, path, len, oflags, base,
                inheriting, fdflags, opened))?;
            if errno == 0 {
                if let Some(new) = guest_bytes(&mut caller, opened, 4) {
                    let new = i32::from_le_bytes([new[0], new[1], new[2], new[3]]);
                    caller.data_mut().guard().forget(new);
                    if let Some((_, before)) = truncated {
                        if let Some(after) = file_size(&mut caller, new) {
                            caller.data_mut().guard().resized(before, after)?;
                        }
                    }
                }
                if creates {
                    let guard = caller.data_mut().guard();
                    guard.created += 1;
                    if let Some(name) = name {
                        guard.remember_name(fd, name);
                    }
                }
            }
            Ok(errno)
        },
    )?;
    Ok(())
}

/// The type and size of what `path` (guest memory at `ptr`) names under `fd`, a
/// final link followed as `flags` say; `None` if there is nothing there: what an
/// open that truncates frees.
fn lookup<T: Guarded>(
    caller: &mut Caller<'_, T>,
    fd: i32,
    flags: i32,
    ptr: i32,
    len: i32,
) -> Option<(u8, u64)> {
    // Longer paths are not looked up (the truncation is then not given back), and
    // not copied.
    if len as u32 > 4096 {
        return None;
    }
    let path = guest_bytes(caller, ptr, len)?;
    let mut scratch = Scratch([0; 4096 + 64]);
    scratch
        .0
        .get_mut(64..64 + path.len())?
        .copy_from_slice(&path);
    if !ask!(
        caller,
        scratch,
        path_filestat_get(fd, flags, 64, path.len() as i32, 0)
    ) {
        return None;
    }
    let size = u64::from_le_bytes(scratch.0[32..40].try_into().ok()?);
    Some((scratch.0[16], size))
}
