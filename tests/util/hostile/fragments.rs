//! The WAT of each step, from the offsets and lengths of its strings in memory.
//!
//! Scratch memory below the strings: 0..8 an iovec, 8 the count written or read,
//! 12 the descriptor an open returned (`LAST_OPENED`), 32..40 `$print_errno`'s
//! iovec, and a few more slots named where they are used.

use super::assemble::{Placed, BLOCK_AT};

/// `Step::Write`: create or truncate a file and write one string to it.
pub fn write_file(fd: u32, path: Placed, content: Placed) -> String {
    let (p, plen) = path;
    let (c, clen) = content;
    format!(
        "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
         (if (i32.eqz (local.get $e)) (then
            (i32.store (i32.const 0) (i32.const {c})) (i32.store (i32.const 4) (i32.const {clen}))
            (local.set $e (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
            (drop (call $fd_close (i32.load (i32.const 12))))))
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::WriteAt`: a write at an offset, by `fd_pwrite` or by `fd_seek` and `fd_write`.
pub fn write_at(fd: u32, path: Placed, offset: u64, content: Placed, seek: bool) -> String {
    let (p, plen) = path;
    let (c, clen) = content;
    let write = if seek {
        format!(
            "(drop (call $fd_seek (i32.load (i32.const 12)) (i64.const {offset}) (i32.const 0) (i32.const 400)))
             (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8))"
        )
    } else {
        format!("(call $fd_pwrite (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i64.const {offset}) (i32.const 8))")
    };
    format!(
        "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 9) (i64.const 0x400066) (i64.const 0x400066) (i32.const 0) (i32.const 12)))
         (if (i32.eqz (local.get $e)) (then
            (i32.store (i32.const 0) (i32.const {c})) (i32.store (i32.const 4) (i32.const {clen}))
            (local.set $e {write})))
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::SetSize`: create a file and set its size.
pub fn set_size(fd: u32, path: Placed, size: u64) -> String {
    let (p, plen) = path;
    format!(
        "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 9) (i64.const 0x400042) (i64.const 0x400042) (i32.const 0) (i32.const 12)))
         (if (i32.eqz (local.get $e)) (then
            (local.set $e (call $fd_filestat_set_size (i32.load (i32.const 12)) (i64.const {size})))))
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::WriteTwoIovecs`: two strings by two-iovec writes, continued after short
/// writes as wasi-libc's stdio does (the iovecs at 300..316).
pub fn write_two_iovecs(fd: u32, path: Placed, first: Placed, second: Placed) -> String {
    let (p, plen) = path;
    let (a, alen) = first;
    let (b, blen) = second;
    format!(
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
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::WriteForever`: 64 KiB blocks to one file, errors ignored, never ending.
pub fn write_forever(fd: u32, path: Placed) -> String {
    let (p, plen) = path;
    format!(
        "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 9) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
         (call $print_errno (local.get $e))
         (i32.store (i32.const 0) (i32.const {BLOCK_AT})) (i32.store (i32.const 4) (i32.const 65536))
         (loop $forever
            (drop (call $fd_write (i32.load (i32.const 12)) (i32.const 0) (i32.const 1) (i32.const 8)))
            (br $forever))\n"
    )
}

/// `(call $print_errno (call $function (i32.const arg) ...))`: one call, its errno
/// printed.
fn errno_of(function: &str, args: &[usize]) -> String {
    let args: String = args.iter().map(|a| format!(" (i32.const {a})")).collect();
    format!("(call $print_errno (call ${function}{args}))\n")
}

/// A one-path call: `path_create_directory` (`mkdir`), `path_unlink_file` (`unlink`).
pub fn path_call(function: &str, fd: u32, (p, plen): Placed) -> String {
    errno_of(function, &[fd as usize, p, plen])
}

/// `Step::Rename`: a rename within one directory.
pub fn rename(fd: u32, (f, flen): Placed, (t, tlen): Placed) -> String {
    let fd = fd as usize;
    errno_of("rename", &[fd, f, flen, fd, t, tlen])
}

/// `Step::Symlink`: a symbolic link at `path` holding `target`.
pub fn symlink((t, tlen): Placed, fd: u32, (p, plen): Placed) -> String {
    errno_of("symlink", &[t, tlen, fd as usize, p, plen])
}

/// `Step::Link`: a hard link within one directory (lookup flags 0: links not followed).
pub fn link(fd: u32, (f, flen): Placed, (t, tlen): Placed) -> String {
    let fd = fd as usize;
    errno_of("link", &[fd, 0, f, flen, fd, t, tlen])
}

/// `Step::DeepDirectories`: a chain of directories, one descriptor open at a time.
pub fn deep_directories(fd: u32, name: Placed, depth: u32) -> String {
    let (p, n) = name;
    format!(
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
         (call $print_errno (local.get $e))\n"
    )
}

/// A loop over the names `?00000`, `?00001`, ... (`name`, numbered in place): for
/// each, `call` sets `$e`, then `after` runs, until `count` names or an error.
/// Prints the errno that stopped it, or 0.
fn numbered_loop(count: u32, (p, _): Placed, call: &str, after: &str) -> String {
    format!(
        "(local.set $i (i32.const 0))
         (local.set $e (i32.const 0))
         (block $done (loop $each
            (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
            (call $decimal5 (i32.add (i32.const {p}) (i32.const 1)) (local.get $i))
            (local.set $e {call})
            (br_if $done (local.get $e))
            {after}
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $each)))
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::ManyFiles`: empty files `u00000`, ... (`name` is `u00000`).
pub fn many_files(fd: u32, name: Placed, count: u32, keep_open: bool) -> String {
    let p = name.0;
    let open = format!(
        "(call $path_open (i32.const {fd}) (i32.const 0) (i32.const {p}) (i32.const 6)
               (i32.const 1) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12))"
    );
    let close = if keep_open {
        ""
    } else {
        "(drop (call $fd_close (i32.load (i32.const 12))))"
    };
    numbered_loop(count, name, &open, close)
}

/// `Step::ManyLinks`: links `l00000`, ... (`name` is `l00000`) to `target`.
pub fn many_links(fd: u32, name: Placed, count: u32, (t, tlen): Placed) -> String {
    let p = name.0;
    let link = format!(
        "(call $symlink (i32.const {t}) (i32.const {tlen}) (i32.const {fd}) (i32.const {p}) (i32.const 6))"
    );
    numbered_loop(count, name, &link, "")
}

/// `Step::OpenRead`: open for reading; the descriptor lands at 12.
pub fn open_read(fd: u32, path: Placed) -> String {
    let (p, plen) = path;
    format!(
        "(call $print_errno (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 12)))\n"
    )
}

/// `Step::Copy`: read up to 4 KiB of a file and write it to `out` under `to` (the
/// two descriptors at 200 and 204).
pub fn copy(fd: u32, path: Placed, to: u32, out: Placed) -> String {
    let (p, plen) = path;
    let (o, olen) = out;
    let from = if fd == super::LAST_OPENED {
        "(i32.load (i32.const 12))".to_owned()
    } else {
        format!("(i32.const {fd})")
    };
    format!(
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
            (drop (call $fd_close (i32.load (i32.const 200))))))\n"
    )
}

/// `Step::Stat`: `path_filestat_get`, links followed (flags 1), into 128..192.
pub fn stat(fd: u32, (p, n): Placed) -> String {
    errno_of("filestat_get", &[fd as usize, 1, p, n, 128])
}

/// `Step::ReadDir`: one `fd_readdir` into a 4 KiB buffer, and the bytes it listed.
pub fn read_dir(fd: u32) -> String {
    format!(
        "(i32.store (i32.const 12) (i32.const 0))
         (call $print_errno (call $fd_readdir (i32.const {fd}) (i32.const {BLOCK_AT}) (i32.const 4096) (i64.const 0) (i32.const 12)))
         (call $print_grown (i32.load (i32.const 12)))\n"
    )
}

/// `Step::CloseLastOpened`.
pub fn close_last_opened() -> String {
    "(call $print_errno (call $fd_close (i32.load (i32.const 12))))\n".to_owned()
}

/// `Step::EveryPathCall`: every path call on `path`, two-path calls with `plain`
/// on the other side, both ways; in the order of `PATH_CALLS`.
pub fn every_path_call(fd: u32, path: Placed, plain: Placed) -> String {
    let (p, n) = path;
    let (x, xn) = plain;
    format!(
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
         (call $print_errno (call $unlink (i32.const {fd}) (i32.const {p}) (i32.const {n})))\n"
    )
}

/// `Step::GrowMemories`, for one memory `$m{m}`: grow it, print the old size, and
/// touch every new byte.
pub fn grow_memory(m: u32, pages: u32) -> String {
    format!(
        "(local.set $e (memory.grow $m{m} (i32.const {pages})))
         (call $print_grown (local.get $e))
         (if (i32.ge_s (local.get $e) (i32.const 0)) (then
            (memory.fill $m{m} (i32.const 0) (i32.const 1) (i32.mul (i32.const {pages}) (i32.const 65536)))))\n"
    )
}

/// `Step::GrowTable`, for one table `$t{t}`.
pub fn grow_table(t: u32, elements: u32) -> String {
    format!("(call $print_grown (table.grow $t{t} (ref.null func) (i32.const {elements})))\n")
}

/// `Step::LongPathOpens`: the path at the old end of memory, opened `count` times.
pub fn long_path_opens(fd: u32, len: u32, count: u32) -> String {
    let pages = len / 65536 + 1;
    format!(
        "(local.set $dir (i32.mul (memory.grow (i32.const {pages})) (i32.const 65536)))
         (memory.fill (local.get $dir) (i32.const 97) (i32.const {len}))
         (local.set $i (i32.const 0))
         (block $done (loop $each
            (br_if $done (i32.ge_u (local.get $i) (i32.const {count})))
            (local.set $e (call $path_open (i32.const {fd}) (i32.const 0) (local.get $dir) (i32.const {len})
               (i32.const 0) (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 12)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $each)))
         (call $print_errno (local.get $e))\n"
    )
}

/// `Step::WriteIovecs`: one write whose iovec table is at `table`.
pub fn write_iovecs(fd: u32, path: Placed, table: u32, count: u32, len: u32) -> String {
    let (p, plen) = path;
    format!(
        "(local.set $e (call $path_open (i32.const {fd}) (i32.const 1) (i32.const {p}) (i32.const {plen})
            (i32.const 1) (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 12)))
         (if (i32.eqz (local.get $e)) (then
            (i32.store (i32.const {table}) (i32.const 1024))
            (i32.store (i32.const {table_len}) (i32.const {len}))
            (local.set $e (call $fd_write (i32.load (i32.const 12)) (i32.const {table}) (i32.const {count}) (i32.const 8)))))
         (call $print_errno (local.get $e))\n",
        table_len = table + 4
    )
}

/// `Step::FdFilestat`: the stat lands at 128..192 (the file type at 144).
pub fn fd_filestat(fd: u32) -> String {
    // Every field but the file type, or-ed together.
    let any = [136, 152, 160, 168, 176, 184]
        .iter()
        .fold("(i64.load (i32.const 128))".to_owned(), |acc, at| {
            format!("(i64.or {acc} (i64.load (i32.const {at})))")
        });
    format!(
        "(call $print_errno (call $fd_filestat_get (i32.const {fd}) (i32.const 128)))
         (call $print_grown (i32.load8_u (i32.const 144)))
         (call $print_grown (i64.ne (i64.const 0) {any}))\n"
    )
}

/// `Step::ExhaustMemory`: grow until refused, then trap.
pub const EXHAUST_MEMORY: &str = "(block $refused (loop $grow
        (br_if $refused (i32.eq (memory.grow (i32.const 1024)) (i32.const -1)))
        (br $grow)))
     unreachable\n";
