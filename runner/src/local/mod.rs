//! `local` mode: a drop-in for LLVM's `llvm/utils/dtlto/local.py`, which runs each
//! job's compile (`common.args + jobs[i].args`) for real, in order. The jobs run
//! natively (WASI preview 1 cannot start processes), each writing into the same
//! staging and committed by the same transaction as the guest's outputs, and, on
//! Linux, each confined by Landlock to its staging (and with `--hermetic` to reading
//! what it declares).

pub mod args;
mod children;
pub mod confine;
mod confinement;
pub mod error;
mod hermetic;
mod job_file;
mod options;
mod prepare;
mod report;
mod schedule;

pub use options::{options, selected, Options, PROGRAM, WORD};

use crate::error::{RunError, UsageError};
use crate::exit_status;
use crate::interrupt;
use crate::sandbox::plan::{plan, Reads};
use crate::transaction::{self, Begun, Commit, Ending};
use confinement::Confinement;
use dtlto_mock::message::shown;
use error::LocalError;
use hermetic::hermetic_reads;
use job_file::{input_ids, outputs_are_arguments, read_job_file};
use prepare::{prepare_jobs, PrepareContext};
use schedule::run_jobs;
use std::io::Write;
use std::path::Path;

/// Set to `off`, the jobs run unconfined, as where Landlock is missing.
pub const LANDLOCK_VARIABLE: &str = "DTLTO_RUNNER_LANDLOCK";

/// What a stop does to local mode's jobs (a stop hook, registered with the
/// interrupt module): every running one is ended with its process group, none
/// starts after, and every process a job started is killed and reaped (Linux) before
/// the hook returns, so that nothing of theirs can write into the staging the stop
/// then removes.
fn stop_jobs() {
    children::stop_all();
    children::end_all_descendants();
}

/// Runs local mode with `args` (after the word `local`); returns the exit status.
/// Once per process: the planner's memory is left to the process's end.
pub fn run(
    args: &[String],
    verbose: bool,
    cwd: &Path,
) -> Result<exit_status::ExitStatus, RunError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // A closed stdout loses the help, not the status.
        let _ = writeln!(std::io::stdout().lock(), "{}", crate::error::LOCAL_HELP);
        return Ok(exit_status::ExitStatus::Success);
    }
    let options = options(args, verbose).map_err(UsageError::Local)?;
    let job_path = options.job_file.as_str();
    let job_file = read_job_file(&cwd.join(job_path), job_path).map_err(LocalError::from)?;

    let confinement = Confinement::decide(options.hermetic)?;
    outputs_are_arguments(&job_file, job_path)?;

    // What every job may read under --hermetic besides its inputs, checked before
    // anything is created.
    let hermetic_reads = if options.hermetic {
        Some(hermetic_reads(&job_file, cwd).map_err(LocalError::HermeticNotHeld)?)
    } else {
        None
    };

    // The same planning and transaction as the guest's: the outputs and their
    // directories, and the checks (no output is an input or another's output).
    let plan = plan(
        std::slice::from_ref(&options.job_file),
        cwd,
        Reads::JobFileOnly,
        true,
    )
    .map_err(|error| RunError::Plan {
        job_file: job_path.to_owned(),
        error,
    })?;
    let declared: usize = job_file.jobs.iter().map(|j| j.outputs.len()).sum();
    if plan.outputs.len() != declared {
        return Err(LocalError::Changed(job_path.to_owned()).into());
    }
    children::become_reaper().map_err(LocalError::Reaper)?;
    interrupt::on_stop(stop_jobs);
    let transaction = match transaction::reclaim_and_begin(&plan, options.verbose)
        .map_err(|error| RunError::transaction(job_path, error))?
    {
        Begun::Held(transaction) => transaction,
        Begun::Stopped(status) => return Ok(status),
    };
    let Some(staging_outs) = transaction.staged_outputs_dirs() else {
        // A stop took the transaction as soon as it was made, and ends the process.
        transaction.settle(Commit::NotTried);
        return Ok(exit_status::ExitStatus::Failure);
    };
    if options.verbose {
        confinement.describe(job_file.jobs.len(), options.jobs, options.hermetic);
    }

    // Each job's command, outputs pointed at staging, and what it may touch.
    let context = PrepareContext {
        job_file: &job_file,
        job_path,
        plan: &plan,
        transaction: &transaction,
        staging_outs: &staging_outs,
        hermetic_reads: hermetic_reads.as_deref(),
        sealed: confinement.sealed,
        cwd,
        verbose: options.verbose,
    };
    let prepared = match prepare_jobs(&context) {
        Ok(prepared) => prepared,
        Err(error) => {
            let cleanup = transaction.settle(Commit::NotTried).cleanup;
            return Err(RunError::from(error).with_cleanup(cleanup));
        }
    };

    let mut relays = Vec::new();
    let outcome = run_jobs(
        &options,
        &prepared,
        confinement.landlock.is_some(),
        &job_file,
        cwd,
        &mut relays,
    );
    // Nothing a job started may write into the staging once the commit or the
    // cleanup begins, whatever the outcome.
    children::end_all_descendants();
    // Their pipes are closed now: what they held is relayed to its end.
    for relay in relays {
        let _ = relay.join();
    }
    let commit = match (&outcome, interrupt::stopped()) {
        (Ok(()), None) => transaction.commit(&plan, &input_ids(&job_file, job_path, cwd)),
        _ => Commit::NotTried,
    };
    let ending = transaction.settle(commit);
    if let Some(status) = ending.report_stop(job_path) {
        return Ok(status);
    }
    let Ending { commit, cleanup } = ending;
    let failed = match (outcome, commit) {
        (Err(failure), _) => Some(LocalError::Job(failure)),
        (Ok(()), Commit::Failed(error)) => Some(LocalError::Commit(Box::new(error))),
        (Ok(()), Commit::Done(committed)) => {
            if options.verbose {
                for &output in &committed {
                    let path = plan.output_path(output);
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: committed {}",
                        shown(&path.to_string_lossy())
                    );
                }
            }
            None
        }
        (Ok(()), Commit::NotTried) => Some(LocalError::NoTransaction),
    };
    match (failed, cleanup) {
        (None, Ok(())) => Ok(exit_status::ExitStatus::Success),
        (None, Err(failures)) => Err(RunError::CommittedNotRemoved(failures)),
        (Some(error), cleanup) => Err(RunError::from(error).with_cleanup(cleanup)),
    }
}
