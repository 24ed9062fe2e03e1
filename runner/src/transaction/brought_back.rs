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
use crate::sandbox::file_id::FileId;
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

/// Moves the files `names` from `from` into `into`, replacing a regular file or a
/// link of that name there unless its identity is in `kept`.
pub fn move_into(from: &Path, names: &[String], into: &Path, kept: &HashSet<FileId>) -> Moved {
    let mut report = Moved::default();
    let dirs = DirHandle::open(from, None).and_then(|f| Ok((f, DirHandle::open(into, None)?)));
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
    for name in names {
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
    match into.entry(name) {
        Ok(entry) if kept.contains(&entry.id) => {
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

/// Across file systems: a copy under a hidden name of its own, renamed into place.
fn copy_then_rename(from: &DirHandle, name: &str, into: &DirHandle) -> Result<(), String> {
    let hidden = format!(".{name}.dtlto-{}", std::process::id());
    let copy = || -> io::Result<()> {
        let mut source = std::fs::File::open(from.path().join(name))?;
        let mut target = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(into.path().join(&hidden))?;
        io::copy(&mut source, &mut target)?;
        into.rename(&hidden, into, name)
    };
    copy().map_err(|error| {
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
    use crate::sandbox::file_id;

    #[test]
    fn files_are_moved_in_replacing_only_unkept_files_and_links() {
        let scratch = tempfile::tempdir().unwrap();
        let (from, into) = (scratch.path().join("from"), scratch.path().join("into"));
        std::fs::create_dir_all(&from).unwrap();
        std::fs::create_dir_all(into.join("dir.s")).unwrap();
        for name in ["new.s", "old.s", "link.s", "input.s", "dir.s"] {
            std::fs::write(from.join(name), name).unwrap();
        }
        std::fs::write(into.join("old.s"), "before").unwrap();
        std::fs::write(scratch.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink("../secret", into.join("link.s")).unwrap();
        std::fs::write(into.join("input.s"), "input").unwrap();
        let kept = HashSet::from([file_id::of_path(&into.join("input.s")).unwrap()]);
        let names: Vec<String> = ["new.s", "old.s", "link.s", "input.s", "dir.s", "../x"]
            .iter()
            .map(|n| n.to_string())
            .collect();

        let report = move_into(&from, &names, &into, &kept);

        assert_eq!(report.moved, 3, "{:?}", report.left);
        assert_eq!(report.left.len(), 3, "{:?}", report.left);
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
}
