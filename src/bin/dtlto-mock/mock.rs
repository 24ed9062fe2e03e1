//! mock mode, `mock.py`'s contract: `<src_1> ... <src_n> <job.json>` copies `src_i` to
//! `jobs[i].outputs[0]`; extra sources are ignored.
//!
//! Unlike `mock.py`, it checks the whole job file and opens every source before it
//! writes anything, and a failure leaves no output behind. `--fault=` options among
//! the arguments inject the failures of real distributors (see faults.rs).

use crate::failure::Failure;
use crate::faults::{self, Content, Step};
use crate::files::{CopyBuffer, Files};
use crate::job_text;
use dtlto_mock::job_file::{output_path_problem, JobFile, Violation};
use dtlto_mock::message::quoted;
use std::fmt;

pub fn run(files: &Files, program: &str, args: &[String], job_path: &str) -> Result<(), Failure> {
    let (faults, sources) = faults::split(args)?;
    if let Some((fault, status)) = faults::exit_before(&faults) {
        faults::announce(program, &fault.spec, "the start, before any work");
        return Err(Failure::Injected(status));
    }

    // 1. Read the job file and check every rule.
    let text = job_text::read(files, job_path)?;
    let doc = job_text::parse(&text, job_path)?;
    let job_file = dtlto_mock::job_file::read(&doc)
        .map_err(|violations| job_text::invalid(job_path, &violations))?;
    let unwritable = unwritable_outputs(&job_file);
    if !unwritable.is_empty() {
        return Err(job_text::invalid(job_path, &unwritable));
    }

    // 2. One source per job.
    let jobs = &job_file.jobs;
    if sources.len() < jobs.len() {
        let job_path = dtlto_mock::message::shown(job_path);
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

    // 3. Check every source before writing anything. Each is opened only when its
    //    copy starts, so a link of any size needs two open files, not one per job.
    for (i, source) in sources.iter().take(jobs.len()).enumerate() {
        files.check_regular(&SourceRole(i), source)?;
    }

    // 4. Write each job's outputs as planned (a copy of its source, unless a fault
    //    says otherwise), all or nothing.
    let plan = faults::plan(&faults, jobs);
    let mut outputs = files.staged_outputs();
    let mut buffer = CopyBuffer::new();
    for (i, job) in plan.jobs.iter().enumerate() {
        for step in &job.steps {
            match step {
                Step::Announce { spec, place } => faults::announce(program, spec, place),
                Step::Wait(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
                Step::Write {
                    location,
                    path,
                    suffix,
                    content,
                } => match content {
                    Content::Bytes(bytes) => outputs.write(location, path, suffix, bytes)?,
                    Content::Source | Content::HalfOfSource => {
                        let mut source = files.open(&SourceRole(i), &sources[i])?;
                        let limit = (*content == Content::HalfOfSource)
                            .then(|| source.metadata().map(|m| m.len() / 2).unwrap_or(0));
                        outputs.copy(
                            location,
                            path,
                            &mut source,
                            &sources[i],
                            &mut buffer,
                            limit,
                        )?
                    }
                },
            }
        }
    }
    outputs.commit()?;

    if let Some((spec, status)) = plan.exit_after {
        faults::announce(program, &spec, "the end, after the work");
        return Err(Failure::Injected(status));
    }
    Ok(())
}

/// "source 3 (for jobs[2])": what the source of `jobs[i]` is called in a message,
/// formatted only for one.
struct SourceRole(usize);

impl fmt::Display for SourceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "source {} (for jobs[{}])", self.0 + 1, self.0)
    }
}

/// Outputs that cannot name a file (`keep.txt/`, `newdir/.`): refused before any
/// work, as the OS would refuse them, instead of writing a file of another name.
fn unwritable_outputs(job_file: &JobFile) -> Vec<Violation> {
    let mut found = Vec::new();
    for (j, job) in job_file.jobs.iter().enumerate() {
        for (k, output) in job.outputs.iter().enumerate() {
            if let Some(problem) = output_path_problem(output, |c| c == '/') {
                found.push(Violation {
                    location: format!("jobs[{j}].outputs[{k}]"),
                    problem: format!("{} cannot be written: {problem}", quoted(output)),
                });
            }
        }
    }
    found
}
