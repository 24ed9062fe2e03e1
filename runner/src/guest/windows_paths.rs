//! Guest paths Windows would not read as the plain relative names they are in WASI:
//! drives, devices, streams and stripped names, refused before wasmtime-wasi sees them.

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
