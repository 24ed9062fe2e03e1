//! Running the prepared jobs: N at a time, in order, the first failure ending the
//! others, and each job's output relayed a whole line at a time.

use super::error::JobError;
use super::job_file::full_args;
use super::report::{describe_failure, empty_under_hermetic, is_empty};
use super::{args, children, confine, Options};
use crate::interrupt;
use dtlto_mock::job_file::JobFile;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

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

pub(super) struct Running {
    index: usize,
    child: Child,
    relays: Vec<JoinHandle<()>>,
}

/// Runs the jobs, `options.jobs` at a time, in order; the first failure (or a
/// stop) ends the others and starts no more. `Err` says which job failed and why.
/// The relays of ended jobs whose pipes are still open (something the job started
/// holds them) are left in `relays`, to be joined once that has been ended too.
pub(super) fn run_jobs(
    options: &Options,
    jobs: &[Prepared],
    landlock: bool,
    job_file: &JobFile,
    cwd: &Path,
    relays: &mut Vec<JoinHandle<()>>,
) -> Result<(), JobError> {
    let (ended_tx, ended_rx) = mpsc::channel::<usize>();
    let mut next = 0;
    let mut running: Vec<Running> = Vec::new();
    let mut failure: Option<JobError> = None;
    let stopping = || interrupt::stopped().is_some() || children::stopped();
    loop {
        while failure.is_none() && !stopping() && running.len() < options.jobs && next < jobs.len()
        {
            match start(&jobs[next], options, landlock, cwd, &ended_tx) {
                Ok(Some(started)) => running.push(started),
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
            next += 1;
        }
        if running.is_empty() {
            break;
        }
        // A child that ends wakes this thread at once (Unix); the timeout is for
        // stops, and for systems without the waiter threads.
        let _ = ended_rx.recv_timeout(Duration::from_millis(20));
        let mut still = Vec::with_capacity(running.len());
        for mut job in running {
            match children::try_wait(&mut job.child) {
                Ok(None) => still.push(job),
                Ok(Some(status)) => {
                    relays.extend(job.relays);
                    relays.retain(|relay| !relay.is_finished());
                    if failure.is_some() || stopping() {
                        continue;
                    }
                    // Messages show the job's command as the job file has it (the
                    // staging it wrote into is gone when they are read).
                    if !status.success() {
                        failure = Some(JobError::Failed(describe_failure(
                            job_file,
                            job.index,
                            &full_args(job_file, job.index),
                            status,
                            options.hermetic,
                        )));
                    } else if options.hermetic && is_empty(&jobs[job.index].native_object) {
                        failure = Some(JobError::Failed(empty_under_hermetic(
                            job_file,
                            job.index,
                            &full_args(job_file, job.index),
                        )));
                    }
                }
                Err(error) => {
                    if failure.is_none() {
                        failure = Some(JobError::Wait {
                            job: job.index,
                            error,
                        });
                    }
                    children::end(&mut job.child);
                    still.push(job);
                }
            }
        }
        running = still;
        if failure.is_some() || stopping() {
            for job in &mut running {
                children::end(&mut job.child);
            }
        }
    }
    match failure {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

pub(super) fn start(
    job: &Prepared,
    options: &Options,
    landlock: bool,
    cwd: &Path,
    ended: &mpsc::Sender<usize>,
) -> Result<Option<Running>, JobError> {
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
    let mut child = match children::spawn(&mut command) {
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
            children::wait_for_end(pid);
            let _ = ended.send(i);
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

/// The longest line relayed whole: a longer one is passed on in pieces of this
/// size, which another job's lines may come between. With the read buffer, a relay
/// holds at most `RELAY_LINE + RELAY_READ` bytes.
pub const RELAY_LINE: usize = 64 * 1024;
pub(super) const RELAY_READ: usize = 8 * 1024;

/// Copies a job's output to ours whole lines at a time (see `RELAY_LINE`).
pub(super) fn relay_lines(from: impl Read + Send + 'static, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = from;
        let mut held: Vec<u8> = Vec::with_capacity(RELAY_LINE + RELAY_READ);
        let mut read = vec![0u8; RELAY_READ];
        // A closed stdout or stderr loses the lines, never the job.
        let pass_on = |bytes: &[u8]| {
            let _ = if to_stderr {
                std::io::stderr().lock().write_all(bytes)
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            };
        };
        loop {
            let n = match from.read(&mut read) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            held.extend_from_slice(&read[..n]);
            if let Some(last) = held.iter().rposition(|&b| b == b'\n') {
                pass_on(&held[..=last]);
                held.drain(..=last);
            }
            if held.len() >= RELAY_LINE {
                pass_on(&held);
                held.clear();
            }
        }
        if !held.is_empty() {
            pass_on(&held);
        }
    })
}
