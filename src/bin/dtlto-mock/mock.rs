//! mock mode, `mock.py`'s contract: `<src_1> ... <src_n> <job.json>` copies `src_i` to
//! `jobs[i].outputs[0]`; extra sources are ignored.
//!
//! Unlike `mock.py`, it checks the whole job file and opens every source before it
//! writes anything, and a failure leaves no output behind. `--fault=` options among
//! the arguments inject the failures of real distributors (see faults.rs).

use crate::failure::Failure;
use crate::faults::{self, Content, Kind};
use crate::files::{CopyBuffer, Files};
use crate::job_text;
use dtlto_mock::job_file::{output_path_problem, JobFile, Violation};
use dtlto_mock::message::quoted;

pub fn run(files: &Files, program: &str, args: &[String], job_path: &str) -> Result<(), Failure> {
    let (faults, sources) = faults::split(args)?;
    if let Some(fault) = faults::exit_before(&faults) {
        faults::announce(program, fault, "the start, before any work");
        return Err(Failure::Injected(status_of(&fault.kind)));
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
    let source_role = |i: usize| format!("source {} (for jobs[{i}])", i + 1);
    for (i, source) in sources.iter().take(jobs.len()).enumerate() {
        files.check_regular(&source_role(i), source)?;
    }

    // 4. Copy each source to its job's native object, all or nothing.
    let mut outputs = files.staged_outputs();
    let mut buffer = CopyBuffer::new();
    for (i, job) in jobs.iter().enumerate() {
        let output = job.native_object();
        let place = format!("jobs[{i}].outputs[0] {}", quoted(output));
        let what = format!("jobs[{i}].outputs[0]");
        for fault in faults::applying(&faults, i, output, |k| matches!(k, Kind::Delay(_))) {
            faults::announce(program, fault, &place);
            if let Kind::Delay(ms) = fault.kind {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
        }
        let (content, fault) = faults::content_for(&faults, i, output);
        if let Some(fault) = fault {
            faults::announce(program, fault, &place);
        }
        match content {
            Content::Copy => {
                let mut source = files.open(&source_role(i), &sources[i])?;
                outputs.copy(&what, output, &mut source, &sources[i], &mut buffer, None)?
            }
            Content::Truncate => {
                let mut source = files.open(&source_role(i), &sources[i])?;
                let half = source.metadata().map(|m| m.len() / 2).unwrap_or(0);
                outputs.copy(
                    &what,
                    output,
                    &mut source,
                    &sources[i],
                    &mut buffer,
                    Some(half),
                )?
            }
            Content::Garbage => outputs.write(&what, output, "", faults::GARBAGE)?,
            Content::Empty => outputs.write(&what, output, "", b"")?,
            Content::Skip => {}
        }
        for fault in faults::applying(&faults, i, output, |k| *k == Kind::ExtraOutput) {
            if job.outputs.len() < 2 {
                faults::announce(
                    program,
                    fault,
                    &format!("jobs[{i}], which declares no extra output: nothing written"),
                );
            }
            for (k, extra) in job.outputs.iter().enumerate().skip(1) {
                faults::announce(
                    program,
                    fault,
                    &format!("jobs[{i}].outputs[{k}] {}", quoted(extra)),
                );
                let text = format!("dtlto-mock --fault=extra-output: jobs[{i}].outputs[{k}]\n");
                outputs.write(
                    &format!("jobs[{i}].outputs[{k}]"),
                    extra,
                    "",
                    text.as_bytes(),
                )?;
            }
        }
        for fault in faults::applying(&faults, i, output, |k| *k == Kind::UndeclaredOutput) {
            faults::announce(
                program,
                fault,
                &format!(
                    "{}, beside {place}",
                    quoted(&format!("{output}.undeclared"))
                ),
            );
            outputs.write(
                "an undeclared output",
                output,
                ".undeclared",
                b"undeclared\n",
            )?;
        }
    }
    outputs.commit()?;

    if let Some(fault) = faults::exit_after(&faults) {
        faults::announce(program, fault, "the end, after the work");
        return Err(Failure::Injected(status_of(&fault.kind)));
    }
    Ok(())
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

fn status_of(kind: &Kind) -> u8 {
    match kind {
        Kind::ExitBefore(status) | Kind::ExitAfter(status) => *status,
        _ => 1,
    }
}
