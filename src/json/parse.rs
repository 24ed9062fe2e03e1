//! A JSON reader that accepts exactly what CPython's `json.loads` accepts.
//!
//! Beyond RFC 8259 that means `NaN`, `Infinity` and `-Infinity`, unpaired `\uD800`
//! escapes and repeated keys (the last value wins, in the first key's place). Like
//! Python it rejects control characters in strings, a byte-order mark, integers with
//! more than 4300 digits and nesting deeper than its recursion limit allows.

use super::{JsonStr, Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// CPython 3.11 running `validate.py` decodes a document nested 994 levels deep (the
/// top level counts as one) and raises `RecursionError` at 995 (its recursion limit
/// of 1000, less the frames below the decoder). We refuse from the same depth.
pub const MAX_DEPTH: usize = 994;

/// CPython refuses to convert integers with more digits than this
/// (`sys.get_int_max_str_digits()`, 3.11 and later).
const MAX_INT_DIGITS: usize = 4300;

/// Objects with more members than this index their keys to find repeats.
const LINEAR_KEY_SEARCH_LIMIT: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole document, as `json.loads(text)` would.
pub fn parse(text: &str) -> Result<Value<'_>, ParseError> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        depth: 0,
        values: Vec::new(),
        members: Vec::new(),
    };
    if text.starts_with('\u{feff}') {
        return Err(parser.error_at(
            0,
            "unexpected UTF-8 byte-order mark (Python's json refuses it)",
        ));
    }
    parser.skip_whitespace();
    let value = parser.value()?;
    parser.skip_whitespace();
    if parser.pos != parser.bytes.len() {
        return Err(parser.error("extra data after the document"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// Items of the arrays being parsed, innermost last. Each array moves its own
    /// into a Vec of exactly its length, so a document costs no growth slack.
    values: Vec<Value<'a>>,
    /// Members of the objects being parsed, likewise.
    members: Vec<(JsonStr<'a>, Value<'a>)>,
}

impl<'a> Parser<'a> {
    fn error(&self, message: &str) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: usize, message: &str) -> ParseError {
        let before = &self.bytes[..pos.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = 1 + String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count();
        ParseError {
            line,
            column,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Python's `WHITESPACE`: space, tab, newline, carriage return.
    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat_literal(&mut self, literal: &str) -> bool {
        if self.bytes[self.pos..].starts_with(literal.as_bytes()) {
            self.pos += literal.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Value<'a>, ParseError> {
        match self.peek() {
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.eat_literal("null") => Ok(Value::Null),
            _ if self.eat_literal("true") => Ok(Value::Bool(true)),
            _ if self.eat_literal("false") => Ok(Value::Bool(false)),
            _ if self.eat_literal("NaN") => Ok(Value::Number(Number::NaN)),
            _ if self.eat_literal("Infinity") => Ok(Value::Number(Number::Infinity)),
            _ => Err(self.error("expected a value")),
        }
    }

    fn nested(
        &mut self,
        parse: fn(&mut Self) -> Result<Value<'a>, ParseError>,
    ) -> Result<Value<'a>, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(&format!(
                "nesting deeper than {MAX_DEPTH} levels (Python's recursion limit)"
            )));
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn array(&mut self) -> Result<Value<'a>, ParseError> {
        self.pos += 1; // '['
        let base = self.values.len();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Value::Array(Vec::new()));
        }
        loop {
            self.skip_whitespace();
            let value = self.value()?;
            self.values.push(value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(self.values.drain(base..).collect()));
                }
                _ => return Err(self.error("expected ',' or ']' in an array")),
            }
        }
    }

    fn object(&mut self) -> Result<Value<'a>, ParseError> {
        self.pos += 1; // '{'
        let base = self.members.len();
        let mut index = None;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Value::Object(Vec::new()));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a property name in double quotes"));
            }
            let key = self.string()?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.error("expected ':' after a property name"));
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value()?;
            insert_member(&mut self.members, base, &mut index, key, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(self.members.drain(base..).collect()));
                }
                _ => return Err(self.error("expected ',' or '}' in an object")),
            }
        }
    }

    /// Checks a string's escapes and returns its raw body.
    fn string(&mut self) -> Result<JsonStr<'a>, ParseError> {
        let start = self.pos + 1;
        self.pos = start;
        loop {
            match self.peek() {
                None => return Err(self.error_at(start - 1, "unterminated string")),
                Some(b'"') => {
                    let raw = &self.text[start..self.pos];
                    self.pos += 1;
                    return Ok(JsonStr::from_checked_raw(raw));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.bytes.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.error("invalid \\uXXXX escape"));
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(0x00..=0x1f) => {
                    return Err(self.error("invalid control character in a string"))
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Python's `NUMBER_RE`, `(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?`, plus `-Infinity`.
    fn number(&mut self) -> Result<Value<'a>, ParseError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if self.eat_literal("Infinity") {
                return Ok(Value::Number(Number::NegInfinity));
            }
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(self.error_at(start, "expected a value")),
        }
        let int_end = self.pos;
        let mut is_float = false;
        if self.peek() == Some(b'.') && self.digit_at(self.pos + 1) {
            self.pos += 1;
            self.skip_digits();
            is_float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            let sign = usize::from(matches!(self.bytes.get(self.pos + 1), Some(b'+' | b'-')));
            if self.digit_at(self.pos + 1 + sign) {
                self.pos += 1 + sign;
                self.skip_digits();
                is_float = true;
            }
        }
        let text = &self.text[start..self.pos];
        if is_float {
            return Ok(Value::Number(Number::Float(text)));
        }
        let digits = int_end - start - usize::from(text.starts_with('-'));
        if digits > MAX_INT_DIGITS {
            return Err(self.error_at(
                start,
                &format!(
                    "integer of {digits} digits exceeds Python's limit of {MAX_INT_DIGITS} digits"
                ),
            ));
        }
        Ok(Value::Number(Number::Int(text)))
    }

    fn digit_at(&self, pos: usize) -> bool {
        self.bytes.get(pos).is_some_and(u8::is_ascii_digit)
    }

    fn skip_digits(&mut self) {
        while self.digit_at(self.pos) {
            self.pos += 1;
        }
    }
}

/// Adds a member to the object whose members start at `members[base]`, with Python
/// `dict` semantics: a repeated key keeps its first place and takes the new value.
/// Large objects index their keys (decoded key -> position after `base`); a BTreeMap,
/// not a HashMap, so that the guest needs no random seed from its host.
fn insert_member<'a>(
    members: &mut Vec<(JsonStr<'a>, Value<'a>)>,
    base: usize,
    index: &mut Option<BTreeMap<Vec<u16>, usize>>,
    key: JsonStr<'a>,
    value: Value<'a>,
) {
    let own = &members[base..];
    if index.is_none() && own.len() >= LINEAR_KEY_SEARCH_LIMIT {
        let built = own
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.utf16_units().collect(), i))
            .collect();
        *index = Some(built);
    }
    let existing = match index {
        None => own.iter().position(|(k, _)| k.same_text(&key)),
        Some(index) => {
            let next = own.len();
            let slot = *index.entry(key.utf16_units().collect()).or_insert(next);
            (slot != next).then_some(slot)
        }
    };
    match existing {
        Some(i) => members[base + i].1 = value,
        None => members.push((key, value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value<'_>) -> Vec<String> {
        match v {
            Value::Object(m) => m.iter().map(|(k, _)| k.to_string_lossy()).collect(),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn repeated_key_keeps_first_place_and_last_value() {
        let v = parse(r#"{"a": 1, "b": 2, "\u0061": 3}"#).unwrap();
        assert_eq!(keys(&v), ["a", "b"]);
        assert_eq!(v.get("a"), Some(&Value::Number(Number::Int("3"))));
    }

    #[test]
    fn repeated_key_in_a_large_object_uses_the_index() {
        let mut text = String::from("{");
        for i in 0..40 {
            text.push_str(&format!("\"k{i}\": {i},"));
        }
        text.push_str("\"k3\": \"last\"}");
        let v = parse(&text).unwrap();
        assert_eq!(keys(&v).len(), 40);
        assert_eq!(keys(&v)[3], "k3");
        assert!(matches!(v.get("k3"), Some(Value::String(s)) if s.is("last")));
    }

    #[test]
    fn python_extensions_are_accepted() {
        let v = parse("[NaN, Infinity, -Infinity, -0, 1E5]").unwrap();
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Number(Number::NaN),
                Value::Number(Number::Infinity),
                Value::Number(Number::NegInfinity),
                Value::Number(Number::Int("-0")),
                Value::Number(Number::Float("1E5")),
            ])
        );
    }

    #[test]
    fn what_python_rejects_is_rejected_with_a_position() {
        for (text, line, column) in [
            ("[1,]", 1, 4),
            ("{\"a\":1,}", 1, 8),
            ("01", 1, 2),
            ("\"a\tb\"", 1, 3),
            ("[\n  \"\\x\"]", 2, 5),
            ("\u{feff}{}", 1, 1),
            ("-", 1, 1),
            ("1.", 1, 2),
            ("nul", 1, 1),
            ("{} {}", 1, 4),
            ("\"open", 1, 1),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!((err.line, err.column), (line, column), "{text:?}: {err}");
        }
    }

    #[test]
    fn integers_beyond_python_digit_limit_are_rejected() {
        assert!(parse(&"7".repeat(4300)).is_ok());
        assert!(parse(&format!("-{}", "7".repeat(4300))).is_ok());
        let err = parse(&"7".repeat(4301)).unwrap_err();
        assert!(err.message.contains("4301 digits"), "{err}");
    }

    #[test]
    fn nesting_is_bounded_instead_of_overflowing_the_stack() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).unwrap_err().message.contains("nesting"));
        let fine = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn escapes_decode_to_utf16_including_lone_surrogates() {
        let v = parse(r#""\ud83d\ude00 \ud800 \/""#).unwrap();
        let Value::String(s) = v else { panic!() };
        let units: Vec<u16> = s.utf16_units().collect();
        assert_eq!(units, [0xd83d, 0xde00, 0x20, 0xd800, 0x20, 0x2f]);
        assert_eq!(s.to_str(), None);
        assert_eq!(s.to_string_lossy(), "\u{1f600} \u{fffd} /");
    }
}
