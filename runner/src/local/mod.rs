//! `local` mode: a drop-in for LLVM's `llvm/utils/dtlto/local.py`, which runs each
//! job's compile (`common.args + jobs[i].args`) for real, in order. The jobs run
//! natively (WASI preview 1 cannot start processes) as an executor of the run's
//! driver (drive.rs): each writes into the staging the driver's transaction commits,
//! and, on Linux, each is confined by Landlock to its staging (and with
//! `--hermetic` to reading what it declares).

mod children;
pub mod confine;
mod confinement;
pub mod error;
mod hermetic;
mod options;
mod prepare;
mod process;
mod report;

pub use options::{parse, selected, Options, LANDLOCK_VARIABLE, PROGRAM, USAGE, WORD};

use crate::drive::{self, Executed, Executor, Run, Staging};
use crate::error::RunError;
use crate::exit_status::ExitStatus;
use crate::interrupt::{self, StopHook};
use crate::jobs::job_file::{input_ids, outputs_are_arguments, plan_outputs, read_job_file};
use crate::jobs::schedule::run_all;
use crate::sandbox::file_id::FileId;
use crate::sandbox::plan::Plan;
use children::Processes;
use confinement::Confinement;
use dtlto_mock::job_file::JobFile;
use error::LocalError;
use hermetic::hermetic_reads;
use prepare::{prepare_jobs, PrepareContext};
use process::LocalJobs;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs local mode as `options` ask, paths relative to `cwd`; returns the exit
/// status.
pub fn run(options: &Options, cwd: &Path) -> Result<ExitStatus, RunError> {
    drive::drive(
        &mut LocalRun {
            options,
            job_file: None,
            confinement: None,
            hermetic_reads: None,
            processes: Arc::new(Processes::new()),
            stop_hook: None,
            cwd,
        },
        &Run {
            job_file: &options.job_file,
            verbose: options.verbose,
            cwd,
        },
    )
}

/// Local mode's executor.
struct LocalRun<'a> {
    options: &'a Options,
    /// The job file, read once by `plan`.
    job_file: Option<JobFile>,
    /// How the jobs are confined, decided by `plan` before anything is created.
    confinement: Option<Confinement>,
    /// With `--hermetic`: what every job may read besides its inputs.
    hermetic_reads: Option<Vec<PathBuf>>,
    /// The jobs' processes, which a stop ends through `stop_hook`.
    processes: Arc<Processes>,
    stop_hook: Option<StopHook>,
    /// What relative paths are taken from.
    cwd: &'a Path,
}

impl Executor for LocalRun<'_> {
    fn plan(&mut self, cwd: &Path) -> Result<Plan, RunError> {
        let job_path = self.options.job_file.as_str();
        let job_file = read_job_file(&cwd.join(job_path), job_path).map_err(LocalError::from)?;
        let confinement = Confinement::decide(self.options.hermetic)?;
        outputs_are_arguments(&job_file, job_path).map_err(LocalError::from)?;
        // What every job may read under --hermetic besides its inputs, checked before
        // anything is created.
        if self.options.hermetic {
            self.hermetic_reads =
                Some(hermetic_reads(&job_file, cwd).map_err(LocalError::HermeticNotHeld)?);
        }
        let plan = plan_outputs(&job_file, job_path, cwd)?;
        self.job_file = Some(job_file);
        self.confinement = Some(confinement);
        Ok(plan)
    }

    fn before_staging(&mut self) -> Result<(), RunError> {
        self.processes.become_reaper().map_err(LocalError::Reaper)?;
        // A stop ends every running job with its process group, none starts after,
        // and every process a job started is killed and reaped (Linux) before the
        // hook returns, so that nothing of theirs can write into the staging the
        // stop then removes.
        let processes = Arc::clone(&self.processes);
        self.stop_hook = Some(interrupt::on_stop(move || {
            processes.stop_all();
            processes.end_all_descendants();
        }));
        Ok(())
    }

    fn execute(&mut self, staging: &Staging) -> Executed {
        let (Some(job_file), Some(confinement)) = (&self.job_file, &self.confinement) else {
            return Executed::Failed(RunError::NoCommit);
        };
        let options = self.options;
        if options.verbose {
            confinement.describe(job_file.jobs.len(), options.jobs, options.hermetic);
        }
        // Each job's command, outputs pointed at staging, and what it may touch.
        let context = PrepareContext {
            job_file,
            staging,
            hermetic_reads: self.hermetic_reads.as_deref(),
            sealed: confinement.sealed,
            cwd: self.cwd,
            verbose: options.verbose,
        };
        let prepared = match prepare_jobs(&context) {
            Ok(prepared) => prepared,
            Err(error) => return Executed::Failed(error.into()),
        };
        let mut jobs = LocalJobs {
            options,
            jobs: &prepared,
            landlock: confinement.landlock.is_some(),
            job_file,
            cwd: self.cwd,
            children: &self.processes,
            relays: Vec::new(),
        };
        let outcome = run_all(&mut jobs, prepared.len(), options.jobs);
        // Nothing a job started may write into the staging once the commit or the
        // cleanup begins, whatever the outcome.
        self.processes.end_all_descendants();
        // Their pipes are closed now: what they held is relayed to its end.
        for relay in jobs.relays {
            let _ = relay.join();
        }
        match outcome {
            Ok(()) => Executed::Done,
            Err(failure) => Executed::Failed(LocalError::Job(failure).into()),
        }
    }

    fn inputs(&self, _: &Plan, cwd: &Path) -> HashSet<FileId> {
        match &self.job_file {
            Some(job_file) => input_ids(job_file, &self.options.job_file, cwd),
            None => HashSet::new(),
        }
    }
}
