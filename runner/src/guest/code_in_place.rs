//! Runs the embedded guest's machine code where the binary holds it.
//!
//! `Module::deserialize` copies the precompiled guest (about 1.7 MB) into fresh
//! memory before making it executable; on a one-job run, faulting in that copy and
//! unmapping it again was the largest part of start-up. The precompiled bytes are
//! already immutable in the binary's read-only data, so the runner's engine for the
//! embedded guest publishes them in place instead: `Module::deserialize_raw` with a
//! code memory that makes their pages read+execute. Nothing is ever written there, so
//! there is no instruction cache to synchronise.

use super::guest_module::{PageAligned, PAGE_ALIGNMENT};
use std::ops::Range;
use wasmtime::CustomCodeMemory;

/// Publishes code that lies inside one `PageAligned` static.
pub struct CodeInPlace {
    bounds: Range<usize>,
}

impl CodeInPlace {
    pub fn new(region: &'static PageAligned<[u8]>) -> Self {
        let start = region as *const PageAligned<[u8]> as *const u8 as usize;
        CodeInPlace {
            bounds: start..start + std::mem::size_of_val(region),
        }
    }

    /// The whole pages that hold `[ptr, ptr + len)`: they stay inside `bounds`
    /// because the static is aligned and padded to PAGE_ALIGNMENT.
    fn pages(&self, ptr: *const u8, len: usize) -> wasmtime::Result<Range<usize>> {
        let page = page_size();
        if page > PAGE_ALIGNMENT {
            wasmtime::bail!("pages of {page} bytes are larger than the embedded code's alignment");
        }
        let start = ptr as usize & !(page - 1);
        let end = (ptr as usize + len).next_multiple_of(page);
        if start < self.bounds.start || end > self.bounds.end {
            wasmtime::bail!("code at {ptr:p} (+{len}) is not inside the embedded guest");
        }
        Ok(start..end)
    }
}

impl CustomCodeMemory for CodeInPlace {
    // Any alignment: `pages` widens the range to whole pages itself, and refuses (so
    // the runner falls back to copying) where wasmtime's own check would panic.
    fn required_alignment(&self) -> usize {
        1
    }

    fn publish_executable(&self, ptr: *const u8, len: usize) -> wasmtime::Result<()> {
        make_executable(self.pages(ptr, len)?)
    }

    /// Leaves the code executable: the bytes never change, and the runner keeps its
    /// one module of them for the life of the process, so there is nothing to hide.
    fn unpublish_executable(&self, _ptr: *const u8, _len: usize) -> wasmtime::Result<()> {
        Ok(())
    }
}

#[cfg(unix)]
fn page_size() -> usize {
    rustix::param::page_size()
}

#[cfg(unix)]
fn make_executable(pages: Range<usize>) -> wasmtime::Result<()> {
    use rustix::mm::{mprotect, MprotectFlags};
    // SAFETY: the pages lie inside the embedded guest's static (checked by `pages`),
    // which nothing writes, so changing whether they may execute affects no other data.
    unsafe {
        mprotect(
            pages.start as *mut _,
            pages.len(),
            MprotectFlags::READ | MprotectFlags::EXEC,
        )
    }
    .map_err(|e| wasmtime::format_err!("cannot change the embedded code's protection: {e}"))
}

#[cfg(windows)]
fn page_size() -> usize {
    use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
    // SAFETY: GetSystemInfo only fills in the structure it is given.
    let info = unsafe {
        let mut info: SYSTEM_INFO = std::mem::zeroed();
        GetSystemInfo(&mut info);
        info
    };
    info.dwPageSize as usize
}

#[cfg(windows)]
fn make_executable(pages: Range<usize>) -> wasmtime::Result<()> {
    use windows_sys::Win32::System::Memory::{
        VirtualProtect, PAGE_EXECUTE_READ, PAGE_PROTECTION_FLAGS,
    };
    let mut previous: PAGE_PROTECTION_FLAGS = 0;
    // SAFETY: as for unix: the pages are the embedded guest's, which nothing writes.
    let ok = unsafe {
        VirtualProtect(
            pages.start as *const _,
            pages.len(),
            PAGE_EXECUTE_READ,
            &mut previous,
        )
    };
    if ok == 0 {
        wasmtime::bail!(
            "cannot change the embedded code's protection: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}
