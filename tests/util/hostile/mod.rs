//! Hostile WASI guests, generated as WAT: each performs a list of steps against the
//! preopened directories, prints `errno=N` (the WASI error, 0 for success) after
//! every file-system step, and then does what the scenario says.
// Some steps serve Unix-only scenes (links, FIFOs, limits), one the Windows scene.
#![cfg_attr(windows, allow(dead_code))]

mod assemble;
mod fragments;

/// One thing a guest does. `fd` is a preopen: the runner opens read-only directories
/// first (fd 3, 4, ...), then the staging directories.
pub enum Step<'a> {
    /// Create or truncate `path` and write `content` to it.
    Write {
        fd: u32,
        path: &'a str,
        content: &'a str,
    },
    Mkdir {
        fd: u32,
        path: &'a str,
    },
    Unlink {
        fd: u32,
        path: &'a str,
    },
    Rename {
        fd: u32,
        from: &'a str,
        to: &'a str,
    },
    Symlink {
        target: &'a str,
        fd: u32,
        path: &'a str,
    },
    /// A hard link `to` naming the file `from`, both under `fd`.
    Link {
        fd: u32,
        from: &'a str,
        to: &'a str,
    },
    /// Open `path` for reading (waits forever on a FIFO nobody writes).
    OpenRead {
        fd: u32,
        path: &'a str,
    },
    /// Open `path` under `fd` (`LAST_OPENED`: the descriptor the last `OpenRead`
    /// returned) for reading, links followed, read up to 4 KiB, and, if that worked,
    /// create `out` under `to` and write what was read: a thief's copy into its
    /// declared output. Prints the errno of the open.
    Copy {
        fd: u32,
        path: &'a str,
        to: u32,
        out: &'a str,
    },
    /// `path_filestat_get` of `path` under `fd`, links followed.
    Stat {
        fd: u32,
        path: &'a str,
    },
    /// `fd_readdir` of `fd` into a 4 KiB buffer; prints the errno, then the bytes it
    /// listed as `grown=+N`.
    ReadDir {
        fd: u32,
    },
    /// Create `path` under `fd` and write `content` at `offset`: with `fd_pwrite`,
    /// or with `fd_seek` then `fd_write` when `seek`. Prints the errno of the write.
    WriteAt {
        fd: u32,
        path: &'a str,
        offset: u64,
        content: &'a str,
        seek: bool,
    },
    /// Create `path` under `fd` and set its size with `fd_filestat_set_size`.
    SetSize {
        fd: u32,
        path: &'a str,
        size: u64,
    },
    /// Create `path` under `fd` and write `first` and `second` with two-iovec
    /// `fd_write`s, continuing after short writes as wasi-libc's stdio does. Prints
    /// the errno of the last write.
    WriteTwoIovecs {
        fd: u32,
        path: &'a str,
        first: &'a str,
        second: &'a str,
    },
    /// Every WASI path call the guest can import (the Windows test's), each on `path`
    /// (two-path calls on `path` and a plain name, both ways), an errno line each, in
    /// the order of `PATH_CALLS`.
    #[cfg_attr(unix, allow(dead_code))]
    EveryPathCall {
        fd: u32,
        path: &'a str,
    },
    /// A chain of `depth` directories named `name`, each inside the last, built one
    /// level at a time through a descriptor of the last (one open at a time).
    DeepDirectories {
        fd: u32,
        name: &'a str,
        depth: u32,
    },
    /// `count` empty files `u00000`, `u00001`, ... under `fd`; with `keep_open`,
    /// their descriptors stay open (until the open-file limit stops it).
    ManyFiles {
        fd: u32,
        count: u32,
        keep_open: bool,
    },
    /// Close the descriptor the last successful open returned.
    CloseLastOpened,
    /// Create `path` and write 64 KiB to it again and again, ignoring errors.
    WriteForever {
        fd: u32,
        path: &'a str,
    },
    /// `count` links `l00000`, `l00001`, ... under `fd`, each to a target of
    /// `target_len` bytes; prints the errno of the first that fails, or 0.
    ManyLinks {
        fd: u32,
        count: u32,
        target_len: usize,
    },
    /// Grow memory by enough pages for a path of `len` bytes (`a`s, written at the
    /// old end of memory), then `path_open` it for reading under `fd`, `count`
    /// times; prints the errno of the last.
    LongPathOpens {
        fd: u32,
        len: u32,
        count: u32,
    },
    /// Create `path` under `fd` (no truncation), put one iovec `{1024, len}` at the
    /// address `table`, and `fd_write` with that table and `count` entries (those
    /// after the first as memory holds them). Prints the errno of the write.
    WriteIovecs {
        fd: u32,
        path: &'a str,
        table: u32,
        count: u32,
        len: u32,
    },
    /// `fd_filestat_get` of `fd`; prints the errno, then `grown=` the file type, then
    /// `grown=+1` if any of device, inode, links, size or times is not 0, else `+0`.
    FdFilestat {
        fd: u32,
    },
    /// Loop forever without calling anything.
    Spin,
    /// Grow each of `count` extra memories by `pages` 64 KiB pages and touch every
    /// byte, one memory after the other; print `grown=N` after each (N = -1 refused).
    GrowMemories {
        count: u32,
        pages: u32,
    },
    /// Grow an extra table by `elements`; print `grown=N` (N = -1 refused).
    GrowTable {
        elements: u32,
    },
    /// `exit(status)`.
    Exit(u32),
    /// Executes `unreachable`.
    Trap,
    /// Grows memory until the host refuses, then traps.
    ExhaustMemory,
}

/// As `Copy`'s `fd`: the descriptor the last `OpenRead` returned.
pub const LAST_OPENED: u32 = u32::MAX;

/// The path calls of `Step::EveryPathCall`, in order.
#[cfg_attr(unix, allow(dead_code))]
pub const PATH_CALLS: &[&str] = &[
    "path_open (create)",
    "path_open (read)",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link (from)",
    "path_link (to)",
    "path_readlink",
    "path_remove_directory",
    "path_rename (from)",
    "path_rename (to)",
    "path_symlink (target)",
    "path_symlink (link)",
    "path_unlink_file",
];

/// The guest module, binary: `steps` in order in `_start`.
pub fn guest(steps: &[Step<'_>]) -> Vec<u8> {
    let mut assembly = assemble::Assembly::new();
    for step in steps {
        assembly.add(step);
    }
    let wat = assembly.wat();
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("hostile guest does not assemble: {e}\n{wat}"))
}

/// The `errno=NN` values a guest printed, in order.
pub fn errnos(stdout: &str) -> Vec<u32> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("errno="))
        .map(|n| n.parse().expect("two digits"))
        .collect()
}

/// The `grown=` values a guest printed, in order: the old size, or -1 for refused.
pub fn growths(stdout: &str) -> Vec<i64> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("grown="))
        .map(|n| n.parse().expect("a signed number"))
        .collect()
}

/// Step constructors, so that a scenario reads as a short list.
pub fn write<'a>(fd: u32, path: &'a str, content: &'a str) -> Step<'a> {
    Step::Write { fd, path, content }
}

pub fn mkdir(fd: u32, path: &str) -> Step<'_> {
    Step::Mkdir { fd, path }
}

pub fn unlink(fd: u32, path: &str) -> Step<'_> {
    Step::Unlink { fd, path }
}

pub fn rename<'a>(fd: u32, from: &'a str, to: &'a str) -> Step<'a> {
    Step::Rename { fd, from, to }
}

pub fn symlink<'a>(target: &'a str, fd: u32, path: &'a str) -> Step<'a> {
    Step::Symlink { target, fd, path }
}

pub fn link<'a>(fd: u32, from: &'a str, to: &'a str) -> Step<'a> {
    Step::Link { fd, from, to }
}
