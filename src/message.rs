//! How paths, file kinds and OS errors appear in messages, for the guest and the
//! runner alike: quoted with control characters escaped, and in words, not numbers.

use std::fmt::Write as _;
use std::io;

/// Writes `line` and a newline to stderr. A closed, full or broken stderr loses the
/// line but never panics, as `eprintln!` would: exit statuses must hold whatever
/// stdio is.
pub fn print_stderr(line: &str) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = stderr
        .write_all(line.as_bytes())
        .and_then(|()| stderr.write_all(b"\n"));
}

/// `eprintln!` that never panics: see [`print_stderr`].
#[macro_export]
macro_rules! stderr_line {
    ($($arg:tt)*) => {
        $crate::message::print_stderr(&format!($($arg)*))
    };
}

/// `text` in double quotes, with control characters (a NUL, a newline, an escape)
/// and quotes escaped, so that a hostile file name cannot rewrite the terminal or
/// forge a line of output. Everything else, backslashes and non-ASCII included,
/// stays as it is: Windows paths and Greek names read as written.
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_invisible_separator(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as a message's subject (`job.json: jobs[3]...`): as written, unless it
/// holds something that must be escaped or a space, then quoted.
pub fn shown(path: &str) -> String {
    let quoted = quoted(path);
    if quoted.len() == path.len() + 2 && !path.contains([' ', '"']) {
        path.to_owned()
    } else {
        quoted
    }
}

/// Characters that break or reorder a line without being control characters.
fn is_invisible_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An OS error in words, without its number: "no such file or directory", not
/// "No such file or directory (os error 44)". WASI numbers errors differently from
/// the host, so a number would only mislead.
pub fn io_error(error: &io::Error) -> String {
    let text = error.to_string();
    let words = match error.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text),
        None => &text,
    };
    let mut chars = words.chars();
    match chars.next() {
        // "Permission denied" -> "permission denied"; keep acronyms ("I/O error").
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => words.to_owned(),
    }
}

/// What a file that is not a regular file is, for "... is a directory, not a regular
/// file". WASI reports FIFOs as of unknown type, so the guest says less than a host.
pub fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    if file_type.is_symlink() {
        return "a symbolic link";
    }
    if file_type.is_file() {
        return "a regular file";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "a FIFO, socket or device"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(quoted("a.o"), "\"a.o\"");
        assert_eq!(quoted("a\0b\nc\x1b[31m"), r#""a\u{0}b\nc\u{1b}[31m""#);
        assert_eq!(quoted(r"C:\out\Ωμέγα.o"), r#""C:\out\Ωμέγα.o""#);
        assert_eq!(quoted("say \"hi\""), r#""say \"hi\"""#);
        assert_eq!(quoted("x\u{202e}o.exe"), r#""x\u{202e}o.exe""#);
    }

    #[test]
    fn subjects_are_quoted_only_when_they_must_be() {
        assert_eq!(shown("app.123.dist-file.json"), "app.123.dist-file.json");
        assert_eq!(shown("my job.json"), "\"my job.json\"");
        assert_eq!(shown("j\n.json"), "\"j\\n.json\"");
    }

    #[test]
    fn os_errors_read_as_words() {
        let error = io::Error::from_raw_os_error(2);
        let words = io_error(&error);
        assert!(!words.contains("os error"), "{words}");
        assert!(words.starts_with(char::is_lowercase), "{words}");
        let custom = io::Error::other("I/O error on the device");
        assert_eq!(io_error(&custom), "I/O error on the device");
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_named() {
        let kind = |path: &str| file_kind(&std::fs::metadata(path).unwrap().file_type());
        assert_eq!(kind("/dev/null"), "a character device");
        assert_eq!(kind("/"), "a directory");
    }
}
