//! The run's transaction: a private staging directory in every output directory,
//! a commit that moves every declared output into place or none, and a cleanup that
//! reports what it could not remove.
//!
//! What it promises: outputs change only through the commit; the commit checks every
//! staged file and every target before the first rename, and rolls back on any
//! failure or stop request; staging directories are ours alone (see staging_dir.rs)
//! and those of dead runs are reclaimed.

mod brought_back;
mod dir_handle;
mod place;
mod remove_tree;
mod staging_dir;

use crate::exit_status::ExitStatus;
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::Plan;
use crate::sandbox::{FastMap, FastSet};
use dir_handle::{DirHandle, Kind};
use dtlto_mock::message::{io_error, quoted};
use place::{Dirs, PlaceError, Previous, Undone};
use staging_dir::{RunLocks, StagingDir, Unrestored};
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use brought_back::Moved;
pub use remove_tree::RemoveError;
pub use staging_dir::job_tmp_path;

/// How many undeclared paths a refusal lists before it counts the rest.
const LISTED: usize = 20;

pub struct Transaction {
    dirs: Vec<Staged>,
    /// Let go last, after every staging is removed or left for recovery.
    locks: RunLocks,
    /// Open files kept for the cleanup: a guest blocked in a host call may hold every
    /// descriptor the process may have when a stop must remove its staging.
    reserve: Vec<std::fs::File>,
    /// Every output is in place: what a stop says from now on.
    committed: bool,
}

/// How many open files the cleanup keeps aside from the start, at least: what
/// remove_tree.rs needs beside its budget of directory descriptors.
const RESERVED_FILES: usize = 10;
/// What the removal needs besides its budget: the root, the current directory's
/// listing, a directory being opened, one carried on a walk down.
const REMOVAL_OVERHEAD: usize = 4;

/// How many open files to keep aside for the cleanup: more where the process may
/// open many (a deep tree is then removed in fewer walks), never a large part of
/// what it may open.
fn files_to_reserve() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            let soft = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX);
            return (soft / 16).clamp(RESERVED_FILES, 64);
        }
    }
    RESERVED_FILES
}

/// One output directory: what it was when the run began, and its staging.
struct Staged {
    host: PathBuf,
    id: FileId,
    staging: StagingDir,
    /// Outputs whose rollback failed: the staging is left for the next run.
    unrestored: Vec<Unrestored>,
}

#[derive(Debug)]
pub enum TransactionError {
    /// A staging directory could not be made.
    Staging { dir: PathBuf, error: io::Error },
    /// The guest wrote paths the job file does not declare.
    Undeclared(Vec<PathBuf>),
    /// What the guest staged, or where it would go, is not fit to commit.
    Unfit(Vec<Problem>),
    /// A step of the commit failed, or a stop came; everything was rolled back (or
    /// says what was not).
    Commit(CommitError),
}

/// One thing that keeps a commit from going ahead, or that made it go back; the
/// `Display` is the message's line.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error(
        "cannot open output directory {} or its staging: {}",
        show(.dir),
        io_error(.error)
    )]
    OpenDirs { dir: PathBuf, error: io::Error },
    /// An output directory or its staging is no longer the one planned or made (the
    /// check's own words).
    #[error("{0}")]
    Replaced(io::Error),
    #[error("cannot list the staging directory {}: {}", show(.dir), io_error(.error))]
    ListStaging { dir: PathBuf, error: io::Error },
    /// A staged output that may not be committed; `label` is its JSON location.
    #[error("{label}: staged {unfit}")]
    Staged { label: String, unfit: Unfit },
    #[error("{label}: {error}")]
    Place { label: String, error: PlaceError },
    /// A stop came, as the interrupt module describes it.
    #[error("{0}")]
    Stopped(String),
}

/// Why a staged output is not fit to commit; `shown` is its path as messages show it.
#[derive(Debug, thiserror::Error)]
pub enum Unfit {
    #[error("{shown} cannot be read: {}", io_error(.error))]
    Unreadable { shown: String, error: io::Error },
    #[error("{shown} is {}, not a regular file", .kind.describe())]
    NotAFile { shown: String, kind: Kind },
    #[error("{shown} has {links} names (hard links); an output must be a file of its own")]
    Linked { shown: String, links: u64 },
}

/// Why nothing was committed, and the state the outputs were left in.
#[derive(Debug)]
pub struct CommitError {
    /// What failed.
    pub failed: Problem,
    /// Outputs another run replaced after this one placed them: left alone.
    pub superseded: Vec<PathBuf>,
    /// What could not be put back, and where its previous file is now.
    pub left: Vec<String>,
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nothing was committed:\n  {}", self.failed)?;
        for path in &self.superseded {
            write!(
                f,
                "\n  {} was left as it is: another run committed it meanwhile",
                show(path)
            )?;
        }
        if self.left.is_empty() {
            let others = if self.superseded.is_empty() {
                "every"
            } else {
                "every other"
            };
            write!(f, "\n  {others} output is as it was before the run")
        } else {
            f.write_str("\n  the rollback failed; not as before the run:")?;
            for left in &self.left {
                write!(f, "\n    {left}")?;
            }
            f.write_str(
                "\n  the next run in that directory that writes these outputs puts their previous files back",
            )
        }
    }
}

impl fmt::Display for TransactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransactionError::Staging { dir, error } => write!(
                f,
                "cannot create a staging directory in output directory {}: {}",
                show(dir),
                io_error(error)
            ),
            TransactionError::Undeclared(paths) => {
                write!(
                    f,
                    "the distributor wrote {} path(s) the job file does not declare, \
                     so nothing was committed:",
                    paths.len()
                )?;
                for path in paths.iter().take(LISTED) {
                    write!(f, "\n  {}", show(path))?;
                }
                if paths.len() > LISTED {
                    write!(f, "\n  ... and {} more", paths.len() - LISTED)?;
                }
                Ok(())
            }
            TransactionError::Unfit(problems) => {
                f.write_str("nothing was committed:")?;
                for problem in problems {
                    write!(f, "\n  {problem}")?;
                }
                Ok(())
            }
            TransactionError::Commit(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for TransactionError {}

impl TransactionError {
    /// Whether every output is as it was before the commit began.
    pub fn is_clean_rollback(&self) -> bool {
        match self {
            TransactionError::Commit(error) => error.left.is_empty(),
            _ => true,
        }
    }
}

/// What reclaiming found, as lines for `--verbose` (`notes`) and for everyone
/// (`warnings`: staging of dead runs that could not be removed).
#[derive(Default)]
pub struct ReclaimReport {
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Removes the staging left by dead runs in the plan's output directories.
pub fn reclaim(plan: &Plan) -> ReclaimReport {
    let mut report = ReclaimReport::default();
    for (index, dir) in plan.output_dirs.iter().enumerate() {
        let declared = |name: &str| {
            plan.outputs
                .iter()
                .any(|output| output.dir == index && output.file_name == name)
        };
        let found = staging_dir::reclaim(&dir.host, &declared);
        for path in found.restored {
            report.notes.push(format!(
                "restored {} as it was before a run that died or failed mid-commit",
                show(&path)
            ));
        }
        for path in found.superseded {
            report.notes.push(format!(
                "kept {}: a newer run replaced it since a failed rollback left its previous file",
                show(&path)
            ));
        }
        for (path, owner) in found.not_ours {
            report.warnings.push(format!(
                "abandoned staging {} belongs to {owner}: not ours to remove",
                show(&path)
            ));
        }
        for path in found.removed {
            report
                .notes
                .push(format!("reclaimed abandoned staging {}", show(&path)));
        }
        if found.in_use > 0 {
            report.notes.push(format!(
                "left {} staging director{} of live runs in {}",
                found.in_use,
                if found.in_use == 1 { "y" } else { "ies" },
                show(&dir.host)
            ));
        }
        for (path, reason) in found.left_alone {
            report.warnings.push(format!(
                "left abandoned staging {} as it is: {reason}",
                show(&path)
            ));
        }
        for error in found.failed {
            report
                .warnings
                .push(format!("cannot reclaim abandoned staging: {error}"));
        }
    }
    report
}

impl Transaction {
    /// Creates the staging of every output directory of `plan`.
    pub fn begin(plan: &Plan) -> Result<Transaction, TransactionError> {
        let mut dirs = Vec::with_capacity(plan.output_dirs.len());
        let mut reserve = Vec::new();
        let reserved = files_to_reserve();
        let mut locks = RunLocks::default();
        for dir in &plan.output_dirs {
            let failed = |error| TransactionError::Staging {
                dir: dir.host.clone(),
                error,
            };
            while reserve.len() < reserved {
                reserve.push(file_id::open_to_inspect(&dir.host).map_err(failed)?);
            }
            let id = file_id::of_path(&dir.host).map_err(failed)?;
            let staging = StagingDir::create(&dir.host, id, &mut locks).map_err(failed)?;
            dirs.push(Staged {
                host: dir.host.clone(),
                id,
                staging,
                unrestored: Vec::new(),
            });
        }
        Ok(Transaction {
            dirs,
            locks,
            reserve,
            committed: false,
        })
    }

    /// The staging directory that the plan's `index`-th output directory's outputs
    /// are written into (the guest's writable preopen, local mode's `-o` targets).
    pub fn staged_outputs_dir(&self, index: usize) -> PathBuf {
        self.dirs[index].staging.out()
    }

    /// Makes local mode's job `job` a TMPDIR of its own in the staging of the
    /// plan's `index`-th output directory (`tmp/<job>`, beside `out/`, where the
    /// commit does not look); returns its path.
    pub fn job_tmp(&self, index: usize, job: usize) -> io::Result<PathBuf> {
        self.dirs[index].staging.job_tmp(job)
    }

    /// Opens output directory `index` and its staging, each checked to be the one
    /// planned or made.
    fn open(&self, index: usize) -> Result<Dirs, Problem> {
        let staged = &self.dirs[index];
        DirHandle::open(&staged.host, Some(staged.id))
            .and_then(|target| staged.staging.open(target))
            .map_err(|error| match error.kind() {
                io::ErrorKind::Other => Problem::Replaced(error),
                _ => Problem::OpenDirs {
                    dir: staged.host.clone(),
                    error,
                },
            })
    }

    /// Checks what the guest staged and moves every declared output into place, or
    /// none. `stop` is asked between moves; a reason rolls the commit back. `inputs`
    /// are the identities of what the run reads: no output may replace one of them.
    /// Returns the indices (into the plan's outputs) of those committed, in job order.
    pub fn commit(
        &mut self,
        plan: &Plan,
        inputs: &HashSet<FileId>,
        stop: &dyn Fn() -> Option<String>,
    ) -> Result<Vec<usize>, TransactionError> {
        // Output directory by output directory, each opened once, so that a run holds
        // a few descriptors at a time however many directories it writes.
        let mut by_dir: Vec<Vec<&str>> = vec![Vec::new(); self.dirs.len()];
        // Staged file -> its output's index in the plan, whose location labels it.
        let mut labels: FastMap<(usize, &str), usize> =
            FastMap::with_capacity_and_hasher(plan.outputs.len(), Default::default());
        for (i, output) in plan.outputs.iter().enumerate() {
            by_dir[output.dir].push(&output.file_name);
            labels.insert((output.dir, &output.file_name), i);
        }
        let label = |key: &(usize, &str)| plan.outputs[labels[key]].location.as_str();
        // Every staged file is checked before the first move.
        let mut undeclared = Vec::new();
        let mut unfit = Vec::new();
        let mut to_move: Vec<(usize, &str, FileId)> = Vec::new();
        for (index, names) in by_dir.iter().enumerate() {
            let dirs = match self.open(index) {
                Ok(dirs) => dirs,
                Err(problem) => {
                    unfit.push(problem);
                    continue;
                }
            };
            let staged = match dirs.out.names() {
                Ok(staged) => staged,
                Err(error) => {
                    unfit.push(Problem::ListStaging {
                        dir: dirs.out.path().to_owned(),
                        error,
                    });
                    continue;
                }
            };
            let declared: FastSet<&str> = names.iter().copied().collect();
            for name in staged {
                // A name that is not UTF-8 cannot be declared: JSON paths are text.
                match name.to_str().and_then(|n| declared.get(n)) {
                    Some(name) => match fit_to_commit(&dirs.out, name) {
                        Ok(id) => to_move.push((index, name, id)),
                        Err(problem) => unfit.push(Problem::Staged {
                            label: label(&(index, *name)).to_owned(),
                            unfit: problem,
                        }),
                    },
                    None => undeclared.push(self.dirs[index].host.join(&name)),
                }
            }
        }
        if !undeclared.is_empty() {
            undeclared.sort();
            return Err(TransactionError::Undeclared(undeclared));
        }
        if !unfit.is_empty() {
            return Err(TransactionError::Unfit(unfit));
        }
        to_move.sort_by_key(|(index, ..)| *index);

        let mut done: Vec<(usize, &str, FileId, Previous)> = Vec::with_capacity(to_move.len());
        let mut failure = None;
        let mut open: Option<(usize, Dirs)> = None;
        for &(index, name, placed) in &to_move {
            if let Some(reason) = stop() {
                failure = Some(Problem::Stopped(reason));
                break;
            }
            if open.as_ref().is_none_or(|(i, _)| *i != index) {
                open = None;
                match self.open(index) {
                    Ok(dirs) => open = Some((index, dirs)),
                    Err(problem) => {
                        failure = Some(problem);
                        break;
                    }
                }
            }
            let Some((_, dirs)) = &open else { break };
            match place::place(dirs, name, inputs) {
                Ok(previous) => done.push((index, name, placed, previous)),
                Err(error) => {
                    failure = Some(Problem::Place {
                        label: label(&(index, name)).to_owned(),
                        error,
                    });
                    break;
                }
            }
        }
        drop(open);
        let Some(failed) = failure else {
            let mut committed: Vec<usize> = done
                .iter()
                .map(|(index, name, ..)| labels[&(*index, *name)])
                .collect();
            committed.sort_unstable();
            return Ok(committed);
        };
        Err(TransactionError::Commit(
            self.roll_back(failed, done, plan, &labels),
        ))
    }

    /// Undoes `done` in reverse, and records in each staging what could not be undone.
    fn roll_back(
        &mut self,
        failed: Problem,
        done: Vec<(usize, &str, FileId, Previous)>,
        plan: &Plan,
        labels: &FastMap<(usize, &str), usize>,
    ) -> CommitError {
        let mut error = CommitError {
            failed,
            superseded: Vec::new(),
            left: Vec::new(),
        };
        let mut open: Option<(usize, Dirs)> = None;
        for (index, name, placed, previous) in done.into_iter().rev() {
            if open.as_ref().is_none_or(|(i, _)| *i != index) {
                open = self.open(index).ok().map(|dirs| (index, dirs));
            }
            let undone = match &open {
                Some((_, dirs)) => place::undo(dirs, name, placed, previous),
                None => Err(dir_handle::replaced(&self.dirs[index].host)),
            };
            // What the placed file is now, for the next run to tell it from another
            // that gets its file number.
            let fingerprint = open
                .as_ref()
                .and_then(|(_, dirs)| dirs.target.entry(name).ok())
                .filter(|now| now.id == placed)
                .map(|now| (now.size, now.modified));
            let target = self.dirs[index].host.join(name);
            match undone {
                Ok(Undone::Restored) => {}
                Ok(Undone::Superseded) => error.superseded.push(target),
                Err(e) => {
                    let root = self.dirs[index].staging.root();
                    let label = &plan.outputs[labels[&(index, name)]].location;
                    error.left.push(match previous {
                        Previous::None => format!(
                            "{label}: {} holds this run's file, and was absent before ({})",
                            show(&target),
                            io_error(&e)
                        ),
                        Previous::Out | Previous::Aside => {
                            let kept = if previous == Previous::Out {
                                staging_dir::OUT
                            } else {
                                place::ASIDE
                            };
                            format!(
                                "{label}: {} holds this run's file; its previous file is at {} ({})",
                                show(&target),
                                show(&root.join(kept).join(name)),
                                io_error(&e)
                            )
                        }
                    });
                    self.dirs[index].unrestored.push(Unrestored {
                        name: name.to_owned(),
                        placed: placed.raw(),
                        fingerprint,
                        previous,
                    });
                }
            }
        }
        error
    }

    /// Removes every staging directory, but those left for recovery; reports each
    /// one that could not be removed or recorded.
    pub fn close(self) -> Result<(), Vec<RemoveError>> {
        let budget = self.reserve.len().saturating_sub(REMOVAL_OVERHEAD);
        drop(self.reserve);
        let mut failures = Vec::new();
        for dir in self.dirs {
            if dir.unrestored.is_empty() {
                if let Err(e) = dir.staging.remove(budget) {
                    failures.push(e);
                }
            } else {
                let root = dir.staging.root().to_path_buf();
                if let Err(error) = dir.staging.leave_for_recovery(&dir.unrestored) {
                    failures.push(RemoveError {
                        root,
                        entry: String::new(),
                        error,
                    });
                }
            }
        }
        drop(self.locks);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }
}

/// A stop that the main thread does not answer in time leaves the staging where it
/// is: the guest or a job may still write there, and a removal racing a writer is
/// how trees outside get removed. The process ends with its locks, so the next run
/// in each output directory reclaims what is left.
impl crate::interrupt::Cleanup for Transaction {
    fn leave(self: Box<Self>) -> String {
        let paths: Vec<String> = self.dirs.iter().map(|d| show(d.staging.root())).collect();
        let outcome = if self.committed {
            "the outputs were committed"
        } else {
            "nothing was committed"
        };
        // Nothing is removed, not even by the stagings' destructors.
        std::mem::forget(self);
        if paths.is_empty() {
            return outcome.to_owned();
        }
        format!(
            "{outcome}; the distributor did not stop in time, so its staging is left for \
             the next run in that directory to remove: {}",
            paths.join(", ")
        )
    }
}

/// How beginning the run's transaction went.
pub enum Begun {
    /// The transaction, held where a stop can reach it; this is the run's handle.
    Held(HeldTransaction),
    /// A stop came first: nothing was staged, and a line said so.
    Stopped(ExitStatus),
}

/// The run's transaction, as the main thread holds it while a stop may come: every
/// use of it goes through this handle, which a stop's cleanup excludes.
pub struct HeldTransaction(crate::interrupt::Held<Transaction>);

impl HeldTransaction {
    /// The staged outputs' directory of each of the plan's output directories, in
    /// the plan's order; `None` if a stop took the transaction.
    pub fn staged_outputs_dirs(&self) -> Option<Vec<PathBuf>> {
        self.0
            .with(|t| (0..t.dirs.len()).map(|i| t.staged_outputs_dir(i)).collect())
    }

    /// Makes local mode's job `job` its TMPDIR in the staging of output directory
    /// `index` (see `Transaction::job_tmp`).
    pub fn job_tmp(&self, index: usize, job: usize) -> io::Result<PathBuf> {
        self.0
            .with(|t| t.job_tmp(index, job))
            .unwrap_or_else(|| Err(io::ErrorKind::Interrupted.into()))
    }

    /// Commits the outputs, unless a stop takes the transaction first; a stop
    /// during the commit rolls it back.
    pub fn commit(&self, plan: &Plan, inputs: &HashSet<FileId>) -> Commit {
        self.0
            .with(|transaction| {
                let committed = transaction.commit(plan, inputs, &|| {
                    crate::interrupt::stopped().map(|s| s.describe())
                });
                transaction.committed = committed.is_ok();
                committed
            })
            .into()
    }

    /// After the commit: moves the files `names` of `from` (a directory of this
    /// transaction's staging) into `into`, as `brought_back::move_into` does, unless
    /// a stop takes the transaction first; a stop meanwhile ends the moves after the
    /// file being moved (the rest go with the staging).
    pub fn bring_back(
        &self,
        from: &Path,
        names: &[String],
        into: (&Path, Option<FileId>),
        kept: &HashSet<FileId>,
    ) -> Moved {
        let stopped = || crate::interrupt::stopped().is_some();
        self.0
            .with(|_| brought_back::move_into(from, names, into, kept, &stopped))
            .unwrap_or_else(|| Moved::stopped(names.len()))
    }

    /// Takes the transaction back from the stop handler and closes it, after a
    /// commit that gave `commit`.
    pub fn settle(self, commit: impl Into<Commit>) -> Ending {
        let cleanup = self.0.settle().map_or(Ok(()), Transaction::close);
        Ending {
            commit: commit.into(),
            cleanup,
        }
    }
}

/// Reclaims what abandoned runs left beside the plan's output directories (warnings
/// always, notes with `verbose`), then begins this run's transaction, held by the stop
/// handler.
pub fn reclaim_and_begin(plan: &Plan, verbose: bool) -> Result<Begun, TransactionError> {
    let reclaimed = reclaim(plan);
    for warning in &reclaimed.warnings {
        dtlto_mock::stderr_line!("dtlto-runner: warning: {warning}");
    }
    if verbose {
        for note in &reclaimed.notes {
            dtlto_mock::stderr_line!("dtlto-runner: {note}");
        }
    }
    match crate::interrupt::hold(|| Transaction::begin(plan)) {
        Ok(held) => Ok(Begun::Held(HeldTransaction(held))),
        Err(crate::interrupt::NotHeld::Stopped(stop)) => {
            dtlto_mock::stderr_line!("dtlto-runner: {}: nothing was committed", stop.describe());
            Ok(Begun::Stopped(stop.into()))
        }
        Err(crate::interrupt::NotHeld::Failed(error)) => Err(error),
    }
}

/// What became of a run's commit.
pub enum Commit {
    /// Not tried: the run failed, or was stopped, before it.
    NotTried,
    /// Every output is in place; those committed, by their index in the plan's
    /// outputs (`Plan::output_path` names them).
    Done(Vec<usize>),
    /// It failed, and rolled back as the error says.
    Failed(TransactionError),
}

impl From<Option<Result<Vec<usize>, TransactionError>>> for Commit {
    fn from(tried: Option<Result<Vec<usize>, TransactionError>>) -> Self {
        match tried {
            None => Commit::NotTried,
            Some(Ok(committed)) => Commit::Done(committed),
            Some(Err(error)) => Commit::Failed(error),
        }
    }
}

/// How a run's transaction ended: its commit, then the removal of its staging.
pub struct Ending {
    pub commit: Commit,
    pub cleanup: Result<(), Vec<RemoveError>>,
}

impl Ending {
    /// If a stop ended the run before its outputs were committed: says so in one
    /// line (and what a rollback it interrupted left, if that was not clean), and
    /// gives the exit status. `None` without a stop, or when the commit finished first.
    pub fn report_stop(&self, job_file: &str) -> Option<ExitStatus> {
        let stop = crate::interrupt::stopped()?;
        match &self.commit {
            Commit::Done(_) => return None,
            // A commit the stop rolled back cleanly needs no words of its own.
            Commit::Failed(e) if !e.is_clean_rollback() => {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: {}: {e}",
                    dtlto_mock::message::shown(job_file)
                );
            }
            Commit::Failed(_) | Commit::NotTried => {}
        }
        dtlto_mock::stderr_line!(
            "dtlto-runner: {}: {}",
            stop.describe(),
            stopped_outcome(&self.cleanup)
        );
        Some(stop.into())
    }
}

/// The end of a stopped run's one line: nothing was committed, and what became of
/// the staging.
pub fn stopped_outcome(cleanup: &Result<(), Vec<RemoveError>>) -> String {
    match cleanup {
        Ok(()) => "nothing was committed, and the staging was removed".to_owned(),
        Err(failures) => {
            let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
            format!(
                "nothing was committed, but the staging could not be removed: {}",
                reasons.join("; ")
            )
        }
    }
}

/// A staged output may be committed only as a regular file with no other name: a
/// guest must not hand over one of its inputs, or one file under several outputs.
/// Returns its identity.
fn fit_to_commit(out: &DirHandle, name: &str) -> Result<FileId, Unfit> {
    let entry = out.entry(name).map_err(|error| Unfit::Unreadable {
        shown: out.show(name),
        error,
    })?;
    if entry.kind != Kind::File {
        return Err(Unfit::NotAFile {
            shown: out.show(name),
            kind: entry.kind,
        });
    }
    if entry.links != 1 {
        return Err(Unfit::Linked {
            shown: out.show(name),
            links: entry.links,
        });
    }
    // An output is data for the link: a set-user-ID or set-group-ID bit a job left
    // on it (a root job's copy of a shell) is not committed with it.
    out.clear_set_id(name).map_err(|error| Unfit::Unreadable {
        shown: out.show(name),
        error,
    })?;
    Ok(entry.id)
}

fn show(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}
