//! The job file as the native modes read it (once, checked as validate.py checks
//! it), and what follows from it: each job's command and the identities of what the
//! jobs read.

use super::args;
use super::error::JobFileError;
use crate::error::RunError;
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::{plan, Jobs, Plan, Reads};
use dtlto_mock::job_file::{self, JobFile, MAX_JOB_FILE_BYTES};
use dtlto_mock::message::file_kind;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// The identities of what the jobs read (their declared inputs and the job file),
/// where another name of one could pass the planner's comparison of names: Windows,
/// whose short names (`INLONG~1.O`) are a second name of the same entry, so that the
/// commit refuses an output that would replace an input. Elsewhere a second name is
/// a hard link, whose replacement leaves the input itself untouched.
pub fn input_ids(job_file: &JobFile, job_path: &str, cwd: &Path) -> HashSet<FileId> {
    if !cfg!(windows) {
        return HashSet::new();
    }
    let inputs = job_file.jobs.iter().flat_map(|job| job.inputs.iter());
    job_file
        .common
        .inputs
        .iter()
        .chain(inputs)
        .map(String::as_str)
        .chain([job_path])
        .filter_map(|path| file_id::of_path_followed(&cwd.join(path)).ok())
        .collect()
}

/// `common.args + jobs[i].args`: job `i`'s command as the job file has it.
pub fn full_args(job_file: &JobFile, i: usize) -> Vec<String> {
    let mut command = job_file.common.args.clone();
    command.extend(job_file.jobs[i].args.iter().cloned());
    command
}

/// Reads and checks the job file (the rules validate.py enforces).
pub fn read_job_file(path: &Path, shown_as: &str) -> Result<JobFile, JobFileError> {
    let shown_as = shown_as.to_owned();
    // Without waiting for a writer, should it be a FIFO; then refused unless regular.
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = match open.open(path) {
        Ok(file) => file,
        Err(error) => return Err(JobFileError::Open { shown_as, error }),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) => {
            return Err(JobFileError::NotRegular {
                shown_as,
                kind: file_kind(&meta.file_type()),
            })
        }
        Err(error) => return Err(JobFileError::Read { shown_as, error }),
    }
    let mut text = String::new();
    if let Err(error) = file.take(MAX_JOB_FILE_BYTES + 1).read_to_string(&mut text) {
        return Err(JobFileError::Read { shown_as, error });
    }
    if text.len() as u64 > MAX_JOB_FILE_BYTES {
        return Err(JobFileError::TooBig {
            shown_as,
            limit: MAX_JOB_FILE_BYTES,
        });
    }
    let doc = match dtlto_mock::json::parse(&text) {
        Ok(doc) => doc,
        Err(error) => return Err(JobFileError::NotJson { shown_as, error }),
    };
    job_file::read(&doc).map_err(|violations| JobFileError::Invalid {
        shown_as,
        violations,
    })
}

/// Refuses a job file whose outputs are not all among their jobs' arguments, where
/// the runner could not point them at staging.
pub fn outputs_are_arguments(job_file: &JobFile, job_path: &str) -> Result<(), JobFileError> {
    for (i, job) in job_file.jobs.iter().enumerate() {
        let mut command = full_args(job_file, i);
        for (k, output) in job.outputs.iter().enumerate() {
            if args::point_output(&mut command, output, output) == 0 {
                return Err(JobFileError::OutputNotAnArgument {
                    shown_as: job_path.to_owned(),
                    job: i,
                    output: k,
                    path: output.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Plans a native mode's run from the job file it read: the outputs and their
/// directories, with the guest's checks (no output is an input, the job file, or
/// another job's output).
pub fn plan_outputs(job_file: &JobFile, job_path: &str, cwd: &Path) -> Result<Plan, RunError> {
    plan(
        &[job_path.to_owned()],
        cwd,
        Reads::JobFileOnly,
        Jobs::Read(job_file),
    )
    .map_err(|error| RunError::Plan {
        job_file: job_path.to_owned(),
        error,
    })
}

/// A native mode's arguments (after its `word`), if this command line selects it:
/// by the word first, or by the program's name (`dtlto-local`, a copy or link).
pub fn mode_args<'a>(
    word: &str,
    name: &str,
    program: &str,
    args: &'a [String],
) -> Option<&'a [String]> {
    match args.first() {
        Some(first) if first == word => Some(&args[1..]),
        _ if program == name => Some(args),
        _ => None,
    }
}

/// A native mode's last argument, the job file: one or more words, of which only
/// the last counts (linkers pass words before it, as local.py ignores them).
pub fn job_file_arg(help: &'static str) -> clap::Arg {
    clap::Arg::new("args")
        .value_name("JOB_FILE")
        .required(true)
        .num_args(1..)
        .action(clap::ArgAction::Append)
        .help(help)
}

/// The job file `job_file_arg` read: its last word.
pub fn job_file_of(matches: &clap::ArgMatches) -> String {
    matches
        .get_many::<String>("args")
        .and_then(|mut words| words.next_back())
        .cloned()
        .unwrap_or_default()
}
