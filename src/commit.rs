//! Moving a set of finished files into place together: afterwards either every
//! target holds its new file, or every target is as it was before.
//!
//! Every target is checked before the first rename. A file already at a target is
//! renamed aside (never deleted) until the whole set has moved; if any step fails,
//! or the caller asks to stop, what was moved goes back, in reverse order.
//!
//! This is the guest's own, standalone commit, for when no host commits for it:
//! when `DTLTO_HOST_COMMITS` (`host_protocol::HOST_COMMITS_VARIABLE`) is not `1`, as
//! under plain `wasmtime run`, the guest writes each output to a temporary beside it
//! (`OUTPUT.dtlto-partial`) and moves them all into place with this, a previous
//! output waiting as `OUTPUT.dtlto-previous`. dtlto-runner sets the variable to `1`:
//! the guest then writes its outputs in place, into the runner's staging, and the
//! runner commits them with its own transaction (`runner/src/transaction/`). The
//! runner does not use this module.

use crate::message::{file_kind, io_error, quoted};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// One finished file and where it belongs.
#[derive(Debug, Clone)]
pub struct Move {
    /// How messages name it, e.g. `jobs[3].outputs[0]`.
    pub label: String,
    /// Where the finished file is now.
    pub from: PathBuf,
    /// Where it belongs.
    pub to: PathBuf,
    /// A free name on the same file system, where the file at `to` (if any) waits
    /// until the whole set has moved.
    pub aside: PathBuf,
}

/// Why nothing was committed, step by step, and the state the files were left in.
#[derive(Debug)]
pub struct CommitError {
    /// Each step that failed, in order, worded for the user.
    pub failed: Vec<String>,
    /// Whether every target is as it was before the commit began.
    pub restored: bool,
    /// What could not be put back, and where its files are now.
    pub left: Vec<String>,
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing was committed:")?;
        for step in &self.failed {
            write!(f, "\n  {step}")?;
        }
        if self.restored {
            f.write_str("\n  every output is as it was before the run")
        } else {
            f.write_str("\n  the rollback failed; not as before the run:")?;
            for left in &self.left {
                write!(f, "\n    {left}")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for CommitError {}

/// What a target held when it was checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Absent,
    RegularFile,
}

/// A step done, so that it can be undone.
enum Done {
    /// `to` was renamed to `aside`.
    SetAside(usize),
    /// `from` was renamed to `to`.
    Placed(usize),
}

/// Moves every file of `moves` into place, or none. `stop` is asked before each
/// move; a reason it gives rolls everything back, like a failed step.
///
/// On success the files set aside are removed; those that could not be are
/// returned with the reason (the commit itself stands).
pub fn commit_all(
    moves: &[Move],
    stop: &dyn Fn() -> Option<String>,
) -> Result<Vec<(PathBuf, io::Error)>, CommitError> {
    let targets = check_all(moves)?;
    let mut done: Vec<Done> = Vec::with_capacity(moves.len() * 2);
    let mut failure = None;
    for (i, (m, target)) in moves.iter().zip(&targets).enumerate() {
        if let Some(reason) = stop() {
            failure = Some(reason);
            break;
        }
        if *target == Target::RegularFile {
            if let Err(e) = fs::rename(&m.to, &m.aside) {
                failure = Some(format!(
                    "{}: cannot set the previous {} aside: {}",
                    m.label,
                    quoted(&m.to.to_string_lossy()),
                    io_error(&e)
                ));
                break;
            }
            done.push(Done::SetAside(i));
        }
        if let Err(e) = fs::rename(&m.from, &m.to) {
            failure = Some(format!(
                "{}: cannot move it into place at {}: {}",
                m.label,
                quoted(&m.to.to_string_lossy()),
                io_error(&e)
            ));
            break;
        }
        done.push(Done::Placed(i));
    }
    if let Some(failed) = failure {
        let left = roll_back(moves, done);
        return Err(CommitError {
            failed: vec![failed],
            restored: left.is_empty(),
            left,
        });
    }
    let mut leftovers = Vec::new();
    for (m, target) in moves.iter().zip(&targets) {
        if *target == Target::RegularFile {
            if let Err(e) = fs::remove_file(&m.aside) {
                leftovers.push((m.aside.clone(), e));
            }
        }
    }
    Ok(leftovers)
}

/// Checks every move before anything is renamed: each finished file is a regular
/// file, each target absent or a regular file, each aside name free.
fn check_all(moves: &[Move]) -> Result<Vec<Target>, CommitError> {
    let mut failed = Vec::new();
    let mut targets = Vec::with_capacity(moves.len());
    for m in moves {
        match fs::symlink_metadata(&m.from) {
            Ok(meta) if meta.is_file() => {}
            Ok(meta) => failed.push(format!(
                "{}: the finished file {} is {}, not a regular file",
                m.label,
                show(&m.from),
                file_kind(&meta.file_type())
            )),
            Err(e) => failed.push(format!(
                "{}: the finished file {} cannot be read: {}",
                m.label,
                show(&m.from),
                io_error(&e)
            )),
        }
        let target = match fs::symlink_metadata(&m.to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Target::Absent,
            Ok(meta) if meta.is_file() => Target::RegularFile,
            Ok(meta) => {
                failed.push(format!(
                    "{}: {} is {}, not a regular file that an output may replace",
                    m.label,
                    show(&m.to),
                    file_kind(&meta.file_type())
                ));
                Target::Absent
            }
            Err(e) => {
                failed.push(format!(
                    "{}: cannot look at {}: {}",
                    m.label,
                    show(&m.to),
                    io_error(&e)
                ));
                Target::Absent
            }
        };
        if target == Target::RegularFile && fs::symlink_metadata(&m.aside).is_ok() {
            failed.push(format!(
                "{}: the name {} for setting the previous file aside is taken",
                m.label,
                show(&m.aside)
            ));
        }
        targets.push(target);
    }
    if failed.is_empty() {
        Ok(targets)
    } else {
        Err(CommitError {
            failed,
            restored: true,
            left: Vec::new(),
        })
    }
}

/// Undoes `done` in reverse; returns what could not be undone.
fn roll_back(moves: &[Move], done: Vec<Done>) -> Vec<String> {
    let mut left = Vec::new();
    for step in done.into_iter().rev() {
        match step {
            Done::Placed(i) => {
                let m = &moves[i];
                if let Err(e) = fs::rename(&m.to, &m.from) {
                    left.push(format!(
                        "{}: {} holds the new file ({}; cannot move it back)",
                        m.label,
                        show(&m.to),
                        io_error(&e)
                    ));
                }
            }
            Done::SetAside(i) => {
                let m = &moves[i];
                if let Err(e) = fs::rename(&m.aside, &m.to) {
                    left.push(format!(
                        "{}: its previous file is at {}, not at {} ({})",
                        m.label,
                        show(&m.aside),
                        show(&m.to),
                        io_error(&e)
                    ));
                }
            }
        }
    }
    left
}

fn show(path: &Path) -> String {
    quoted(&path.to_string_lossy())
}

#[cfg(all(test, not(target_os = "wasi")))]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A fresh directory with an empty `staged/`, removed when dropped.
    fn scratch(name: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("dtlto-commit-{name}-"))
            .tempdir()
            .unwrap();
        fs::create_dir(dir.path().join("staged")).unwrap();
        dir
    }

    /// Moves for `names`: staged/<name> -> <name>, aside staged/<name>.old.
    fn moves(dir: &Path, names: &[&str]) -> Vec<Move> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                fs::write(dir.join("staged").join(name), format!("new {name}")).unwrap();
                Move {
                    label: format!("jobs[{i}].outputs[0]"),
                    from: dir.join("staged").join(name),
                    to: dir.join(name),
                    aside: dir.join("staged").join(format!("{name}.old")),
                }
            })
            .collect()
    }

    fn read(path: PathBuf) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn every_file_moves_and_replaced_files_are_removed() {
        let scratch = scratch("ok");
        let dir = scratch.path();
        fs::write(dir.join("b.o"), "old b").unwrap();
        let moves = moves(dir, &["a.o", "b.o"]);
        let leftovers = commit_all(&moves, &|| None).unwrap();
        assert!(leftovers.is_empty());
        assert_eq!(read(dir.join("a.o")), "new a.o");
        assert_eq!(read(dir.join("b.o")), "new b.o");
        assert_eq!(fs::read_dir(dir.join("staged")).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_at_a_target_is_found_before_anything_moves() {
        let scratch = scratch("dir-target");
        let dir = scratch.path();
        fs::write(dir.join("a.o"), "old a").unwrap();
        fs::create_dir(dir.join("c.o")).unwrap();
        let moves = moves(dir, &["a.o", "b.o", "c.o"]);
        let error = commit_all(&moves, &|| None).unwrap_err();
        assert!(error.restored);
        assert_eq!(error.failed.len(), 1, "{error}");
        assert!(
            error
                .to_string()
                .contains("c.o\" is a directory, not a regular file"),
            "{error}"
        );
        assert_eq!(read(dir.join("a.o")), "old a");
        assert!(!dir.join("b.o").exists());
    }

    #[test]
    fn a_failure_midway_puts_everything_back() {
        let scratch = scratch("midway");
        let dir = scratch.path();
        fs::write(dir.join("a.o"), "old a").unwrap();
        let moves = moves(dir, &["a.o", "b.o", "c.o"]);
        // The last staged file vanishes after the checks, so its move fails.
        let asked = Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            if asked.get() == 3 {
                fs::remove_file(&moves[2].from).unwrap();
            }
            None
        };
        let error = commit_all(&moves, &stop).unwrap_err();
        assert!(error.restored, "{error}");
        assert!(
            error.failed[0].starts_with("jobs[2].outputs[0]: cannot move it into place"),
            "{error}"
        );
        assert_eq!(read(dir.join("a.o")), "old a");
        assert!(!dir.join("b.o").exists());
        assert_eq!(read(dir.join("staged/a.o")), "new a.o");
        assert_eq!(read(dir.join("staged/b.o")), "new b.o");
        assert!(!dir.join("staged/a.o.old").exists());
    }

    #[test]
    fn a_stop_request_during_the_commit_rolls_it_back() {
        let scratch = scratch("stop");
        let dir = scratch.path();
        fs::write(dir.join("b.o"), "old b").unwrap();
        let moves = moves(dir, &["a.o", "b.o", "c.o"]);
        let asked = Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            (asked.get() == 3).then(|| "stopped by SIGTERM".to_owned())
        };
        let error = commit_all(&moves, &stop).unwrap_err();
        assert_eq!(error.failed, ["stopped by SIGTERM"]);
        assert!(error.restored);
        assert!(!dir.join("a.o").exists());
        assert_eq!(read(dir.join("b.o")), "old b");
    }

    #[test]
    fn a_taken_aside_name_is_never_overwritten() {
        let scratch = scratch("aside-taken");
        let dir = scratch.path();
        fs::write(dir.join("a.o"), "old a").unwrap();
        let moves = moves(dir, &["a.o"]);
        fs::write(&moves[0].aside, "someone's").unwrap();
        let error = commit_all(&moves, &|| None).unwrap_err();
        assert!(error.to_string().contains("is taken"), "{error}");
        assert_eq!(read(moves[0].aside.clone()), "someone's");
        assert_eq!(read(dir.join("a.o")), "old a");
    }
}
