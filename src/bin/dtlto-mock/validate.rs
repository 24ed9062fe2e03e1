//! validate mode, `validate.py`'s contract: prints `distributor_args=[...]` and the job
//! file as `json.dumps(doc, indent=4)`, byte for byte, then checks the schema.

use crate::failure::Failure;
use crate::files::Files;
use crate::job_text;
use dtlto_mock::json::write_indent4;
use dtlto_mock::python_repr::repr_str_list;
use std::io::Write;

pub fn run(files: &Files, distributor_args: &[String], job_path: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    // 1. Print the distributor arguments (even if the job file then fails to load).
    writeln!(
        stdout,
        "distributor_args={}",
        repr_str_list(distributor_args)
    )
    .and_then(|()| stdout.flush())
    .map_err(stdout_failure)?;
    // 2. Load the job file.
    let text = job_text::read(files, job_path)?;
    let doc = job_text::parse(&text, job_path)?;
    // 3. Pretty-print it, streamed.
    write_indent4(&doc, &mut stdout)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush())
        .map_err(stdout_failure)?;
    // 4. Check the rules.
    let violations = dtlto_mock::job_file::check(&doc);
    if violations.is_empty() {
        Ok(())
    } else {
        Err(job_text::invalid(job_path, &violations))
    }
}

fn stdout_failure(e: std::io::Error) -> Failure {
    Failure::Job(format!("cannot write to stdout: {e}"))
}
