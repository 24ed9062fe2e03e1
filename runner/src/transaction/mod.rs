//! The run's transaction: a private staging directory in every output directory,
//! a commit that moves every declared output into place or none, and a cleanup that
//! reports what it could not remove.
//!
//! What it promises: outputs change only through the commit; the commit checks every
//! staged file and every target before the first rename, and rolls back on any
//! failure or stop request; staging directories are ours alone (see staging_dir.rs)
//! and those of dead runs are reclaimed.

mod remove_tree;
mod staging_dir;

use crate::file_id::{self, FileId};
use crate::sandbox::plan::Plan;
use dtlto_mock::commit::{commit_all, CommitError, Move};
use dtlto_mock::message::{file_kind, io_error, quoted};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use remove_tree::RemoveError;
use staging_dir::StagingDir;
pub use staging_dir::PREFIX as STAGING_PREFIX;

/// How many undeclared paths a refusal lists before it counts the rest.
const LISTED: usize = 20;

pub struct Transaction {
    dirs: Vec<Staged>,
    /// Open files kept for the cleanup: a guest blocked in a host call may hold every
    /// descriptor the process may have when a stop must remove its staging.
    reserve: Vec<std::fs::File>,
}

/// How many open files the cleanup needs at most (see remove_tree.rs), and keeps.
const RESERVED_FILES: usize = 4;

/// One output directory: what it was when the run began, and its staging.
struct Staged {
    host: PathBuf,
    id: FileId,
    staging: StagingDir,
}

#[derive(Debug)]
pub enum TransactionError {
    /// A staging directory could not be made.
    Staging { dir: PathBuf, error: io::Error },
    /// The guest wrote paths the job file does not declare.
    Undeclared(Vec<PathBuf>),
    /// What the guest staged, or where it would go, is not fit to commit.
    Unfit(Vec<String>),
    /// A step of the commit failed; everything was rolled back (or says what was not).
    Commit(CommitError),
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
            TransactionError::Commit(error) => error.restored,
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
    for dir in &plan.output_dirs {
        let found = staging_dir::reclaim(&dir.host);
        for path in found.restored {
            report.notes.push(format!(
                "restored {} from the commit of a run that died mid-way",
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
        for dir in &plan.output_dirs {
            while reserve.len() < RESERVED_FILES {
                let file = file_id::open_to_inspect(&dir.host).map_err(|error| {
                    TransactionError::Staging {
                        dir: dir.host.clone(),
                        error,
                    }
                })?;
                reserve.push(file);
            }
            let failed = |error| TransactionError::Staging {
                dir: dir.host.clone(),
                error,
            };
            let id = file_id::of_path(&dir.host).map_err(failed)?;
            let staging = StagingDir::create(&dir.host).map_err(failed)?;
            dirs.push(Staged {
                host: dir.host.clone(),
                id,
                staging,
            });
        }
        Ok(Transaction { dirs, reserve })
    }

    /// The directory the guest writes the plan's `index`-th output directory's
    /// outputs into.
    pub fn guest_dir(&self, index: usize) -> PathBuf {
        self.dirs[index].staging.out()
    }

    /// The staging directory of the plan's `index`-th output directory.
    pub fn staging_root(&self, index: usize) -> &Path {
        self.dirs[index].staging.root()
    }

    /// Checks what the guest staged and moves every declared output into place, or
    /// none. `stop` is asked between moves; a reason rolls the commit back. Returns
    /// the committed paths, in job order.
    pub fn commit(
        &mut self,
        plan: &Plan,
        stop: &dyn Fn() -> Option<String>,
    ) -> Result<Vec<PathBuf>, TransactionError> {
        let staged = self.list_staged(plan)?;
        let mut unfit = Vec::new();
        let mut moves = Vec::new();
        for output in &plan.outputs {
            if !staged.contains(&(output.dir, output.file_name.as_str())) {
                continue;
            }
            let dir = &self.dirs[output.dir];
            let from = dir.staging.out().join(&output.file_name);
            if let Err(problem) = fit_to_commit(&from) {
                unfit.push(format!("{}: staged {problem}", output.location));
            }
            moves.push(Move {
                label: output.location.clone(),
                from,
                to: dir.host.join(&output.file_name),
                aside: dir.staging.aside().join(&output.file_name),
            });
        }
        for dir in &self.dirs {
            if !file_id::of_path(&dir.host).is_ok_and(|id| id == dir.id) {
                unfit.push(format!(
                    "output directory {} was moved or replaced during the run",
                    show(&dir.host)
                ));
            }
        }
        if !unfit.is_empty() {
            return Err(TransactionError::Unfit(unfit));
        }
        for dir in &self.dirs {
            let aside = dir.staging.aside();
            fs::create_dir(&aside).map_err(|error| {
                TransactionError::Unfit(vec![format!(
                    "cannot create {}: {}",
                    show(&aside),
                    io_error(&error)
                )])
            })?;
        }
        // Files set aside and not removed stay in the staging, which is removed next.
        commit_all(&moves, stop).map_err(TransactionError::Commit)?;
        Ok(moves.into_iter().map(|m| m.to).collect())
    }

    /// The declared outputs that are staged, as (output directory, file name);
    /// anything undeclared is an error that lists it.
    fn list_staged<'p>(
        &self,
        plan: &'p Plan,
    ) -> Result<HashSet<(usize, &'p str)>, TransactionError> {
        let declared: HashMap<(usize, &str), &str> = plan
            .outputs
            .iter()
            .map(|o| ((o.dir, o.file_name.as_str()), o.file_name.as_str()))
            .collect();
        let mut undeclared = Vec::new();
        let mut staged = HashSet::new();
        for (index, dir) in self.dirs.iter().enumerate() {
            let out = dir.staging.out();
            let listing_failed = |error: io::Error| {
                TransactionError::Unfit(vec![format!(
                    "cannot list the staging directory {}: {}",
                    show(&out),
                    io_error(&error)
                )])
            };
            for entry in fs::read_dir(&out).map_err(listing_failed)? {
                let name = entry.map_err(listing_failed)?.file_name();
                // A name that is not UTF-8 cannot be declared: JSON paths are text.
                match name.to_str().and_then(|n| declared.get(&(index, n))) {
                    Some(declared_name) => {
                        staged.insert((index, *declared_name));
                    }
                    None => undeclared.push(dir.host.join(&name)),
                }
            }
        }
        if undeclared.is_empty() {
            Ok(staged)
        } else {
            undeclared.sort();
            Err(TransactionError::Undeclared(undeclared))
        }
    }

    /// Removes every staging directory; reports each one that could not be removed.
    pub fn close(self) -> Result<(), Vec<RemoveError>> {
        drop(self.reserve);
        let failures: Vec<RemoveError> = self
            .dirs
            .into_iter()
            .filter_map(|dir| dir.staging.remove().err())
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }
}

/// A staged output may be committed only as a regular file with no other name: a
/// guest must not hand over one of its inputs, or one file under several outputs.
fn fit_to_commit(staged: &Path) -> Result<(), String> {
    let kind = fs::symlink_metadata(staged)
        .map_err(|e| format!("{} cannot be read: {}", show(staged), io_error(&e)))?
        .file_type();
    if !kind.is_file() {
        return Err(format!(
            "{} is {}, not a regular file",
            show(staged),
            file_kind(&kind)
        ));
    }
    let links = file_id::open_to_inspect(staged).and_then(|file| file_id::link_count(&file));
    match links {
        Ok(1) => Ok(()),
        Ok(n) => Err(format!(
            "{} has {n} names (hard links); an output must be a file of its own",
            show(staged)
        )),
        Err(e) => Err(format!(
            "{} cannot be opened: {}",
            show(staged),
            io_error(&e)
        )),
    }
}

fn show(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}
