//! The one pipeline every mode runs through: plan, reclaim what dead runs left and
//! begin the transaction (held where a stop can reach it), execute into the
//! staging, commit only after a clean execution that no stop interrupted, settle,
//! then say how the run ended and give its exit status.
//!
//! A mode plugs in an `Executor`: how it plans from the job file, read once, and
//! how it writes the outputs into the staging. Everything else (the error path, the
//! `--verbose` lines of the commit, stops and the exit-status table) is here once.

use crate::error::{self, RunError};
use crate::exit_status::ExitStatus;
use crate::interrupt;
use crate::sandbox::file_id::FileId;
use crate::sandbox::free_beside;
use crate::sandbox::plan::Plan;
use crate::transaction::{self, Begun, Commit, Ending, HeldTransaction};
use dtlto_mock::message::shown;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a mode does that the others do not.
pub trait Executor {
    /// Plans the run: reads the job file (once: what the mode needs of it later, it
    /// keeps) and decides the outputs. Nothing exists yet to clean up.
    fn plan(&mut self, cwd: &Path) -> Result<Plan, RunError>;

    /// Readies what must be in place before anything is staged (local mode: the
    /// reaper of its jobs' processes, and their stop hook).
    fn before_staging(&mut self) -> Result<(), RunError> {
        Ok(())
    }

    /// Writes the outputs into the staging; `Done` asks for the commit.
    fn execute(&mut self, staging: &Staging) -> Executed;

    /// After a commit that moved every output into place, and before the staging
    /// is removed: what else the run brings back (remote mode: a compile's
    /// -save-temps temporaries, in its job's directory in the staging).
    fn committed(&mut self, _plan: &Plan, _cwd: &Path, _transaction: &HeldTransaction) {}

    /// The identities of the files the run reads, where another name of one could
    /// pass the planner's comparison of names (Windows short names): the commit
    /// refuses to replace them. Empty elsewhere.
    fn inputs(&self, plan: &Plan, cwd: &Path) -> HashSet<FileId>;
}

/// The staging an executor writes into.
pub struct Staging<'a> {
    /// The run's plan: its outputs and their directories.
    pub plan: &'a Plan,
    /// The run's transaction (each job's TMPDIR is made by it).
    pub transaction: &'a HeldTransaction,
    /// Where each of the plan's output directories stages its outputs, in order:
    /// `plan.outputs[k]` is staged at `outputs_dirs[dir].join(file_name)`.
    pub outputs_dirs: &'a [PathBuf],
}

impl Staging<'_> {
    /// Where `plan.outputs[index]` is staged.
    pub fn output_path(&self, index: usize) -> PathBuf {
        let output = &self.plan.outputs[index];
        self.outputs_dirs[output.dir].join(&output.file_name)
    }
}

/// How an execution ended.
pub enum Executed {
    /// Every output is staged: commit them.
    Done,
    /// The distributor itself failed with this status, and said why: the status is
    /// passed on, with nothing committed.
    Status(ExitStatus),
    /// The run failed, as the error says; nothing is committed.
    Failed(RunError),
}

/// The run as the command line gives it.
pub struct Run<'a> {
    /// The job file as written, which messages name.
    pub job_file: &'a str,
    /// `--verbose`: say what is committed.
    pub verbose: bool,
    /// What relative paths are taken from.
    pub cwd: &'a Path,
}

/// Runs `executor` through the pipeline; returns the exit status, or the error
/// that ended the run (main.rs prints it).
pub fn drive(executor: &mut dyn Executor, run: &Run) -> Result<ExitStatus, RunError> {
    let plan = executor.plan(run.cwd)?;
    executor.before_staging()?;
    let transaction = match transaction::reclaim_and_begin(&plan, run.verbose)
        .map_err(|error| RunError::transaction(run.job_file, error))?
    {
        Begun::Held(transaction) => transaction,
        Begun::Stopped(status) => return Ok(status),
    };
    let executed = match transaction.staged_outputs_dirs() {
        Some(outputs_dirs) => executor.execute(&Staging {
            plan: &plan,
            transaction: &transaction,
            outputs_dirs: &outputs_dirs,
        }),
        // A stop took the transaction as soon as it was made, and ends the run.
        None => Executed::Status(ExitStatus::Failure),
    };
    let commit = match (&executed, interrupt::stopped()) {
        (Executed::Done, None) => transaction.commit(&plan, &executor.inputs(&plan, run.cwd)),
        _ => Commit::NotTried,
    };
    if matches!(commit, Commit::Done(_)) && interrupt::stopped().is_none() {
        executor.committed(&plan, run.cwd, &transaction);
    }
    let status = finish(run, &plan, executed, transaction.settle(commit));
    // The plan of a large link holds tens of thousands of paths.
    let entries = plan.guest_paths.len() + plan.outputs.len();
    free_beside(plan, entries);
    status
}

/// Says how the run ended and picks the exit status.
fn finish(
    run: &Run,
    plan: &Plan,
    executed: Executed,
    ending: Ending,
) -> Result<ExitStatus, RunError> {
    if let Some(status) = ending.report_stop(run.job_file) {
        return Ok(status);
    }
    let Ending { commit, cleanup } = ending;
    let status = match (executed, commit) {
        (Executed::Failed(error), _) => return Err(error.with_cleanup(cleanup)),
        (_, Commit::Failed(error)) => {
            return Err(RunError::transaction(run.job_file, error).with_cleanup(cleanup));
        }
        (Executed::Status(status), _) => status,
        (Executed::Done, Commit::Done(committed)) => {
            if run.verbose {
                for &output in &committed {
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: committed {}",
                        shown(&plan.output_path(output).to_string_lossy())
                    );
                }
            }
            ExitStatus::Success
        }
        // Only a stop leaves a clean execution uncommitted, and it left above.
        (Executed::Done, Commit::NotTried) => {
            return Err(RunError::NoCommit.with_cleanup(cleanup));
        }
    };
    if let Err(failures) = cleanup {
        if status == ExitStatus::Success {
            return Err(RunError::CommittedNotRemoved(failures));
        }
        // The distributor's own failure keeps its status.
        dtlto_mock::stderr_line!(
            "dtlto-runner: error: the staging could not be removed: {}",
            error::reasons(&failures)
        );
    }
    Ok(status)
}
