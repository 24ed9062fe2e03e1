//! Hostile WASI guests, generated as WAT: each performs a list of steps against the
//! preopened directories, prints `errno=N` (the WASI error, 0 for success) after
//! every file-system step, and then does what the scenario says.
// Some steps serve Unix-only scenes (links, FIFOs, limits), one the Windows scene.
#![cfg_attr(windows, allow(dead_code))]

use std::fmt::Write as _;

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

/// Strings live from this offset on; below it is scratch space.
const DATA_START: usize = 1024;
/// 64 KiB of bytes to write, after the strings.
const BLOCK_AT: usize = 65536;

/// The guest module, binary.
pub fn guest(steps: &[Step<'_>]) -> Vec<u8> {
    let mut data = String::new();
    let mut next = DATA_START;
    let mut place = |text: &str| -> (usize, usize) {
        let offset = next;
        let _ = writeln!(data, "(data (i32.const {offset}) \"{}\")", escape(text));
        next += text.len();
        (offset, text.len())
    };
    let mut extra_memories = 0;
    let mut extra_tables = 0;
    let mut body = String::new();
    for step in steps {
        match step {
            Step::Write { fd, path, content } => {
                let (p, plen) = place(path);
                let (c, clen) = place(content);
                let _ = write!(
                    body,
                    "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
                     (if (i32.eqz (local.get $e)) (then
                        (i32.store (i32.const 0) (i32.const {c})) (i32.store (i32.const 4) (i32.const {clen}))
                        (local.set $e (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
                        (drop (call $fd_close (i32.load (i32.const 12))))))
                     (call $print_errno (local.get $e))\n"
                );
            }
            Step::Mkdir { fd, path } => {
                let (p, plen) = place(path);
                let _ = writeln!(body, "(call $print_errno (call $mkdir (i32.const {fd}) (i32.const {p}) (i32.const {plen})))");
            }
            Step::Unlink { fd, path } => {
                let (p, plen) = place(path);
                let _ = writeln!(body, "(call $print_errno (call $unlink (i32.const {fd}) (i32.const {p}) (i32.const {plen})))");
            }
            Step::Rename { fd, from, to } => {
                let (f, flen) = place(from);
                let (t, tlen) = place(to);
                let _ = writeln!(
                    body,
                    "(call $print_errno (call $rename (i32.const {fd}) (i32.const {f}) (i32.const {flen}) (i32.const {fd}) (i32.const {t}) (i32.const {tlen})))"
                );
            }
            Step::Symlink { target, fd, path } => {
                let (t, tlen) = place(target);
                let (p, plen) = place(path);
                let _ = writeln!(
                    body,
                    "(call $print_errno (call $symlink (i32.const {t}) (i32.const {tlen}) (i32.const {fd}) (i32.const {p}) (i32.const {plen})))"
                );
            }
            Step::Link { fd, from, to } => {
                let (f, flen) = place(from);
                let (t, tlen) = place(to);
                let _ = writeln!(
                    body,
                    "(call $print_errno (call $link (i32.const {fd}) (i32.const 0) (i32.const {f}) (i32.const {flen}) (i32.const {fd}) (i32.const {t}) (i32.const {tlen})))"
                );
            }
            Step::OpenRead { fd, path } => {
                let (p, plen) = place(path);
                let _ = writeln!(
                    body,
                    "(call $print_errno (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 12)))"
                );
            }
            Step::Copy { fd, path, to, out } => {
                let (p, plen) = place(path);
                let (o, olen) = place(out);
                let from = if *fd == LAST_OPENED {
                    "(i32.load (i32.const 12))".to_owned()
                } else {
                    format!("(i32.const {fd})")
                };
                let _ = writeln!(
                    body,
                    "(local.set $e (call $path_open {from} (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 200)))
                     (call $print_errno (local.get $e))
                     (if (i32.eqz (local.get $e)) (then
                        (i32.store (i32.const 0) (i32.const {BLOCK_AT})) (i32.store (i32.const 4) (i32.const 4096))
                        (if (i32.eqz (call $fd_read (i32.load (i32.const 200)) (i32.const 0) (i32.const 1) (i32.const 8))) (then
                          (i32.store (i32.const 4) (i32.load (i32.const 8)))
                          (if (i32.eqz (call $path_open (i32.const {to}) (i32.const 1) (i32.const {o}) (i32.const {olen})
                                (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 204))) (then
                            (drop (call $fd_write (i32.load (i32.const 204)) (i32.const 0) (i32.const 1) (i32.const 8)))
                            (drop (call $fd_close (i32.load (i32.const 204))))))))
                        (drop (call $fd_close (i32.load (i32.const 200))))))"
                );
            }
            Step::Stat { fd, path } => {
                let (p, n) = place(path);
                let _ = writeln!(body, "(call $print_errno (call $filestat_get (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {n}) (i32.const 128)))");
            }
            Step::ReadDir { fd } => {
                let _ = writeln!(
                    body,
                    "(i32.store (i32.const 12) (i32.const 0))
                     (call $print_errno (call $fd_readdir (i32.const {fd}) (i32.const {BLOCK_AT}) (i32.const 4096) (i64.const 0) (i32.const 12)))
                     (call $print_grown (i32.load (i32.const 12)))"
                );
            }
            Step::WriteAt {
                fd,
                path,
                offset,
                content,
                seek,
            } => {
                let (p, plen) = place(path);
                let (c, clen) = place(content);
                let write = if *seek {
                    format!(
                        "(drop (call $fd_seek (i32.load (i32.const 12)) (i64.const {offset}) (i32.const 0) (i32.const 400)))
                         (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8))"
                    )
                } else {
                    format!("(call $fd_pwrite (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i64.const {offset}) (i32.const 8))")
                };
                let _ = writeln!(
                    body,
                    "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 9) (i64.const 0x400066) (i64.const 0x400066) (i32.const 0) (i32.const 12)))
                     (if (i32.eqz (local.get $e)) (then
                        (i32.store (i32.const 0) (i32.const {c})) (i32.store (i32.const 4) (i32.const {clen}))
                        (local.set $e {write})))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::SetSize { fd, path, size } => {
                let (p, plen) = place(path);
                let _ = writeln!(
                    body,
                    "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 9) (i64.const 0x400042) (i64.const 0x400042) (i32.const 0) (i32.const 12)))
                     (if (i32.eqz (local.get $e)) (then
                        (local.set $e (call $fd_filestat_set_size (i32.load (i32.const 12)) (i64.const {size})))))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::WriteTwoIovecs {
                fd,
                path,
                first,
                second,
            } => {
                let (p, plen) = place(path);
                let (a, alen) = place(first);
                let (b, blen) = place(second);
                let _ = writeln!(
                    body,
                    "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
                     (i32.store (i32.const 300) (i32.const {a})) (i32.store (i32.const 304) (i32.const {alen}))
                     (i32.store (i32.const 308) (i32.const {b})) (i32.store (i32.const 312) (i32.const {blen}))
                     (block $done (loop $more
                        (br_if $done (local.get $e))
                        (br_if $done (i32.eqz (i32.add (i32.load (i32.const 304)) (i32.load (i32.const 312)))))
                        (local.set $e (call $fd_write (i32.load (i32.const 12)) (i32.const 300) (i32.const 2) (i32.const 8)))
                        (br_if $done (local.get $e))
                        (local.set $i (i32.load (i32.const 8)))
                        (if (i32.ge_u (local.get $i) (i32.load (i32.const 304)))
                          (then
                            (local.set $i (i32.sub (local.get $i) (i32.load (i32.const 304))))
                            (i32.store (i32.const 304) (i32.const 0))
                            (i32.store (i32.const 308) (i32.add (i32.load (i32.const 308)) (local.get $i)))
                            (i32.store (i32.const 312) (i32.sub (i32.load (i32.const 312)) (local.get $i))))
                          (else
                            (i32.store (i32.const 300) (i32.add (i32.load (i32.const 300)) (local.get $i)))
                            (i32.store (i32.const 304) (i32.sub (i32.load (i32.const 304)) (local.get $i)))))
                        (br $more)))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::EveryPathCall { fd, path } => {
                let (p, n) = place(path);
                // The other path of two-path calls: a plain name.
                let (x, xn) = place("plain");
                let _ = writeln!(
                    body,
                    "(call $print_errno (call $path_open (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const {n})
                        (i32.const 1) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
                     (call $print_errno (call $path_open (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const {n})
                        (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 12)))
                     (call $print_errno (call $mkdir (i32.const {fd}) (i32.const {p}) (i32.const {n})))
                     (call $print_errno (call $filestat_get (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const {n}) (i32.const 128)))
                     (call $print_errno (call $filestat_set_times (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const {n}) (i64.const 0) (i64.const 0) (i32.const 5)))
                     (call $print_errno (call $link (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const {n}) (i32.const {fd}) (i32.const {x}) (i32.const {xn})))
                     (call $print_errno (call $link (i32.const {fd}) (i32.const 0) (i32.const {x}) (i32.const {xn}) (i32.const {fd}) (i32.const {p}) (i32.const {n})))
                     (call $print_errno (call $readlink (i32.const {fd}) (i32.const {p}) (i32.const {n}) (i32.const 256) (i32.const 256) (i32.const 12)))
                     (call $print_errno (call $rmdir (i32.const {fd}) (i32.const {p}) (i32.const {n})))
                     (call $print_errno (call $rename (i32.const {fd}) (i32.const {p}) (i32.const {n}) (i32.const {fd}) (i32.const {x}) (i32.const {xn})))
                     (call $print_errno (call $rename (i32.const {fd}) (i32.const {x}) (i32.const {xn}) (i32.const {fd}) (i32.const {p}) (i32.const {n})))
                     (call $print_errno (call $symlink (i32.const {p}) (i32.const {n}) (i32.const {fd}) (i32.const {x}) (i32.const {xn})))
                     (call $print_errno (call $symlink (i32.const {x}) (i32.const {xn}) (i32.const {fd}) (i32.const {p}) (i32.const {n})))
                     (call $print_errno (call $unlink (i32.const {fd}) (i32.const {p}) (i32.const {n})))"
                );
            }
            Step::DeepDirectories { fd, name, depth } => {
                let (p, n) = place(name);
                let _ = writeln!(
                    body,
                    "(local.set $dir (i32.const {fd}))
                     (local.set $i (i32.const 0))
                     (block $done (loop $down
                        (br_if $done (i32.ge_u (local.get $i) (i32.const {depth})))
                        (local.set $e (call $mkdir (local.get $dir) (i32.const {p}) (i32.const {n})))
                        (br_if $done (local.get $e))
                        (local.set $e (call $path_open (local.get $dir) (i32.const 0) (i32.const {p}) (i32.const {n})
                           (i32.const 2) (i64.const 0x2200) (i64.const 0x2200) (i32.const 0) (i32.const 12)))
                        (br_if $done (local.get $e))
                        (if (i32.ne (local.get $dir) (i32.const {fd})) (then (drop (call $fd_close (local.get $dir)))))
                        (local.set $dir (i32.load (i32.const 12)))
                        (local.set $i (i32.add (local.get $i) (i32.const 1)))
                        (br $down)))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::ManyFiles {
                fd,
                count,
                keep_open,
            } => {
                let (p, _) = place("u00000");
                let close = if *keep_open {
                    ""
                } else {
                    "(drop (call $fd_close (i32.load (i32.const 12))))"
                };
                let _ = writeln!(
                    body,
                    "(local.set $i (i32.const 0))
                     (local.set $e (i32.const 0))
                     (block $done (loop $each
                        (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
                        (call $decimal5 (i32.add (i32.const {p}) (i32.const 1)) (local.get $i))
                        (local.set $e (call $path_open (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const 6)
                           (i32.const 1) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
                        (br_if $done (local.get $e))
                        {close}
                        (local.set $i (i32.add (local.get $i) (i32.const 1)))
                        (br $each)))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::WriteForever { fd, path } => {
                let (p, plen) = place(path);
                let _ = writeln!(
                    body,
                    "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
                        (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
                     (call $print_errno (local.get $e))
                     (i32.store (i32.const 0) (i32.const {BLOCK_AT})) (i32.store (i32.const 4) (i32.const 65536))
                     (loop $forever
                        (drop (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
                        (br $forever))"
                );
            }
            Step::ManyLinks {
                fd,
                count,
                target_len,
            } => {
                let (p, _) = place("l00000");
                let (t, tlen) = place(&"t".repeat(*target_len));
                let _ = writeln!(
                    body,
                    "(local.set $i (i32.const 0))
                     (local.set $e (i32.const 0))
                     (block $done (loop $each
                        (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
                        (call $decimal5 (i32.add (i32.const {p}) (i32.const 1)) (local.get $i))
                        (local.set $e (call $symlink (i32.const {t}) (i32.const {tlen}) (i32.const {fd}) (i32.const {p}) (i32.const 6)))
                        (br_if $done (local.get $e))
                        (local.set $i (i32.add (local.get $i) (i32.const 1)))
                        (br $each)))
                     (call $print_errno (local.get $e))"
                );
            }
            Step::Spin => body.push_str("(loop $forever (br $forever))\n"),
            Step::CloseLastOpened => {
                body.push_str("(call $print_errno (call $fd_close (i32.load (i32.const 12))))\n");
            }
            Step::GrowMemories { count, pages } => {
                for _ in 0..*count {
                    extra_memories += 1;
                    let m = extra_memories;
                    let _ = writeln!(
                        body,
                        "(local.set $e (memory.grow $m{m} (i32.const {pages})))
                         (call $print_grown (local.get $e))
                         (if (i32.ge_s (local.get $e) (i32.const 0)) (then
                            (memory.fill $m{m} (i32.const 0) (i32.const 1) (i32.mul (i32.const {pages}) (i32.const 65536)))))"
                    );
                }
            }
            Step::GrowTable { elements } => {
                extra_tables += 1;
                let t = extra_tables;
                let _ = writeln!(
                    body,
                    "(call $print_grown (table.grow $t{t} (ref.null func) (i32.const {elements})))"
                );
            }
            Step::Exit(status) => {
                let _ = writeln!(body, "(call $proc_exit (i32.const {status}))");
            }
            Step::Trap => body.push_str("unreachable\n"),
            Step::ExhaustMemory => body.push_str(
                "(block $refused (loop $grow
                    (br_if $refused (i32.eq (memory.grow (i32.const 1024)) (i32.const -1)))
                    (br $grow)))
                 unreachable\n",
            ),
        }
    }
    let mut declarations = String::new();
    for m in 1..=extra_memories {
        let _ = writeln!(declarations, "(memory $m{m} 0)");
    }
    for t in 1..=extra_tables {
        let _ = writeln!(declarations, "(table $t{t} 0 funcref)");
    }
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory" (func $rmdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link" (func $link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_readlink" (func $readlink (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get" (func $filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times" (func $filestat_set_times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_pwrite" (func $fd_pwrite (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_seek" (func $fd_seek (param i32 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir" (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $fd_filestat_set_size (param i32 i64) (result i32)))
  (memory (export "memory") 2)
  {declarations}
  (data (i32.const 16) "errno=00\n")
  (data (i32.const 48) "grown=+0000000000\n")
  {data}
  ;; Prints "errno=NN" on stdout.
  (func $print_errno (param $e i32)
    (i32.store8 (i32.const 22) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
    (i32.store8 (i32.const 23) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
    (i32.store (i32.const 32) (i32.const 16))
    (i32.store (i32.const 36) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40))))
  ;; Writes $n as 5 decimal digits at $at.
  (func $decimal5 (param $at i32) (param $n i32) (local $k i32)
    (local.set $k (i32.const 5))
    (loop $digit
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (local.get $at) (local.get $k))
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $k))))
  ;; Prints "grown=+NNNNNNNNNN" (the old size in pages) or "grown=-1".
  (func $print_grown (param $g i32) (local $at i32) (local $k i32)
    (if (i32.lt_s (local.get $g) (i32.const 0))
      (then (i32.store8 (i32.const 54) (i32.const 45)) (local.set $g (i32.const 1)))
      (else (i32.store8 (i32.const 54) (i32.const 43))))
    (local.set $k (i32.const 10))
    (loop $digit
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 55) (local.get $k))
        (i32.add (i32.const 48) (i32.rem_u (local.get $g) (i32.const 10))))
      (local.set $g (i32.div_u (local.get $g) (i32.const 10)))
      (br_if $digit (local.get $k)))
    (i32.store (i32.const 32) (i32.const 48))
    (i32.store (i32.const 36) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40))))
  (func (export "_start") (local $e i32) (local $i i32) (local $dir i32)
    {body})
)"#
    );
    wat::parse_str(&wat).unwrap_or_else(|e| panic!("hostile guest does not assemble: {e}\n{wat}"))
}

fn escape(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:02x}")).collect()
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
