//! How the host OS tells whether two paths name the same file: pure functions over
//! path strings, so that Windows rules are tested on every host.

/// The path rules of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStyle {
    /// Linux and other POSIX hosts: `/` separates, case matters.
    Posix,
    /// macOS: POSIX paths on a volume that is case-insensitive by default.
    PosixCaseInsensitive,
    /// Windows: drive letters, `\` or `/`, UNC shares, `\\?\` prefixes, no case.
    Windows,
}

impl PathStyle {
    /// The rules of the host this runner runs on.
    pub fn host() -> Self {
        if cfg!(windows) {
            PathStyle::Windows
        } else if cfg!(target_os = "macos") {
            PathStyle::PosixCaseInsensitive
        } else {
            PathStyle::Posix
        }
    }

    pub fn is_separator(self, c: char) -> bool {
        c == '/' || (self == PathStyle::Windows && c == '\\')
    }
}

/// A key that is equal for two absolute paths exactly when the host resolves them to
/// the same directory entry (given the same directories): `.` and `..` resolved
/// lexically, separators and verbatim prefixes unified, case folded where the host
/// ignores it.
pub fn comparison_key(absolute_path: &str, style: PathStyle) -> String {
    let (root, rest) = split_root(absolute_path, style);
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split(|c| style.is_separator(c)) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let separator = if style == PathStyle::Windows {
        "\\"
    } else {
        "/"
    };
    let key = format!("{root}{}", parts.join(separator));
    match style {
        PathStyle::Posix => key,
        // Both fold with Unicode lowercase: close to NTFS's and APFS's tables for the
        // names that occur in builds.
        PathStyle::PosixCaseInsensitive | PathStyle::Windows => key.to_lowercase(),
    }
}

/// Splits off the root in a normal form: `/`, `c:\`, `\\server\share\`, `\`.
pub fn split_root(path: &str, style: PathStyle) -> (String, &str) {
    if style != PathStyle::Windows {
        return match path.strip_prefix('/') {
            Some(rest) => ("/".to_owned(), rest),
            None => (String::new(), path),
        };
    }
    // Verbatim forms: \\?\C:\x and \\?\UNC\server\share\x (also with \\.\).
    let unprefixed = ["\\\\?\\", "\\\\.\\", "//?/", "//./"]
        .iter()
        .find_map(|p| path.strip_prefix(p));
    if let Some(rest) = unprefixed {
        if let Some(unc) = strip_prefix_ignore_case(rest, "UNC\\")
            .or_else(|| strip_prefix_ignore_case(rest, "UNC/"))
        {
            return unc_root(unc, style);
        }
        return drive_root(rest).unwrap_or_else(|| (String::new(), rest));
    }
    let mut chars = path.chars();
    if let (Some(a), Some(b)) = (chars.next(), chars.next()) {
        if style.is_separator(a) && style.is_separator(b) {
            return unc_root(&path[2..], style);
        }
    }
    if let Some(drive) = drive_root(path) {
        return drive;
    }
    if path.starts_with(|c| style.is_separator(c)) {
        return ("\\".to_owned(), &path[1..]);
    }
    (String::new(), path)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// `C:\rest` or `C:/rest` -> (`c:\`, rest).
fn drive_root(path: &str) -> Option<(String, &str)> {
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        let rest = path[2..].trim_start_matches(['\\', '/']);
        return Some((
            format!("{}:\\", char::from(bytes[0].to_ascii_lowercase())),
            rest,
        ));
    }
    None
}

/// `server\share\rest` -> (`\\server\share\`, rest).
fn unc_root(path: &str, style: PathStyle) -> (String, &str) {
    let mut pieces = path.splitn(3, |c| style.is_separator(c));
    let server = pieces.next().unwrap_or("");
    let share = pieces.next().unwrap_or("");
    let rest = pieces.next().unwrap_or("");
    (format!("\\\\{server}\\{share}\\"), rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathStyle::*;

    #[test]
    fn windows_drive_paths_compare_without_case_or_separator_kind() {
        let a = comparison_key(r"C:\Build\Out\a.native.o", Windows);
        assert_eq!(a, comparison_key("c:/build/out/A.NATIVE.O", Windows));
        assert_eq!(
            a,
            comparison_key(r"C:\build\tmp\..\out\.\a.native.o", Windows)
        );
        assert_eq!(a, comparison_key(r"\\?\C:\build\out\a.native.o", Windows));
        assert_ne!(a, comparison_key(r"D:\build\out\a.native.o", Windows));
    }

    #[test]
    fn windows_unc_paths_keep_server_and_share() {
        let a = comparison_key(r"\\server\share\dir\x.o", Windows);
        assert_eq!(a, r"\\server\share\dir\x.o");
        assert_eq!(a, comparison_key(r"\\?\UNC\SERVER\share\dir\x.o", Windows));
        assert_eq!(a, comparison_key("//server/share/dir/x.o", Windows));
        // `..` cannot climb above the share.
        assert_eq!(a, comparison_key(r"\\server\share\..\dir\x.o", Windows));
        assert_ne!(a, comparison_key(r"\\other\share\dir\x.o", Windows));
    }

    #[test]
    fn windows_names_with_spaces_parentheses_and_non_ascii_survive() {
        let key = comparison_key(r"C:\t\t.a(t1.o at 1234).1.Ωμέγα 😀.native.o", Windows);
        assert_eq!(key, r"c:\t\t.a(t1.o at 1234).1.ωμέγα 😀.native.o");
    }

    #[test]
    fn posix_is_case_sensitive_and_macos_is_not() {
        assert_ne!(
            comparison_key("/b/A.o", Posix),
            comparison_key("/b/a.o", Posix)
        );
        assert_eq!(
            comparison_key("/b/A.o", PosixCaseInsensitive),
            comparison_key("/b/./c/../a.o", PosixCaseInsensitive)
        );
        // A backslash is an ordinary character in a POSIX name.
        assert_ne!(
            comparison_key(r"/b/x\y.o", Posix),
            comparison_key("/b/x/y.o", Posix)
        );
    }

    #[test]
    fn roots_are_normalised() {
        assert_eq!(
            split_root(r"\rooted\x", Windows),
            (r"\".to_owned(), r"rooted\x")
        );
        assert_eq!(split_root("/x", Posix), ("/".to_owned(), "x"));
    }
}
