//! Hostile WASI guests, generated as WAT: each performs a list of steps against the
//! preopened directories, prints `errno=N` (the WASI error, 0 for success) after
//! every file-system step, and then does what the scenario says.

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
    /// `exit(status)`.
    Exit(u32),
    /// Executes `unreachable`.
    Trap,
    /// Grows memory until the host refuses, then traps.
    ExhaustMemory,
}

/// Strings live from this offset on; below it is scratch space.
const DATA_START: usize = 1024;

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
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory" (func $mkdir (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "errno=00\n")
  {data}
  ;; Prints "errno=NN" on stdout.
  (func $print_errno (param $e i32)
    (i32.store8 (i32.const 22) (i32.add (i32.const 48) (i32.div_u (local.get $e) (i32.const 10))))
    (i32.store8 (i32.const 23) (i32.add (i32.const 48) (i32.rem_u (local.get $e) (i32.const 10))))
    (i32.store (i32.const 32) (i32.const 16))
    (i32.store (i32.const 36) (i32.const 9))
    (drop (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 40))))
  (func (export "_start") (local $e i32)
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
