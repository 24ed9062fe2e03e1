//! Files a run brings back besides its declared outputs (remote mode: a compile's
//! `-save-temps` temporaries), moved from the run's private staging into a directory
//! once the outputs are committed, one by one.
//!
//! They are not outputs: nothing declared them, so no commit checks them all first
//! and none is rolled back. What keeps them harmless: a name is one plain component
//! (no separator, no `..`); a file the run reads or commits is never replaced, under
//! any name; nor is a directory or anything but a regular file; a link there is
//! replaced, never followed. Each move is one rename (a copy first, then a rename,
//! across file systems), so a reader sees the old file or the new one, never half.

use super::dir_handle::{DirHandle, Kind};
use crate::sandbox::file_id::{self, FileId};
use dtlto_mock::message::quoted;
use std::collections::HashSet;
use std::io;
use std::path::Path;

/// What `move_into` did.
#[derive(Debug, Default)]
pub struct Moved {
    /// How many files were moved into place.
    pub moved: usize,
    /// Each file left where it was, and why.
    pub left: Vec<String>,
}

impl Moved {
    /// None of `count` files moved: a stop came first.
    pub fn stopped(count: usize) -> Moved {
        Moved {
            moved: 0,
            left: vec![format!("the remaining {count}: the run was stopped")],
        }
    }
}

/// Moves the files `names` from `from` into `into` (which must still be the
/// directory `into_id`, when given), replacing a regular file or a link of that
/// name there unless its identity (or, for a link, its target's) is in `kept`.
/// Between files, `stopped` is asked: once it says so, the rest stay.
pub fn move_into(
    from: &Path,
    names: &[String],
    (into, into_id): (&Path, Option<FileId>),
    kept: &HashSet<FileId>,
    stopped: &dyn Fn() -> bool,
) -> Moved {
    let mut report = Moved::default();
    let dirs = DirHandle::open(from, None).and_then(|f| Ok((f, DirHandle::open(into, into_id)?)));
    let (from_dir, into_dir) = match dirs {
        Ok(dirs) => dirs,
        Err(error) => {
            report.left.push(format!(
                "{} into {}: {error}",
                names.len(),
                quoted(&into.to_string_lossy())
            ));
            return report;
        }
    };
    for (k, name) in names.iter().enumerate() {
        if stopped() {
            report.left.push(format!(
                "the remaining {}: the run was stopped",
                names.len() - k
            ));
            break;
        }
        match move_one(&from_dir, name, &into_dir, kept) {
            Ok(()) => report.moved += 1,
            Err(why) => report.left.push(format!("{}: {why}", into_dir.show(name))),
        }
    }
    report
}

fn move_one(
    from: &DirHandle,
    name: &str,
    into: &DirHandle,
    kept: &HashSet<FileId>,
) -> Result<(), String> {
    if !is_plain_name(name) {
        return Err("not a plain file name".into());
    }
    match from.entry(name) {
        Ok(entry) if entry.kind == Kind::File => {}
        Ok(entry) => {
            return Err(format!(
                "the file brought back is {}",
                entry.kind.describe()
            ))
        }
        Err(error) => return Err(error.to_string()),
    }
    // A link is looked through too: replacing it would change what a name the run
    // reads by leads to.
    let through_link = |entry: &super::dir_handle::Entry| {
        entry.kind == Kind::Symlink
            && file_id::of_path_followed(&into.path().join(name)).is_ok_and(|id| kept.contains(&id))
    };
    match into.entry(name) {
        Ok(entry) if kept.contains(&entry.id) || through_link(&entry) => {
            return Err("that is a file the run reads or wrote: it is kept".into())
        }
        Ok(entry) if matches!(entry.kind, Kind::File | Kind::Symlink) => {}
        Ok(entry) => return Err(format!("{} is there", entry.kind.describe())),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.to_string()),
    }
    match from.rename(name, into, name) {
        Ok(()) => Ok(()),
        Err(error) if is_cross_device(&error) => copy_then_rename(from, name, into),
        Err(error) => Err(error.to_string()),
    }
}

/// Across file systems: a copy under a hidden name of its own (created here, never
/// through a link), renamed into place; removed again if that fails.
fn copy_then_rename(from: &DirHandle, name: &str, into: &DirHandle) -> Result<(), String> {
    let random = getrandom::u64().map_err(|e| e.to_string())?;
    let hidden = format!(".{name}.dtlto-{random:016x}");
    let mut source = std::fs::File::open(from.path().join(name)).map_err(|e| e.to_string())?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(into.path().join(&hidden))
        .map_err(|e| e.to_string())?;
    // Ours from here: removed on failure.
    let placed = io::copy(&mut source, &mut target).and_then(|_| into.rename(&hidden, into, name));
    placed.map_err(|error| {
        let _ = into.remove_file(&hidden);
        error.to_string()
    })
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !(cfg!(windows) && name.contains(':'))
}

fn is_cross_device(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::CrossesDevices
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A scratch directory holding `from/` (the staging's side) and `into/` (the
    /// working directory's), both made.
    fn from_and_into() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let scratch = tempfile::tempdir().unwrap();
        let (from, into) = (scratch.path().join("from"), scratch.path().join("into"));
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(&into).unwrap();
        (scratch, from, into)
    }

    #[test]
    fn files_are_moved_in_replacing_only_unkept_files_and_links() {
        let (scratch, from, into) = from_and_into();
        std::fs::create_dir(into.join("dir.s")).unwrap();
        for name in ["new.s", "old.s", "link.s", "input.s", "dir.s", "alias.s"] {
            std::fs::write(from.join(name), name).unwrap();
        }
        std::fs::write(into.join("old.s"), "before").unwrap();
        std::fs::write(scratch.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink("../secret", into.join("link.s")).unwrap();
        std::fs::write(into.join("input.s"), "input").unwrap();
        // A link to the input: replacing it would change what that name reads.
        std::os::unix::fs::symlink("input.s", into.join("alias.s")).unwrap();
        let kept = HashSet::from([file_id::of_path(&into.join("input.s")).unwrap()]);
        let names: Vec<String> = [
            "new.s", "old.s", "link.s", "input.s", "dir.s", "alias.s", "../x",
        ]
        .iter()
        .map(|n| n.to_string())
        .collect();

        let report = move_into(&from, &names, (&into, None), &kept, &|| false);

        assert_eq!(report.moved, 3, "{:?}", report.left);
        assert_eq!(report.left.len(), 4, "{:?}", report.left);
        assert!(std::fs::symlink_metadata(into.join("alias.s"))
            .unwrap()
            .is_symlink());
        for name in ["new.s", "old.s", "link.s"] {
            assert_eq!(std::fs::read_to_string(into.join(name)).unwrap(), name);
        }
        // The link was replaced, not followed; the input and the directory stand.
        assert!(!std::fs::symlink_metadata(into.join("link.s"))
            .unwrap()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(scratch.path().join("secret")).unwrap(),
            "secret"
        );
        assert_eq!(
            std::fs::read_to_string(into.join("input.s")).unwrap(),
            "input"
        );
        assert!(into.join("dir.s").is_dir());
        assert!(report.left.iter().any(|l| l.contains("reads or wrote")));
        assert!(report
            .left
            .iter()
            .any(|l| l.contains("not a plain file name")));
    }

    #[test]
    fn a_stop_ends_the_moves_between_files() {
        let (_scratch, from, into) = from_and_into();
        let names: Vec<String> = (0..3).map(|k| format!("t{k}.s")).collect();
        for name in &names {
            std::fs::write(from.join(name), name).unwrap();
        }
        let asked = std::cell::Cell::new(0);
        let stopped = || {
            asked.set(asked.get() + 1);
            asked.get() > 1
        };
        let report = move_into(&from, &names, (&into, None), &HashSet::new(), &stopped);
        assert_eq!(report.moved, 1);
        assert_eq!(
            report.left,
            vec!["the remaining 2: the run was stopped".to_string()]
        );
        assert!(into.join("t0.s").exists() && !into.join("t1.s").exists());
    }

    #[test]
    fn a_directory_replaced_since_it_was_planned_gets_nothing() {
        let (scratch, from, into) = from_and_into();
        std::fs::write(from.join("t.s"), "t").unwrap();
        let planned = file_id::of_path(&into).unwrap();
        std::fs::rename(&into, scratch.path().join("moved")).unwrap();
        std::fs::create_dir(scratch.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink("elsewhere", &into).unwrap();
        let names = vec!["t.s".to_string()];
        let report = move_into(
            &from,
            &names,
            (&into, Some(planned)),
            &HashSet::new(),
            &|| false,
        );
        assert_eq!(report.moved, 0, "{:?}", report.left);
        assert!(!scratch.path().join("elsewhere/t.s").exists());
    }
}
