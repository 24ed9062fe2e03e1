//! JSON exactly as CPython's `json` module reads and writes it.
//!
//! `validate.py` prints the job file with `json.dumps(doc, indent=4)`, and LLVM's tests
//! FileCheck that text, so we keep every value as its source text (numbers, escapes)
//! and re-render it the way Python would, instead of round-tripping through `f64`/`String`.

mod parse;
mod render;

pub use parse::{parse, ParseError};
pub use render::{dumps_indent4, write_indent4};

use std::borrow::Cow;

/// A parsed document; strings and numbers borrow their text from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number<'a>),
    String(JsonStr<'a>),
    Array(Vec<Value<'a>>),
    /// Keys in first-seen order; a repeated key keeps its first position and its last
    /// value, as a Python `dict` does.
    Object(Vec<(JsonStr<'a>, Value<'a>)>),
}

/// A number as Python's parser classifies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number<'a> {
    /// `-?(0|[1-9][0-9]*)`: a Python `int`, unbounded.
    Int(&'a str),
    /// Has a fraction or an exponent: a Python `float`.
    Float(&'a str),
    NaN,
    Infinity,
    NegInfinity,
}

/// The text between a string's quotes, escapes not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonStr<'a> {
    raw: &'a str,
}

impl<'a> JsonStr<'a> {
    /// Wraps text that the parser has already checked.
    pub(crate) fn from_checked_raw(raw: &'a str) -> Self {
        JsonStr { raw }
    }

    /// The string's UTF-16 code units after decoding escapes. Python strings may hold
    /// unpaired surrogates (`"\ud800"`), so this, not `&str`, is the exact value.
    pub fn utf16_units(&self) -> impl Iterator<Item = u16> + 'a {
        Utf16Units {
            rest: self.raw,
            pending_low: None,
        }
    }

    /// The decoded text, or `None` if it holds an unpaired surrogate.
    pub fn to_str(&self) -> Option<Cow<'a, str>> {
        if !self.raw.contains('\\') {
            return Some(Cow::Borrowed(self.raw));
        }
        char::decode_utf16(self.utf16_units())
            .collect::<Result<String, _>>()
            .ok()
            .map(Cow::Owned)
    }

    /// The decoded text with unpaired surrogates shown as U+FFFD (for messages).
    pub fn to_string_lossy(&self) -> String {
        char::decode_utf16(self.utf16_units())
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Python equality: compares decoded values, so `"a"` equals `"\u0061"`.
    pub fn same_text(&self, other: &JsonStr<'_>) -> bool {
        if self.raw == other.raw {
            return true;
        }
        self.utf16_units().eq(other.utf16_units())
    }

    /// Whether the decoded string equals `text`.
    pub fn is(&self, text: &str) -> bool {
        if !self.raw.contains('\\') {
            return self.raw == text;
        }
        self.utf16_units().eq(text.encode_utf16())
    }
}

/// Decodes a checked raw JSON string body into UTF-16 code units.
struct Utf16Units<'a> {
    rest: &'a str,
    pending_low: Option<u16>,
}

impl Iterator for Utf16Units<'_> {
    type Item = u16;

    fn next(&mut self) -> Option<u16> {
        if let Some(low) = self.pending_low.take() {
            return Some(low);
        }
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        if c != '\\' {
            self.rest = chars.as_str();
            let mut buf = [0u16; 2];
            let units = c.encode_utf16(&mut buf);
            if units.len() == 2 {
                self.pending_low = Some(units[1]);
            }
            return Some(units[0]);
        }
        // The parser has validated every escape, so these indexings cannot fail.
        let escape = chars.next().unwrap_or('\\');
        let unit = match escape {
            'b' => 0x08,
            'f' => 0x0c,
            'n' => 0x0a,
            'r' => 0x0d,
            't' => 0x09,
            'u' => {
                let hex = chars.as_str().get(..4).unwrap_or("0000");
                let unit = u16::from_str_radix(hex, 16).unwrap_or(0);
                self.rest = &chars.as_str()[hex.len()..];
                return Some(unit);
            }
            other => other as u16, // '"', '\\' and '/'
        };
        self.rest = chars.as_str();
        Some(unit)
    }
}

impl Value<'_> {
    /// How a message names this value's kind, e.g. "an array of 3".
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Number(_) => "a number".to_owned(),
            Value::String(_) => "a string".to_owned(),
            Value::Array(items) => format!("an array of {}", items.len()),
            Value::Object(_) => "an object".to_owned(),
        }
    }

    /// The value under `key` in an object.
    pub fn get(&self, key: &str) -> Option<&Self> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k.is(key)).map(|(_, v)| v),
            _ => None,
        }
    }
}
