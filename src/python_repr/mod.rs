//! Python's `repr()` of a list of strings, as in `validate.py`'s first output line,
//! `print(f"{distributor_args=}")`.

mod unprintable;

pub use unprintable::UNICODE_VERSION;

/// `repr(list_of_str)`: `['a', "it's"]`.
pub fn repr_str_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_repr_str(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`; backslash, the quote,
/// `\t` `\n` `\r` and unprintable characters escaped; printable non-ASCII kept.
pub fn repr_str(text: &str) -> String {
    let mut out = String::new();
    push_repr_str(&mut out, text);
    out
}

fn push_repr_str(out: &mut String, text: &str) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let cp = u32::from(c);
                if cp <= 0xff {
                    out.push_str(&format!("\\x{cp:02x}"));
                } else if cp <= 0xffff {
                    out.push_str(&format!("\\u{cp:04x}"));
                } else {
                    out.push_str(&format!("\\U{cp:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// CPython's `str.isprintable()` for one character.
fn is_printable(c: char) -> bool {
    let cp = u32::from(c);
    if cp < 0x7f {
        return cp >= 0x20;
    }
    unprintable::UNPRINTABLE
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_switch_only_for_a_lone_single_quote_kind() {
        assert_eq!(repr_str("a"), "'a'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("'\""), r#"'\'"'"#);
        assert_eq!(repr_str("\""), "'\"'");
    }

    #[test]
    fn escapes_follow_cpython() {
        assert_eq!(repr_str("C:\\x\ty\n\r"), r"'C:\\x\ty\n\r'");
        assert_eq!(repr_str("\u{1}\u{7f}\u{a0}é"), r"'\x01\x7f\xa0é'");
        assert_eq!(repr_str("\u{200b}\u{e0001}😀"), r"'\u200b\U000e0001😀'");
    }

    #[test]
    fn lists_join_with_comma_space() {
        assert_eq!(repr_str_list::<&str>(&[]), "[]");
        assert_eq!(
            repr_str_list(&["--da1=10", "--da2=10"]),
            "['--da1=10', '--da2=10']"
        );
    }
}
