//! The DTLTO job file: its typed form, and the rules `validate.py` enforces,
//! each violation reported with its JSON location (`jobs[3].outputs[0]`).

use crate::json::{JsonStr, Value};
use serde::Serialize;
use std::fmt;

/// The document a linker writes to `<output>.<pid>.dist-file.json`. Read only
/// through `read` (which applies every rule); written with serde (the example).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobFile {
    pub common: Common,
    pub jobs: Vec<Job>,
}

/// What every job shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Common {
    /// The linker's output file, as given to the linker.
    pub linker_output: String,
    /// The compile command's common part; `args[0]` is the compiler.
    pub args: Vec<String>,
    /// Inputs every job reads.
    pub inputs: Vec<String>,
}

/// One ThinLTO backend compilation: `common.args + job.args`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    pub args: Vec<String>,
    /// `inputs[0]` is the bitcode module, `inputs[1]` its summary-index shard, the
    /// rest are modules it imports from.
    pub inputs: Vec<String>,
    /// `outputs[0]` is the native object the linker will read.
    pub outputs: Vec<String>,
}

impl Job {
    /// The native object the linker reads back (`outputs[0]`; `read` guarantees one).
    pub fn native_object(&self) -> &str {
        self.outputs.first().map_or("", String::as_str)
    }
}

/// The shape of the value of one key of a job-file object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    String,
    /// A list of strings, with at least this many.
    Strings {
        at_least: usize,
    },
    /// An object with exactly these fields.
    Object(&'static [Field]),
    /// A list of objects with exactly these fields.
    Objects(&'static [Field]),
}

/// A key of a job-file object and the shape of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub key: &'static str,
    pub shape: Shape,
}

/// The schema `validate.py` asserts, which the reader below applies and wit/ states
/// (tests/contract.rs holds the two to each other): keys in order, shapes, minimum
/// counts.
pub const DOCUMENT: &[Field] = &[
    field("common", Shape::Object(COMMON)),
    field("jobs", Shape::Objects(JOB)),
];
pub const COMMON: &[Field] = &[
    field("linker_output", Shape::String),
    field("args", Shape::Strings { at_least: 1 }),
    field("inputs", Shape::Strings { at_least: 0 }),
];
pub const JOB: &[Field] = &[
    field("args", Shape::Strings { at_least: 0 }),
    field("inputs", Shape::Strings { at_least: 2 }),
    field("outputs", Shape::Strings { at_least: 1 }),
];

const fn field(key: &'static str, shape: Shape) -> Field {
    Field { key, shape }
}

/// The least number of strings the list `key` of `fields` may hold.
fn at_least(fields: &[Field], key: &str) -> usize {
    match fields.iter().find(|f| f.key == key).map(|f| f.shape) {
        Some(Shape::Strings { at_least }) => at_least,
        _ => 0,
    }
}

/// The largest job file read, checked before reading. Linkers write about 200
/// bytes a job, so this is millions of jobs; a document that big needs several
/// times its size in the guest's memory (see README, "Inputs").
pub const MAX_JOB_FILE_BYTES: u64 = 1 << 30;

/// Why an output path cannot name a file to write, if it cannot: it ends in a
/// separator, or in `.` or `..` (which the OS would refuse, or resolve to the
/// directory). `is_separator` is the host's rule (`/`, and `\` on Windows).
pub fn output_path_problem(
    path: &str,
    is_separator: impl Fn(char) -> bool,
) -> Option<&'static str> {
    if path.is_empty() {
        return Some("it is empty");
    }
    if path.ends_with(&is_separator) {
        return Some("it ends in a separator, so it names a directory, not a file");
    }
    let last = path.rsplit(&is_separator).next().unwrap_or(path);
    if last == "." || last == ".." {
        return Some("it ends in `.` or `..`, so it names a directory, not a file");
    }
    None
}

/// One broken rule, at one place in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// A JSON location such as `jobs[3].outputs[0]`, or `(top level)`.
    pub location: String,
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.problem)
    }
}

/// Checks the rules of `validate.py` and nothing else; returns every violation.
/// Builds nothing, so a large document costs no second copy of its strings.
pub fn check(doc: &Value<'_>) -> Vec<Violation> {
    let mut reader = Reader {
        violations: Vec::new(),
        purpose: Purpose::Check,
    };
    reader.document(doc);
    reader.violations
}

/// Reads a valid document into its typed form. Beyond `validate.py`'s rules, every
/// string must be real text (no unpaired surrogate), since it will be used as a path.
pub fn read(doc: &Value<'_>) -> Result<JobFile, Vec<Violation>> {
    let mut reader = Reader {
        violations: Vec::new(),
        purpose: Purpose::Read,
    };
    match reader.document(doc) {
        Some(job_file) if reader.violations.is_empty() => Ok(job_file),
        _ => Err(reader.violations),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// Only report violations; the values returned are empty placeholders.
    Check,
    /// Also build the typed document.
    Read,
}

/// A place in the document, rendered (`jobs[3].outputs[0]`) only for a violation.
#[derive(Clone, Copy)]
enum Location<'p> {
    Top,
    Key(&'p Location<'p>, &'p str),
    Index(&'p Location<'p>, usize),
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Top => f.write_str("(top level)"),
            Location::Key(Location::Top, key) => f.write_str(&key_location("", key)),
            Location::Key(parent, key) => f.write_str(&key_location(&parent.to_string(), key)),
            Location::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct Reader {
    violations: Vec<Violation>,
    purpose: Purpose,
}

impl Reader {
    fn report(&mut self, location: &Location<'_>, problem: String) {
        self.violations.push(Violation {
            location: location.to_string(),
            problem,
        });
    }

    fn building(&self) -> bool {
        self.purpose == Purpose::Read
    }

    fn document(&mut self, doc: &Value<'_>) -> Option<JobFile> {
        let top = Location::Top;
        let members = self.object(&top, doc, DOCUMENT)?;
        let common = self.member(members, &top, "common", Self::common);
        let jobs = self.member(members, &top, "jobs", Self::jobs);
        Some(JobFile {
            common: common??,
            jobs: jobs??,
        })
    }

    fn common(&mut self, location: &Location<'_>, value: &Value<'_>) -> Option<Common> {
        let members = self.object(location, value, COMMON)?;
        let linker_output = self.member(members, location, "linker_output", Self::string);
        let args = self.member(members, location, "args", |r, loc, v| {
            r.string_list(
                loc,
                v,
                at_least(COMMON, "args"),
                "argument",
                " (the compiler)",
            )
        });
        let inputs = self.member(members, location, "inputs", |r, loc, v| {
            r.string_list(loc, v, at_least(COMMON, "inputs"), "path", "")
        });
        Some(Common {
            linker_output: linker_output??,
            args: args??,
            inputs: inputs??,
        })
    }

    fn jobs(&mut self, location: &Location<'_>, value: &Value<'_>) -> Option<Vec<Job>> {
        let Value::Array(items) = value else {
            self.report(
                location,
                format!("expected a list of jobs, found {}", value.describe()),
            );
            return None;
        };
        self.each(location, items, Self::job)
    }

    /// Checks every item with `check`; the values, only if all are valid (and only
    /// kept when building: a check-only pass allocates nothing).
    fn each<T>(
        &mut self,
        location: &Location<'_>,
        items: &[Value<'_>],
        mut check: impl FnMut(&mut Self, &Location<'_>, &Value<'_>) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut values = Vec::with_capacity(if self.building() { items.len() } else { 0 });
        let mut all_valid = true;
        for (i, item) in items.iter().enumerate() {
            match check(self, &Location::Index(location, i), item) {
                Some(value) if self.building() => values.push(value),
                Some(_) => {}
                None => all_valid = false,
            }
        }
        all_valid.then_some(values)
    }

    fn job(&mut self, location: &Location<'_>, value: &Value<'_>) -> Option<Job> {
        let members = self.object(location, value, JOB)?;
        let args = self.member(members, location, "args", |r, loc, v| {
            r.string_list(loc, v, at_least(JOB, "args"), "argument", "")
        });
        let inputs = self.member(members, location, "inputs", |r, loc, v| {
            let role = " (the bitcode module and its summary index)";
            r.string_list(loc, v, at_least(JOB, "inputs"), "path", role)
        });
        let outputs = self.member(members, location, "outputs", |r, loc, v| {
            r.string_list(loc, v, at_least(JOB, "outputs"), "path", "")
        });
        Some(Job {
            args: args??,
            inputs: inputs??,
            outputs: outputs??,
        })
    }

    /// An object whose keys must be exactly `keys`; reports the unexpected ones.
    fn object<'v, 'a>(
        &mut self,
        location: &Location<'_>,
        value: &'v Value<'a>,
        fields: &[Field],
    ) -> Option<&'v [(JsonStr<'a>, Value<'a>)]> {
        let expected = || {
            fields
                .iter()
                .map(|f| format!("\"{}\"", f.key))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Value::Object(members) = value else {
            self.report(
                location,
                format!(
                    "expected an object with the keys {}, found {}",
                    expected(),
                    value.describe()
                ),
            );
            return None;
        };
        for (key, _) in members {
            if !fields.iter().any(|f| key.is(f.key)) {
                let key = key.to_string_lossy();
                self.report(
                    &Location::Key(location, &key),
                    format!("unexpected key; expected only {}", expected()),
                );
            }
        }
        Some(members)
    }

    /// Reads a required member: `None` if it is missing, `Some(None)` if it is invalid.
    fn member<T>(
        &mut self,
        members: &[(JsonStr<'_>, Value<'_>)],
        parent: &Location<'_>,
        key: &str,
        read: impl FnOnce(&mut Self, &Location<'_>, &Value<'_>) -> Option<T>,
    ) -> Option<Option<T>> {
        let location = Location::Key(parent, key);
        match members.iter().find(|(k, _)| k.is(key)) {
            Some((_, value)) => Some(read(self, &location, value)),
            None => {
                self.report(&location, "missing required key".to_owned());
                None
            }
        }
    }

    fn string(&mut self, location: &Location<'_>, value: &Value<'_>) -> Option<String> {
        let Value::String(s) = value else {
            self.report(
                location,
                format!("expected a string, found {}", value.describe()),
            );
            return None;
        };
        if !self.building() {
            // validate.py accepts any str, unpaired surrogates included.
            return Some(String::new());
        }
        match s.to_str() {
            Some(text) => Some(text.into_owned()),
            None => {
                self.report(
                    location,
                    "holds an unpaired UTF-16 surrogate, which no file name can hold".to_owned(),
                );
                None
            }
        }
    }

    fn string_list(
        &mut self,
        location: &Location<'_>,
        value: &Value<'_>,
        min_len: usize,
        noun: &str,
        role: &str,
    ) -> Option<Vec<String>> {
        let Value::Array(items) = value else {
            self.report(
                location,
                format!("expected a list of strings, found {}", value.describe()),
            );
            return None;
        };
        let long_enough = items.len() >= min_len;
        if !long_enough {
            self.report(
                location,
                format!(
                    "expected at least {min_len} {noun}{}{role}, found {}",
                    if min_len == 1 { "" } else { "s" },
                    items.len()
                ),
            );
        }
        let strings = self.each(location, items, Self::string);
        strings.filter(|_| long_enough)
    }
}

/// `prefix.key`, or `prefix["odd key"]` when the key is not a plain identifier.
fn key_location(prefix: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (prefix.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{prefix}.{key}"),
        (_, false) => format!(
            "{prefix}[{}]",
            serde_json::to_string(key).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::parse;

    const VALID: &str = r#"{"common":{"linker_output":"app","args":["clang","-c"],"inputs":[]},
        "jobs":[{"args":[],"inputs":["a.o","a.thinlto.bc","b.o"],"outputs":["a.native.o"]}]}"#;

    fn messages(text: &str) -> Vec<String> {
        check(&parse(text).unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_linker_document_reads_into_types() {
        let job_file = read(&parse(VALID).unwrap()).unwrap();
        assert_eq!(job_file.common.args[0], "clang");
        assert_eq!(job_file.jobs[0].native_object(), "a.native.o");
        assert!(check(&parse(VALID).unwrap()).is_empty());
    }

    #[test]
    fn every_violation_is_reported_with_its_location() {
        let text = r#"{"common":{"linker_output":1,"args":[],"inputs":"x","extra":0},
            "jobs":[{"args":[],"inputs":["a"],"outputs":[]},
                    {"args":[null],"inputs":["a","b"]},
                    7],
            "more": true}"#;
        assert_eq!(
            messages(text),
            [
                r#"more: unexpected key; expected only "common", "jobs""#,
                r#"common.extra: unexpected key; expected only "linker_output", "args", "inputs""#,
                "common.linker_output: expected a string, found a number",
                "common.args: expected at least 1 argument (the compiler), found 0",
                "common.inputs: expected a list of strings, found a string",
                "jobs[0].inputs: expected at least 2 paths (the bitcode module and its summary index), found 1",
                "jobs[0].outputs: expected at least 1 path, found 0",
                "jobs[1].args[0]: expected a string, found null",
                "jobs[1].outputs: missing required key",
                r#"jobs[2]: expected an object with the keys "args", "inputs", "outputs", found a number"#,
            ]
        );
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert_eq!(
            messages("[]"),
            [
                r#"(top level): expected an object with the keys "common", "jobs", found an array of 0"#
            ]
        );
    }

    #[test]
    fn odd_keys_are_quoted_in_locations() {
        let text = VALID.replace(r#""jobs""#, r#""odd key":1,"jobs""#);
        assert_eq!(
            messages(&text),
            [r#"["odd key"]: unexpected key; expected only "common", "jobs""#]
        );
    }

    #[test]
    fn output_paths_must_end_in_a_file_name() {
        let slash = |c: char| c == '/';
        assert_eq!(output_path_problem("keep.txt", slash), None);
        assert_eq!(output_path_problem("d/..x", slash), None);
        for path in [
            "keep.txt/",
            "keep.txt/.",
            "newdir/.",
            "a/..",
            "..",
            "",
            "x//",
        ] {
            assert!(output_path_problem(path, slash).is_some(), "{path:?}");
        }
        // A backslash separates only where the host says so.
        assert_eq!(output_path_problem(r"a\", slash), None);
        assert!(output_path_problem(r"a\", |c| c == '/' || c == '\\').is_some());
    }

    #[test]
    fn unpaired_surrogates_pass_validate_but_cannot_be_paths() {
        let text = VALID.replace("a.native.o", r"a\ud800.o");
        assert!(check(&parse(&text).unwrap()).is_empty());
        let errors = read(&parse(&text).unwrap()).unwrap_err();
        assert_eq!(errors[0].location, "jobs[0].outputs[0]");
    }
}
