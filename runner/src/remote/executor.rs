//! Remote mode as an executor of the run's driver (drive.rs): each job sent as an
//! action (the core, `super::Remote`), N in flight at a time by the shared scheduler
//! (jobs/schedule.rs), its outputs written into the staging the driver commits.
//! A stop, or another job's failure, cancels what is in flight on the service.

use super::options::Options;
use super::temporaries::{self, DeclaredPaths};
use super::{Cancel, JobResult, Remote, RemoteError, RemoteJob, Temporaries};
use crate::drive::{Executed, Executor, Staging};
use crate::error::RunError;
use crate::interrupt::{self, StopHook};
use crate::jobs::args;
use crate::jobs::job_file::{full_args, input_ids, plan_outputs, read_job_file};
use crate::jobs::relay::relay_whole;
use crate::jobs::schedule::{run_all, JobKind, Progress};
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::Plan;
use crate::transaction::HeldTransaction;
use dtlto_mock::job_file::JobFile;
use dtlto_mock::message::quoted;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

/// Why remote mode failed: its command line, the service, or a job.
#[derive(Debug, thiserror::Error)]
pub enum RemoteRunError {
    /// The job file cannot be used.
    #[error(transparent)]
    JobFile(#[from] crate::jobs::error::JobFileError),
    /// The service, or a job's action.
    #[error("{0}\n  nothing was committed: every output is as it was before the run")]
    Remote(#[from] RemoteError),
    /// A job's compile failed (its message, with its stderr).
    #[error("{0}\n  nothing was committed: every output is as it was before the run")]
    Failed(String),
}

impl From<RemoteRunError> for RunError {
    fn from(error: RemoteRunError) -> RunError {
        RunError::Mode(Box::new(error))
    }
}

/// Remote mode's executor.
pub(super) struct RemoteRun<'a> {
    pub(super) options: &'a Options,
    pub(super) cwd: &'a Path,
    /// The job file, read once by `plan`.
    pub(super) job_file: Option<JobFile>,
    /// The session, connected before anything is staged.
    pub(super) remote: Option<Arc<Remote>>,
    /// Fired by a stop, or by the first failure: in-flight actions are cancelled.
    pub(super) cancel: Cancel,
    pub(super) stop_hook: Option<StopHook>,
    /// The temporaries the jobs brought back, moved into the working directory once
    /// the outputs are committed.
    pub(super) temporaries: Vec<(PathBuf, Vec<String>)>,
    /// The working directory's identity when the run was planned: temporaries go
    /// only into that directory.
    pub(super) cwd_id: Option<FileId>,
    /// The paths the link declares, made when a job asked for temporaries.
    pub(super) declared: Option<DeclaredPaths>,
}

impl Executor for RemoteRun<'_> {
    fn plan(&mut self, cwd: &Path) -> Result<Plan, RunError> {
        let job_path = self.options.job_file.as_str();
        let job_file =
            read_job_file(&cwd.join(job_path), job_path).map_err(RemoteRunError::from)?;
        let plan = plan_outputs(&job_file, job_path, cwd)?;
        self.cwd_id = file_id::of_path_followed(cwd).ok();
        self.job_file = Some(job_file);
        Ok(plan)
    }

    fn before_staging(&mut self) -> Result<(), RunError> {
        // An endpoint that does not answer fails here, before anything is staged.
        let remote = Remote::connect(&self.options.settings).map_err(RemoteRunError::from)?;
        if self.options.verbose {
            dtlto_mock::stderr_line!(
                "dtlto-runner: remote endpoint {} {}",
                self.options.settings.endpoint,
                if remote.can_execute() {
                    "executes actions"
                } else {
                    "is cache-only: every job must be a cache hit"
                }
            );
        }
        self.remote = Some(Arc::new(remote));
        let cancel = self.cancel.clone();
        self.stop_hook = Some(interrupt::on_stop(move || cancel.cancel()));
        Ok(())
    }

    fn execute(&mut self, staging: &Staging) -> Executed {
        let (Some(job_file), Some(remote)) = (&self.job_file, &self.remote) else {
            return Executed::Failed(RunError::NoCommit);
        };
        // Each job's outputs, in the plan's order, written where they are staged.
        let mut planned = 0..staging.plan.outputs.len();
        let mut jobs = Vec::with_capacity(job_file.jobs.len());
        // Made only for a link whose jobs ask for temporaries; kept for the move.
        let declared = std::cell::OnceCell::new();
        for (i, job) in job_file.jobs.iter().enumerate() {
            let mut outputs = Vec::with_capacity(job.outputs.len());
            let mut first_dir = None;
            for output in &job.outputs {
                let Some(k) = planned.next() else {
                    return Executed::Failed(RunError::NoCommit);
                };
                first_dir.get_or_insert(staging.plan.outputs[k].dir);
                outputs.push((output.clone(), staging.output_path(k)));
            }
            let argv = full_args(job_file, i);
            let inputs: Vec<String> = job_file
                .common
                .inputs
                .iter()
                .chain(&job.inputs)
                .cloned()
                .collect();
            // A compile's -save-temps temporaries, written on the worker, come back
            // into the job's private directory in the staging (the commit moves them).
            let mut names = args::temporaries_in_cwd(&argv, &inputs);
            if !names.is_empty() {
                let declared = declared
                    .get_or_init(|| DeclaredPaths::of(job_file, &self.options.job_file, self.cwd));
                names.retain(|name| !declared.names(name));
            }
            let temporaries = match first_dir {
                Some(dir) if !names.is_empty() => match staging.transaction.job_tmp(dir, i) {
                    Ok(dir) => Some(Temporaries { names, dir }),
                    Err(error) => {
                        return Executed::Failed(
                            RemoteRunError::Failed(format!(
                                "jobs[{i}]: cannot make a private directory for its \
                                 -save-temps temporaries: {error}"
                            ))
                            .into(),
                        )
                    }
                },
                _ => None,
            };
            jobs.push(Arc::new(RemoteJob {
                index: i,
                argv,
                inputs,
                outputs,
                cwd: self.cwd.to_path_buf(),
                temporaries,
            }));
        }
        let mut actions = Actions {
            remote,
            jobs: &jobs,
            job_file,
            cancel: &self.cancel,
            verbose: self.options.verbose,
            progress: Tally::new(jobs.len(), !self.options.verbose),
            brought: Vec::new(),
        };
        let outcome = run_all(&mut actions, jobs.len(), self.options.jobs);
        actions.progress.finish();
        self.temporaries = std::mem::take(&mut actions.brought);
        self.declared = declared.into_inner();
        if let Err(error) = remote.save_digest_cache() {
            if self.options.verbose {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: warning: the digest cache could not be saved: {error}"
                );
            }
        }
        match outcome {
            Ok(()) => Executed::Done,
            Err(error) => Executed::Failed(error.into()),
        }
    }

    fn inputs(&self, _: &Plan, cwd: &Path) -> HashSet<FileId> {
        match &self.job_file {
            Some(job_file) => input_ids(job_file, &self.options.job_file, cwd),
            None => HashSet::new(),
        }
    }

    fn committed(&mut self, plan: &Plan, cwd: &Path, transaction: &HeldTransaction) {
        let Some(declared) = &self.declared else {
            return;
        };
        let brought = std::mem::take(&mut self.temporaries);
        let into = (cwd, self.cwd_id);
        let moved = temporaries::move_into_place(transaction, brought, into, plan, declared);
        if self.options.verbose {
            if let Some(moved) = moved {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: {moved} -save-temps temporaries brought back into {}",
                    quoted(&cwd.to_string_lossy())
                );
            }
        }
    }
}

/// The jobs as actions, as the scheduler drives them: each on a thread of its own
/// that blocks on the service.
struct Actions<'a> {
    remote: &'a Arc<Remote>,
    jobs: &'a [Arc<RemoteJob>],
    job_file: &'a JobFile,
    cancel: &'a Cancel,
    verbose: bool,
    progress: Tally,
    /// The temporaries each finished job brought back: where they are, their names.
    brought: Vec<(PathBuf, Vec<String>)>,
}

struct InFlight {
    index: usize,
    /// The job's result, sent by its thread before it wakes the scheduler (so that
    /// the scheduler, woken, finds it: a thread that has sent but not yet returned
    /// would otherwise look running for another poll).
    result: mpsc::Receiver<Result<JobResult, RemoteError>>,
}

impl JobKind for Actions<'_> {
    type Running = InFlight;
    type Error = RemoteRunError;

    fn start(
        &mut self,
        index: usize,
        ended: &mpsc::Sender<()>,
    ) -> Result<Option<InFlight>, RemoteRunError> {
        let (remote, job, cancel, ended) = (
            Arc::clone(self.remote),
            Arc::clone(&self.jobs[index]),
            self.cancel.clone(),
            ended.clone(),
        );
        let (sender, result) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("jobs[{index}]"))
            .spawn(move || {
                let _ = sender.send(remote.run_job(&job, &cancel));
                let _ = ended.send(());
            })
            .map_err(|error| {
                RemoteRunError::Failed(format!("jobs[{index}]: cannot start a thread: {error}"))
            })?;
        self.progress.started();
        Ok(Some(InFlight { index, result }))
    }

    fn poll(&mut self, running: &mut InFlight) -> Progress<RemoteRunError> {
        let index = running.index;
        let result = match running.result.try_recv() {
            Ok(result) => result,
            Err(mpsc::TryRecvError::Empty) => return Progress::Running,
            // The thread panicked (its message is above): nothing came of the job.
            Err(mpsc::TryRecvError::Disconnected) => {
                self.progress.ended(false, true);
                return Progress::Ended(Err(RemoteRunError::Failed(format!(
                    "jobs[{index}]: the runner's thread for it panicked (see above)"
                ))));
            }
        };
        let result = match result {
            Ok(result) => result,
            Err(error) => {
                self.progress.ended(false, false);
                return Progress::Ended(Err(error.into()));
            }
        };
        let failed = result.exit_code != 0;
        if !result.stdout.is_empty() || (!failed && !result.stderr.is_empty()) {
            self.progress.clear();
        }
        relay_whole(&result.stdout, false);
        // A failed job's stderr goes into its message instead.
        if !failed {
            relay_whole(&result.stderr, true);
        }
        self.progress.ended(result.cached, failed);
        // What clang's ThinLTO backend does when it cannot read a module it imports:
        // on a worker, that is a file the job does not declare.
        let native_object = self.jobs[index].outputs.first().map(|(_, staged)| staged);
        if !failed && native_object.is_some_and(|p| p.metadata().is_ok_and(|m| m.len() == 0)) {
            dtlto_mock::stderr_line!(
                "dtlto-runner: warning: jobs[{index}] exited 0 remotely but left its native \
                 object {} empty, as clang's ThinLTO backend does when it cannot read a module \
                 it imports: it may read a file it does not declare, which is not sent; \
                 `local --hermetic` finds such reads",
                quoted(self.job_file.jobs[index].native_object())
            );
        }
        if let (false, Some(t)) = (result.temporaries.is_empty(), &self.jobs[index].temporaries) {
            self.brought
                .push((t.dir.clone(), result.temporaries.clone()));
        }
        if self.verbose {
            dtlto_mock::stderr_line!(
                "dtlto-runner: jobs[{index}]: {}, {} bytes uploaded, {} downloaded, {} hashed, {:.2} s",
                if result.cached { "cache hit" } else { "executed" },
                result.uploaded_bytes,
                result.downloaded_bytes,
                result.hashed_bytes,
                result.elapsed.as_secs_f64()
            );
        }
        Progress::Ended(if failed {
            Err(RemoteRunError::Failed(describe_failure(
                self.job_file,
                index,
                &result,
            )))
        } else {
            Ok(())
        })
    }

    fn end(&mut self, _: &mut InFlight) {
        self.cancel.cancel();
    }
}

/// A failed compile: its job, native object, exit status and command, then what it
/// said on stderr.
fn describe_failure(job_file: &JobFile, index: usize, result: &JobResult) -> String {
    let mut message = format!(
        "jobs[{index}] (for {}) failed remotely with exit status {}: {}",
        quoted(job_file.jobs[index].native_object()),
        result.exit_code,
        args::shell_words(&full_args(job_file, index))
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    let stderr = stderr.trim_end();
    if !stderr.is_empty() {
        message.push_str(&format!("\n  its stderr:\n{stderr}"));
    }
    message.push_str(
        "\n  only the files the job declares, and the compiler, are sent: a compile that \
         fails remotely but not here reads one it does not declare, which `local --hermetic` \
         finds",
    );
    message
}

/// The progress of a link, as one line on stderr that updates, when stderr is a
/// terminal: done, cached, running, failed.
struct Tally {
    total: usize,
    running: usize,
    done: usize,
    cached: usize,
    failed: usize,
    shown: bool,
}

impl Tally {
    /// A tally of `total` jobs, shown if `wanted` and stderr is a terminal.
    fn new(total: usize, wanted: bool) -> Tally {
        Tally {
            total,
            running: 0,
            done: 0,
            cached: 0,
            failed: 0,
            shown: wanted && std::io::stderr().is_terminal(),
        }
    }

    fn started(&mut self) {
        self.running += 1;
        self.show();
    }

    fn ended(&mut self, cached: bool, failed: bool) {
        self.running = self.running.saturating_sub(1);
        self.done += 1;
        self.cached += usize::from(cached);
        self.failed += usize::from(failed);
        self.show();
    }

    fn show(&self) {
        if self.shown {
            use std::io::Write;
            let _ = write!(
                std::io::stderr().lock(),
                "\r\x1b[Kdtlto-runner: remote: {}/{} done, {} cached, {} running, {} failed",
                self.done,
                self.total,
                self.cached,
                self.running,
                self.failed
            );
        }
    }

    /// Clears the line, for a job's output to take its place.
    fn clear(&self) {
        if self.shown {
            use std::io::Write;
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }

    /// Ends the line, so that what follows starts on its own.
    fn finish(&self) {
        if self.shown {
            dtlto_mock::stderr_line!("");
        }
    }
}
