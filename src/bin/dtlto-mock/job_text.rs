//! Loading the job file: its bytes, its JSON, and how its problems are reported.

use crate::failure::Failure;
use crate::files::Files;
use dtlto_mock::job_file::Violation;
use dtlto_mock::json::{self, Value};
use dtlto_mock::message::shown;

/// The job file's text; it must be UTF-8, as Python's `open()` expects.
pub fn read(files: &Files, job_path: &str) -> Result<String, Failure> {
    let bytes = files.read_job_file("the job file", job_path)?;
    String::from_utf8(bytes).map_err(|e| {
        Failure::Job(format!(
            "{}: not UTF-8 text (invalid byte at offset {})",
            shown(job_path),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Parses the text as Python's `json.load` would.
pub fn parse<'t>(text: &'t str, job_path: &str) -> Result<Value<'t>, Failure> {
    json::parse(text).map_err(|e| {
        Failure::Job(format!(
            "{}:{}:{}: not valid JSON: {}",
            shown(job_path),
            e.line,
            e.column,
            e.message
        ))
    })
}

/// A summary, then one line per violation naming the file and the JSON location.
pub fn invalid(job_path: &str, violations: &[Violation]) -> Failure {
    let job_path = shown(job_path);
    let mut message = format!(
        "{job_path} is not a valid DTLTO job file ({} problem{}):",
        violations.len(),
        if violations.len() == 1 { "" } else { "s" }
    );
    for violation in violations {
        message.push_str(&format!("\n  {job_path}: {violation}"));
    }
    Failure::Job(message)
}
