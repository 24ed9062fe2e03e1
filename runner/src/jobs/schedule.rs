//! Running a job file's jobs N at a time, in order, the first failure (or a stop)
//! ending the others and starting no more: the same for every kind of job, native
//! processes or remote actions, which plug in how one starts, ends and is ended.

use crate::interrupt;
use std::sync::mpsc;
use std::time::Duration;

/// One kind of job, as the scheduler drives it.
pub trait JobKind {
    /// A started job.
    type Running;
    /// Why a job failed, or could not be followed.
    type Error;

    /// Starts job `index`; `None` if a stop came first. A job that ends may send on
    /// `ended` to wake the scheduler at once (it also looks every 20 ms).
    fn start(
        &mut self,
        index: usize,
        ended: &mpsc::Sender<()>,
    ) -> Result<Option<Self::Running>, Self::Error>;

    /// How `running` is doing; called until it says `Ended`.
    fn poll(&mut self, running: &mut Self::Running) -> Progress<Self::Error>;

    /// Ends `running` early (it is then polled until it ends).
    fn end(&mut self, running: &mut Self::Running);

    /// Whether the kind itself was stopped (besides `interrupt::stopped`).
    fn stopped(&self) -> bool {
        false
    }
}

/// How a running job is doing.
pub enum Progress<E> {
    /// Still running.
    Running,
    /// It ended, well or not.
    Ended(Result<(), E>),
    /// It can no longer be followed: that fails the run; the job is ended, and
    /// polled until it ends.
    Lost(E),
}

/// Runs jobs `0..count`, `at_once` at a time, in order; the first failure (or a
/// stop) ends the others and starts no more. `Err` is the first failure.
pub fn run_all<K: JobKind>(kind: &mut K, count: usize, at_once: usize) -> Result<(), K::Error> {
    let (ended_tx, ended_rx) = mpsc::channel::<()>();
    let mut next = 0;
    let mut running: Vec<K::Running> = Vec::new();
    let mut failure: Option<K::Error> = None;
    let stopping = |kind: &K| interrupt::stopped().is_some() || kind.stopped();
    loop {
        while failure.is_none() && !stopping(kind) && running.len() < at_once && next < count {
            match kind.start(next, &ended_tx) {
                Ok(Some(started)) => running.push(started),
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
            next += 1;
        }
        if running.is_empty() {
            break;
        }
        // A job that ends wakes this thread at once; the timeout is for stops, and
        // for kinds that cannot send.
        let _ = ended_rx.recv_timeout(Duration::from_millis(20));
        let mut still = Vec::with_capacity(running.len());
        for mut job in running {
            match kind.poll(&mut job) {
                Progress::Running => still.push(job),
                // What ends after a failure or a stop is not reported: the first
                // failure is the run's.
                Progress::Ended(_) if failure.is_some() || stopping(kind) => {}
                Progress::Ended(result) => failure = result.err(),
                Progress::Lost(error) => {
                    failure.get_or_insert(error);
                    kind.end(&mut job);
                    still.push(job);
                }
            }
        }
        running = still;
        if failure.is_some() || stopping(kind) {
            for job in &mut running {
                kind.end(job);
            }
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
