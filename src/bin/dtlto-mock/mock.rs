//! mock mode, `mock.py`'s contract: `<src_1> ... <src_n> <job.json>` copies `src_i` to
//! `jobs[i].outputs[0]`; extra sources are ignored.
//!
//! Unlike `mock.py`, it checks the whole job file and opens every source before it
//! writes anything, and a failure leaves no output behind.

use crate::failure::Failure;
use crate::files::{Files, COPY_BLOCK};
use crate::job_text;

pub fn run(files: &Files, sources: &[String], job_path: &str) -> Result<(), Failure> {
    // 1. Read the job file and check every rule.
    let text = job_text::read(files, job_path)?;
    let doc = job_text::parse(&text, job_path)?;
    let job_file = dtlto_mock::job_file::read(&doc)
        .map_err(|violations| job_text::invalid(job_path, &violations))?;

    // 2. One source per job.
    let jobs = &job_file.jobs;
    if sources.len() < jobs.len() {
        return Err(Failure::Job(format!(
            "{job_path} has {} jobs but {}; mock mode needs one source per job, in job \
             order: dtlto-mock <src_1> ... <src_{}> {job_path}",
            jobs.len(),
            match sources.len() {
                0 => "no source was given".to_owned(),
                1 => "only 1 source was given".to_owned(),
                n => format!("only {n} sources were given"),
            },
            jobs.len()
        )));
    }

    // 3. Open every source before writing anything.
    let mut opened = Vec::with_capacity(jobs.len());
    for (i, source) in sources.iter().take(jobs.len()).enumerate() {
        opened.push(files.open(&format!("source {} (for jobs[{i}])", i + 1), source)?);
    }

    // 4. Copy each source to its job's native object, all or nothing.
    let mut outputs = files.staged_outputs();
    let mut buffer = vec![0u8; COPY_BLOCK];
    for (i, (job, source)) in jobs.iter().zip(&mut opened).enumerate() {
        outputs.copy(
            &format!("jobs[{i}].outputs[0]"),
            job.native_object(),
            source,
            &sources[i],
            &mut buffer,
        )?;
    }
    outputs.commit()
}
