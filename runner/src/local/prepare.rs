//! Preparing local mode's jobs: each job's command with its outputs pointed at
//! staging, its TMPDIR (made by the transaction), and what it may write and read.

use super::confine;
use super::error::{JobError, LocalError};
use super::process::Prepared;
use crate::drive::Staging;
use crate::jobs::args;
use crate::jobs::job_file::full_args;
use crate::transaction::job_tmp_path;
use dtlto_mock::job_file::JobFile;
use dtlto_mock::message::quoted;
use std::path::{Path, PathBuf};

/// What preparing the jobs needs to know of the run.
pub(super) struct PrepareContext<'a> {
    pub job_file: &'a JobFile,
    /// Where the outputs are staged; its transaction makes each job's TMPDIR.
    pub staging: &'a Staging<'a>,
    /// With `--hermetic`: what every job may read besides its inputs.
    pub hermetic_reads: Option<&'a [PathBuf]>,
    /// Whether jobs are sealed (all but their staging read-only).
    pub sealed: bool,
    pub cwd: &'a Path,
    pub verbose: bool,
}

/// Each job, ready to start, in job order. The plan was made from this job file:
/// its outputs are the job file's, in order.
pub(super) fn prepare_jobs(context: &PrepareContext) -> Result<Vec<Prepared>, LocalError> {
    let PrepareContext {
        job_file,
        staging,
        hermetic_reads,
        sealed,
        cwd,
        verbose,
    } = *context;
    let mut prepared = Vec::with_capacity(job_file.jobs.len());
    let mut outputs = staging.plan.outputs.iter().enumerate();
    for (i, job) in job_file.jobs.iter().enumerate() {
        let mut command = full_args(job_file, i);
        let mut writable = Vec::new();
        let mut native_object = None;
        let mut first_dir = None;
        for output in &job.outputs {
            let Some((k, planned)) = outputs.next() else {
                return Err(LocalError::NotPlanned(format!("jobs[{i}]")));
            };
            let out = &staging.outputs_dirs[planned.dir];
            first_dir.get_or_insert(planned.dir);
            let staged = staging.output_path(k);
            args::point_output(&mut command, output, &args::for_job(&staged));
            native_object.get_or_insert(staged);
            if !writable.contains(out) {
                writable.push(out.clone());
            }
        }
        // Its TMPDIR, made by the transaction in its first output's staging, apart
        // from the outputs the commit checks.
        let tmp = match first_dir {
            Some(dir) => match staging.transaction.job_tmp(dir, i) {
                Ok(tmp) => tmp,
                Err(error) => {
                    let dir = job_tmp_path(&staging.outputs_dirs[dir], i);
                    return Err(LocalError::Job(JobError::Tmpdir { job: i, dir, error }));
                }
            },
            None => PathBuf::new(),
        };
        writable.push(tmp.clone());
        // A compile asked for its temporaries (`-save-temps`, as LLVM's own tests
        // ask with --thinlto-remote-compiler-arg) writes them in the working
        // directory, named after its input, where local.py lets them land: that job
        // may write there too. Its declared outputs still go through staging.
        if args::asks_for_temporaries_in_cwd(&command) {
            writable.push(cwd.to_path_buf());
            if verbose {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: jobs[{i}] asks for -save-temps: it may also write in the \
                     working directory {}",
                    quoted(&cwd.to_string_lossy())
                );
            }
        }
        let readable = hermetic_reads.map(|reads| {
            let mut readable: Vec<PathBuf> = job_file
                .common
                .inputs
                .iter()
                .chain(&job.inputs)
                .map(|p| cwd.join(p))
                .collect();
            readable.extend(reads.iter().cloned());
            readable
        });
        prepared.push(Prepared {
            index: i,
            command,
            tmp,
            native_object: native_object.unwrap_or_default(),
            rules: confine::Rules {
                writable,
                readable,
                seal: sealed,
                cwd: cwd.to_path_buf(),
            },
        });
    }
    Ok(prepared)
}
