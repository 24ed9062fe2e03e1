//! One local job's process: started confined, in a session of its own, its lines
//! relayed; followed until it ends, and how it failed said. The scheduler
//! (jobs/schedule.rs) runs them N at a time.

use super::children::Processes;
use super::error::JobError;
use super::report::{describe_failure, empty_under_hermetic, is_empty};
use super::{confine, Options};
use crate::jobs::args;
use crate::jobs::job_file::full_args;
use crate::jobs::relay::relay_lines;
use crate::jobs::schedule::{JobKind, Progress};
use dtlto_mock::job_file::JobFile;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A job ready to start.
pub(super) struct Prepared {
    pub(super) index: usize,
    /// `common.args + jobs[i].args`, outputs pointed at staging.
    pub(super) command: Vec<String>,
    /// Its TMPDIR, inside staging.
    pub(super) tmp: PathBuf,
    /// Where its native object (`outputs[0]`) is staged.
    pub(super) native_object: PathBuf,
    pub(super) rules: confine::Rules,
}

/// A job's process, started.
pub(super) struct Running {
    index: usize,
    child: Child,
    relays: Vec<JoinHandle<()>>,
}

/// Local mode's jobs as the scheduler (jobs/schedule.rs) drives them: each a
/// process, confined, started from this thread.
pub(super) struct LocalJobs<'a> {
    pub(super) options: &'a Options,
    pub(super) jobs: &'a [Prepared],
    pub(super) landlock: bool,
    pub(super) job_file: &'a JobFile,
    pub(super) cwd: &'a Path,
    pub(super) children: &'a Processes,
    /// The relays of ended jobs whose pipes are still open (something the job
    /// started holds them), to be joined once that has been ended too.
    pub(super) relays: Vec<JoinHandle<()>>,
}

impl JobKind for LocalJobs<'_> {
    type Running = Running;
    type Error = JobError;

    fn start(
        &mut self,
        index: usize,
        ended: &mpsc::Sender<()>,
    ) -> Result<Option<Running>, JobError> {
        start(self, &self.jobs[index], ended)
    }

    fn poll(&mut self, job: &mut Running) -> Progress<JobError> {
        let status = match self.children.try_wait(&mut job.child) {
            Ok(None) => return Progress::Running,
            Ok(Some(status)) => status,
            Err(error) => {
                return Progress::Lost(JobError::Wait {
                    job: job.index,
                    error,
                })
            }
        };
        self.relays.append(&mut job.relays);
        self.relays.retain(|relay| !relay.is_finished());
        let (options, job_file, index) = (self.options, self.job_file, job.index);
        // Messages show the job's command as the job file has it (the staging it
        // wrote into is gone when they are read).
        Progress::Ended(if !status.success() {
            Err(JobError::Failed(describe_failure(
                job_file,
                index,
                &full_args(job_file, index),
                status,
                options.hermetic,
            )))
        } else if options.hermetic && is_empty(&self.jobs[index].native_object) {
            Err(JobError::Failed(empty_under_hermetic(
                job_file,
                index,
                &full_args(job_file, index),
            )))
        } else {
            Ok(())
        })
    }

    fn end(&mut self, job: &mut Running) {
        self.children.end(&mut job.child);
    }

    fn stopped(&self) -> bool {
        self.children.stopped()
    }
}

/// Starts one job, confined, its lines relayed whole when several run at once.
fn start(
    local: &LocalJobs,
    job: &Prepared,
    ended: &mpsc::Sender<()>,
) -> Result<Option<Running>, JobError> {
    let LocalJobs {
        options,
        landlock,
        cwd,
        children,
        ..
    } = *local;
    let i = job.index;
    let mut command = Command::new(&job.command[0]);
    command.args(&job.command[1..]).current_dir(cwd);
    let tmp = args::for_job(&job.tmp);
    command.env("TMPDIR", &tmp);
    if cfg!(windows) {
        command.env("TMP", &tmp).env("TEMP", &tmp);
    }
    let confinement = if landlock {
        Some(confine::prepare(&job.rules).map_err(|error| JobError::Confine { job: i, error })?)
    } else {
        None
    };
    if let Some(confinement) = &confinement {
        confinement.apply_to(&mut command);
    }
    // One at a time, the job has the terminal as local.py gives it; several at once,
    // its lines are relayed whole, so that no two jobs' lines mix.
    let relay = options.jobs > 1;
    if relay {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    if options.verbose {
        dtlto_mock::stderr_line!(
            "dtlto-runner: jobs[{i}]: {}",
            args::shell_words(&job.command)
        );
    }
    let mut child = match children.spawn(&mut command) {
        Ok(Some(child)) => child,
        Ok(None) => return Ok(None),
        Err(error) => {
            return Err(JobError::Start {
                job: i,
                error,
                command: args::shell_words(&job.command),
            })
        }
    };
    let mut relays = Vec::new();
    if let Some(out) = child.stdout.take() {
        relays.push(relay_lines(out, false));
    }
    if let Some(err) = child.stderr.take() {
        relays.push(relay_lines(err, true));
    }
    #[cfg(unix)]
    {
        let pid = child.id();
        let ended = ended.clone();
        std::thread::spawn(move || {
            super::children::wait_for_end(pid);
            let _ = ended.send(());
        });
    }
    #[cfg(not(unix))]
    let _ = ended;
    Ok(Some(Running {
        index: i,
        child,
        relays,
    }))
}
