//! Renders a document as CPython's `json.dumps(doc, indent=4)` does, byte for byte.

use super::{JsonStr, Number, Value};
use std::io::{self, Write};

/// `json.dumps(value, indent=4)`, without a trailing newline.
pub fn dumps_indent4(value: &Value<'_>) -> String {
    let mut out = Out::new(Vec::new());
    write_value(&mut out, value, 0);
    let bytes = out.finish().unwrap_or_default();
    // The renderer emits only ASCII.
    String::from_utf8(bytes).unwrap_or_default()
}

/// Streams `json.dumps(value, indent=4)` to `sink` in blocks, so a large document's
/// text never exists whole in memory.
pub fn write_indent4(value: &Value<'_>, sink: impl Write) -> io::Result<()> {
    let mut out = Out::new(sink);
    write_value(&mut out, value, 0);
    out.finish().map(drop)
}

/// Text on its way to a sink, passed on every `BLOCK` bytes.
struct Out<W: Write> {
    buffer: String,
    sink: W,
    error: Option<io::Error>,
}

const BLOCK: usize = 64 << 10;

impl<W: Write> Out<W> {
    fn new(sink: W) -> Self {
        Out {
            buffer: String::with_capacity(BLOCK + 256),
            sink,
            error: None,
        }
    }

    fn push_str(&mut self, text: &str) {
        self.buffer.push_str(text);
        if self.buffer.len() >= BLOCK {
            self.drain();
        }
    }

    fn push(&mut self, c: char) {
        self.buffer.push(c);
    }

    fn drain(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.sink.write_all(self.buffer.as_bytes()) {
                self.error = Some(e);
            }
        }
        self.buffer.clear();
    }

    fn finish(mut self) -> io::Result<W> {
        self.drain();
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.sink),
        }
    }
}

fn write_value<W: Write>(out: &mut Out<W>, value: &Value<'_>, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => write_container(out, '[', ']', items, level, |out, item, level| {
            write_value(out, item, level)
        }),
        Value::Object(members) => {
            write_container(out, '{', '}', members, level, |out, (key, value), level| {
                write_string(out, key);
                out.push_str(": ");
                write_value(out, value, level);
            })
        }
    }
}

/// Python puts each element on its own line, indented 4 spaces per level, with `,`
/// at line ends; an empty container stays `[]` or `{}`.
fn write_container<T, W: Write>(
    out: &mut Out<W>,
    open: char,
    close: char,
    elements: &[T],
    level: usize,
    write_element: impl Fn(&mut Out<W>, &T, usize),
) {
    out.push(open);
    if elements.is_empty() {
        out.push(close);
        return;
    }
    for (i, element) in elements.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        push_indent(out, level + 1);
        write_element(out, element, level + 1);
    }
    out.push('\n');
    push_indent(out, level);
    out.push(close);
}

fn push_indent<W: Write>(out: &mut Out<W>, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_number<W: Write>(out: &mut Out<W>, number: &Number<'_>) {
    match number {
        // `int("-0")` is 0; every other JSON integer is already in Python's form.
        Number::Int("-0") => out.push_str("0"),
        Number::Int(text) => out.push_str(text),
        // Rust's parser rounds correctly, as Python's `float()` does; overflow is inf.
        Number::Float(text) => match text.parse::<f64>() {
            Ok(x) => out.push_str(&python_float_repr(x)),
            Err(_) => out.push_str(text), // unreachable: the parser checked the grammar
        },
        Number::NaN => out.push_str("NaN"),
        Number::Infinity => out.push_str("Infinity"),
        Number::NegInfinity => out.push_str("-Infinity"),
    }
}

/// The text `json.dumps` gives a float: `float.__repr__`, with `NaN`/`Infinity` spelled
/// as JSON's Python dialect does.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip, as Python's repr does; only
    // the layout differs.
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let mut out = String::from(sign);
    if (-4..16).contains(&exponent) {
        // Fixed notation, always with a fractional part.
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', point.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let point = point as usize;
            if point >= digits.len() {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push_str(&format!(
            "e{}{:02}",
            if exponent < 0 { '-' } else { '+' },
            exponent.unsigned_abs()
        ));
    }
    out
}

/// A string with `ensure_ascii=True`: printable ASCII as is, everything else escaped.
fn write_string<W: Write>(out: &mut Out<W>, s: &JsonStr<'_>) {
    out.push('"');
    for unit in s.utf16_units() {
        match unit {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(char::from(unit as u8)),
            _ => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    fn dumps(text: &str) -> String {
        dumps_indent4(&parse(text).unwrap())
    }

    #[test]
    fn floats_follow_python_repr() {
        for (x, repr) in [
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(python_float_repr(x), repr, "{x:e}");
        }
    }

    #[test]
    fn numbers_render_as_python_values() {
        assert_eq!(
            dumps("[-0, -0.0, 1E5, 1e400, -1e400, 0.1e1, 123456789012345678901234567890]"),
            "[\n    0,\n    -0.0,\n    100000.0,\n    Infinity,\n    -Infinity,\n    1.0,\n    123456789012345678901234567890\n]"
        );
    }

    #[test]
    fn containers_indent_by_four_and_empty_ones_stay_inline() {
        assert_eq!(
            dumps(r#"{"a":[],"b":{},"c":[1,{"d":null}]}"#),
            "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        {\n            \"d\": null\n        }\n    ]\n}"
        );
    }

    #[test]
    fn strings_are_ascii_with_lowercase_escapes() {
        assert_eq!(
            dumps(r#""é😀\u00E9\/\"\\\b\f\n\r\t\u0001\u007f \uD800""#),
            r#""\u00e9\ud83d\ude00\u00e9/\"\\\b\f\n\r\t\u0001\u007f \ud800""#
        );
    }
}
