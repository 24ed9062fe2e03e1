//! A guest module put together: its strings placed in memory, each step's WAT in
//! the body of `_start`, the extra memories and tables that steps grow, and the
//! module around them (the WASI imports and the printing helpers).

use super::fragments;
use super::Step;
use std::fmt::Write as _;

/// Where a string lies in the guest's memory: (offset, length).
pub type Placed = (usize, usize);

/// Strings live from this offset on; below it is scratch space.
const DATA_START: usize = 1024;
/// 64 KiB of bytes to write, after the strings.
pub const BLOCK_AT: usize = 65536;

/// The module under construction.
pub struct Assembly {
    /// `(data ...)` segments of the placed strings.
    data: String,
    /// Where the next string goes.
    next: usize,
    /// The body of `_start`.
    body: String,
    extra_memories: u32,
    extra_tables: u32,
}

impl Assembly {
    pub fn new() -> Assembly {
        Assembly {
            data: String::new(),
            next: DATA_START,
            body: String::new(),
            extra_memories: 0,
            extra_tables: 0,
        }
    }

    /// Puts `text` into the module's memory.
    fn place(&mut self, text: &str) -> Placed {
        let offset = self.next;
        let _ = writeln!(
            self.data,
            "(data (i32.const {offset}) \"{}\")",
            escape(text)
        );
        self.next += text.len();
        (offset, text.len())
    }

    /// Appends what `step` does to `_start`.
    pub fn add(&mut self, step: &Step<'_>) {
        let wat = match *step {
            Step::Write { fd, path, content } => {
                fragments::write_file(fd, self.place(path), self.place(content))
            }
            Step::Mkdir { fd, path } => fragments::path_call("mkdir", fd, self.place(path)),
            Step::Unlink { fd, path } => fragments::path_call("unlink", fd, self.place(path)),
            Step::Rename { fd, from, to } => {
                fragments::rename(fd, self.place(from), self.place(to))
            }
            Step::Symlink { target, fd, path } => {
                fragments::symlink(self.place(target), fd, self.place(path))
            }
            Step::Link { fd, from, to } => fragments::link(fd, self.place(from), self.place(to)),
            Step::OpenRead { fd, path } => fragments::open_read(fd, self.place(path)),
            Step::Copy { fd, path, to, out } => {
                fragments::copy(fd, self.place(path), to, self.place(out))
            }
            Step::Stat { fd, path } => fragments::stat(fd, self.place(path)),
            Step::ReadDir { fd } => fragments::read_dir(fd),
            Step::WriteAt {
                fd,
                path,
                offset,
                content,
                seek,
            } => fragments::write_at(fd, self.place(path), offset, self.place(content), seek),
            Step::SetSize { fd, path, size } => fragments::set_size(fd, self.place(path), size),
            Step::WriteTwoIovecs {
                fd,
                path,
                first,
                second,
            } => fragments::write_two_iovecs(
                fd,
                self.place(path),
                self.place(first),
                self.place(second),
            ),
            Step::EveryPathCall { fd, path } => {
                fragments::every_path_call(fd, self.place(path), self.place("plain"))
            }
            Step::DeepDirectories { fd, name, depth } => {
                fragments::deep_directories(fd, self.place(name), depth)
            }
            Step::ManyFiles {
                fd,
                count,
                keep_open,
            } => fragments::many_files(fd, self.place("u00000"), count, keep_open),
            Step::WriteForever { fd, path } => fragments::write_forever(fd, self.place(path)),
            Step::ManyLinks {
                fd,
                count,
                target_len,
            } => {
                let name = self.place("l00000");
                fragments::many_links(fd, name, count, self.place(&"t".repeat(target_len)))
            }
            Step::LongPathOpens { fd, len, count } => fragments::long_path_opens(fd, len, count),
            Step::WriteIovecs {
                fd,
                path,
                table,
                count,
                len,
            } => fragments::write_iovecs(fd, self.place(path), table, count, len),
            Step::FdFilestat { fd } => fragments::fd_filestat(fd),
            Step::Spin => "(loop $forever (br $forever))\n".to_owned(),
            Step::CloseLastOpened => fragments::close_last_opened(),
            Step::GrowMemories { count, pages } => (0..count)
                .map(|_| {
                    self.extra_memories += 1;
                    fragments::grow_memory(self.extra_memories, pages)
                })
                .collect(),
            Step::GrowTable { elements } => {
                self.extra_tables += 1;
                fragments::grow_table(self.extra_tables, elements)
            }
            Step::Exit(status) => format!("(call $proc_exit (i32.const {status}))\n"),
            Step::Trap => "unreachable\n".to_owned(),
            Step::ExhaustMemory => fragments::EXHAUST_MEMORY.to_owned(),
        };
        self.body.push_str(&wat);
    }

    /// The whole module, as WAT.
    pub fn wat(&self) -> String {
        let mut declarations = String::new();
        for m in 1..=self.extra_memories {
            let _ = writeln!(declarations, "(memory $m{m} 0)");
        }
        for t in 1..=self.extra_tables {
            let _ = writeln!(declarations, "(table $t{t} 0 funcref)");
        }
        format!(
            "(module\n{IMPORTS}  (memory (export \"memory\") 2)\n  {declarations}\n{HELPERS}  {}\n  (func (export \"_start\") (local $e i32) (local $i i32) (local $dir i32)\n    {})\n)",
            self.data, self.body
        )
    }
}

fn escape(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// The WASI functions a guest may call.
const IMPORTS: &str = r#"  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
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
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fd_filestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_set_size" (func $fd_filestat_set_size (param i32 i64) (result i32)))
"#;

/// The templates of the two printed lines, and the functions that print them and
/// number names.
const HELPERS: &str = r#"  (data (i32.const 16) "errno=00\n")
  (data (i32.const 48) "grown=+0000000000\n")
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
"#;
