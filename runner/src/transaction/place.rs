//! Putting one staged output in place, and taking it back, so that the target name
//! holds a file at every moment and nothing another run placed is ever undone.
//!
//! - A new name is created without replacing (`RENAME_NOREPLACE`, or a hard link,
//!   which never replaces): if another run created it meanwhile, this becomes a
//!   replacement instead of silently overwriting what the check saw absent.
//! - An existing file is exchanged with the staged one (`RENAME_EXCHANGE`): the
//!   previous file lands in staging, exactly the file that was displaced. Where the
//!   system cannot exchange, the previous file gets a second name in staging (a hard
//!   link) before the staged one is renamed over it.
//! - Where the file system has neither (exFAT and other FUSE file systems, FAT):
//!   a new name is created by a rename after checking the name is free, and an
//!   existing file is set aside by a rename into staging before the staged one
//!   takes its name, and put back if that fails. The target is then absent for a
//!   moment, but its previous file is never lost: it is in staging, where a
//!   rollback or the next run's reclaim puts it back.
//! - Undoing checks first that the target is still the file this run placed (device
//!   and file number); a file another run placed since is left alone. An exchange
//!   back is checked again after it happens and reverted if someone slipped in.

use super::dir_handle::{DirHandle, Kind};
use crate::sandbox::file_id::FileId;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::io;

/// The directory in a staging directory where a placement sets aside the file it
/// replaced (hard-linked there before the staged one is renamed over it).
pub const ASIDE: &str = "aside";

/// The directories of one output directory's commit: the output directory and
/// its staging, each opened once and checked.
pub struct Dirs {
    /// The output directory.
    pub target: DirHandle,
    /// The staging directory.
    pub root: DirHandle,
    /// The staging's `out/`, where the staged files are.
    pub out: DirHandle,
    /// The staging's `aside/`, made when first needed.
    aside: OnceCell<DirHandle>,
}

impl Dirs {
    pub fn new(target: DirHandle, root: DirHandle, out: DirHandle) -> Dirs {
        Dirs {
            target,
            root,
            out,
            aside: OnceCell::new(),
        }
    }

    fn aside(&self) -> io::Result<&DirHandle> {
        if let Some(aside) = self.aside.get() {
            return Ok(aside);
        }
        match self.root.create_dir(ASIDE) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        let aside = self.root.open_child(ASIDE, None)?;
        Ok(self.aside.get_or_init(|| aside))
    }
}

/// Where the file that an output replaced is kept until the run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Previous {
    /// There was none: the output is a new name.
    None,
    /// In `out/`, under the output's name (it was exchanged).
    Out,
    /// In `aside/`, under the output's name (it was linked there).
    Aside,
}

/// How an undo ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Undone {
    /// The target is as it was before the run.
    Restored,
    /// Another run's file stands at the target now; it was left alone.
    Superseded,
}

/// How many times a target that appears or vanishes under us is tried again.
const RETRIES: usize = 8;

/// Why an output could not be put in place; `target` is its path as messages show it.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(
        "cannot move it into place at {target}{}: {}",
        .file_system.as_ref().map_or(String::new(), |fs| format!(" (a file system of type {fs})")),
        dtlto_mock::message::io_error(.error)
    )]
    Move {
        target: String,
        /// The output directory's file system, where known: what a failure there
        /// most often comes down to.
        file_system: Option<&'static str>,
        error: io::Error,
    },
    /// The target is another name of a file the run reads.
    #[error(
        "{target} is a name of a file the run reads; a distributor must not overwrite \
         what the link reads"
    )]
    IsInput { target: String },
    #[error("{target} is {}, not a regular file that an output may replace", .kind.describe())]
    NotAFile { target: String, kind: Kind },
    #[error("{target} kept appearing and vanishing while it was committed")]
    Unsteady { target: String },
}

/// Puts `out/name` in place at `target/name`. `placed` is the staged file's identity;
/// a previous file that is one of `inputs` (a second name of an input, such as a
/// Windows short name) is put back and refused.
pub fn place(dirs: &Dirs, name: &str, inputs: &HashSet<FileId>) -> Result<Previous, PlaceError> {
    let into_place = |error| PlaceError::Move {
        target: dirs.target.show(name),
        file_system: dirs.target.file_system(),
        error,
    };
    for _ in 0..RETRIES {
        match create(dirs, name) {
            Ok(()) => return Ok(Previous::None),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(into_place(e)),
        }
        match replace(dirs, name, inputs) {
            Ok(previous) => return Ok(previous),
            // It went away between the two steps: create it after all.
            Err(Replace::Vanished) => {}
            Err(Replace::Refused(reason)) => return Err(reason),
            Err(Replace::Failed(e)) => return Err(into_place(e)),
        }
    }
    Err(PlaceError::Unsteady {
        target: dirs.target.show(name),
    })
}

/// Moves `out/name` to `target/name`, which must not exist.
fn create(dirs: &Dirs, name: &str) -> io::Result<()> {
    match dirs.out.rename_no_replace(name, &dirs.target, name) {
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            match dirs.out.link(name, &dirs.target, name) {
                Ok(()) => {}
                Err(e) if no_hard_links(&e) => {
                    // Neither call exists here: a plain rename, once the name is
                    // seen free.
                    match dirs.target.entry(name) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Ok(_) => return Err(io::ErrorKind::AlreadyExists.into()),
                        Err(e) => return Err(e),
                    }
                    return dirs.out.rename(name, &dirs.target, name);
                }
                Err(e) => return Err(e),
            }
            // The staged name goes with the staging if this fails.
            let _ = dirs.out.remove_file(name);
            Ok(())
        }
        other => other,
    }
}

/// Whether a hard link failed because the file system has none (exFAT or FAT,
/// often through FUSE), not because of the files.
fn no_hard_links(error: &io::Error) -> bool {
    if error.kind() == io::ErrorKind::Unsupported {
        return true;
    }
    #[cfg(unix)]
    let none = [libc::EPERM, libc::ENOSYS, libc::EOPNOTSUPP, libc::EMLINK];
    // ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED.
    #[cfg(windows)]
    let none = [1, 50];
    #[cfg(not(any(unix, windows)))]
    let none: [i32; 0] = [];
    error
        .raw_os_error()
        .is_some_and(|code| none.contains(&code))
}

enum Replace {
    Vanished,
    Refused(PlaceError),
    Failed(io::Error),
}

fn failed(e: io::Error) -> Replace {
    if e.kind() == io::ErrorKind::NotFound {
        Replace::Vanished
    } else {
        Replace::Failed(e)
    }
}

/// Replaces the file at `target/name` with `out/name`, keeping the previous one.
fn replace(dirs: &Dirs, name: &str, inputs: &HashSet<FileId>) -> Result<Previous, Replace> {
    let refusal = |kind: Kind, is_input: bool| {
        let target = dirs.target.show(name);
        Replace::Refused(if is_input {
            PlaceError::IsInput { target }
        } else {
            PlaceError::NotAFile { target, kind }
        })
    };
    match dirs.out.exchange(name, &dirs.target, name) {
        Ok(()) => {
            // `out/name` is now what was at the target.
            let previous = dirs.out.entry(name).map_err(Replace::Failed)?;
            let is_input = inputs.contains(&previous.id);
            if previous.kind != Kind::File || is_input {
                dirs.out
                    .exchange(name, &dirs.target, name)
                    .map_err(Replace::Failed)?;
                return Err(refusal(previous.kind, is_input));
            }
            Ok(Previous::Out)
        }
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            let aside = dirs.aside().map_err(Replace::Failed)?;
            match dirs.target.link(name, aside, name) {
                Ok(()) => {}
                Err(e) if no_hard_links(&e) => {
                    return replace_by_renames(dirs, aside, name, &refusal, inputs)
                }
                Err(e) => {
                    // A directory cannot be linked: say what it is.
                    return Err(match dirs.target.entry(name) {
                        Ok(entry) if entry.kind == Kind::Directory => refusal(entry.kind, false),
                        _ => failed(e),
                    });
                }
            }
            let previous = aside.entry(name).map_err(Replace::Failed)?;
            let is_input = inputs.contains(&previous.id);
            if previous.kind != Kind::File || is_input {
                let _ = aside.remove_file(name);
                return Err(refusal(previous.kind, is_input));
            }
            dirs.out
                .rename(name, &dirs.target, name)
                .map_err(Replace::Failed)?;
            Ok(Previous::Aside)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Replaces `target/name` where the file system has no hard links: the previous
/// file is set aside by a rename, checked to be the file seen, and put back if the
/// staged one cannot take its place.
fn replace_by_renames(
    dirs: &Dirs,
    aside: &DirHandle,
    name: &str,
    refusal: &dyn Fn(Kind, bool) -> Replace,
    inputs: &HashSet<FileId>,
) -> Result<Previous, Replace> {
    let previous = dirs.target.entry(name).map_err(failed)?;
    let is_input = inputs.contains(&previous.id);
    if previous.kind != Kind::File || is_input {
        return Err(refusal(previous.kind, is_input));
    }
    dirs.target.rename(name, aside, name).map_err(failed)?;
    if aside.entry(name).map_err(Replace::Failed)?.id != previous.id {
        // Another file slipped in between the look and the move: put it back.
        aside
            .rename(name, &dirs.target, name)
            .map_err(Replace::Failed)?;
        return Err(Replace::Vanished);
    }
    match dirs.out.rename(name, &dirs.target, name) {
        Ok(()) => Ok(Previous::Aside),
        Err(e) => {
            aside
                .rename(name, &dirs.target, name)
                .map_err(Replace::Failed)?;
            Err(Replace::Failed(e))
        }
    }
}

/// Takes back what `place` did for `name`, if the target is still `placed`.
pub fn undo(dirs: &Dirs, name: &str, placed: FileId, previous: Previous) -> io::Result<Undone> {
    if dirs.target.entry(name)?.id != placed {
        return Ok(Undone::Superseded);
    }
    match previous {
        Previous::None => {
            // Back into staging, where the staging's removal takes it.
            match dirs.target.rename_no_replace(name, &dirs.out, name) {
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    match dirs.target.link(name, &dirs.out, name) {
                        Ok(()) => {}
                        // No hard links: back into staging by a rename (the staged
                        // name is free: the file left it when it was placed).
                        Err(e) if no_hard_links(&e) => {
                            dirs.target.rename(name, &dirs.out, name)?;
                            return Ok(Undone::Restored);
                        }
                        Err(e) => return Err(e),
                    }
                    if dirs.out.entry(name)?.id != placed {
                        // Another run's file slipped in: keep it.
                        dirs.out.remove_file(name)?;
                        return Ok(Undone::Superseded);
                    }
                    dirs.target.remove_file(name)?;
                }
                other => {
                    other?;
                    if dirs.out.entry(name)?.id != placed {
                        dirs.out.rename_no_replace(name, &dirs.target, name)?;
                        return Ok(Undone::Superseded);
                    }
                }
            }
        }
        Previous::Out => {
            dirs.out.exchange(name, &dirs.target, name)?;
            if dirs.out.entry(name)?.id != placed {
                dirs.out.exchange(name, &dirs.target, name)?;
                return Ok(Undone::Superseded);
            }
        }
        Previous::Aside => {
            let aside = dirs.aside()?;
            aside.rename(name, &dirs.target, name)?;
        }
    }
    Ok(Undone::Restored)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::transaction::dir_handle::{NO_HARD_LINKS, PORTABLE_ONLY};
    use std::fs;
    use std::path::{Path, PathBuf};

    /// An output directory with a staging `s/out` holding `name` = "new", in a fresh
    /// temporary directory.
    /// How the system lets a file be placed: the one-step renames; hard links
    /// and plain renames (the portable way); plain renames alone (exFAT).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Way {
        OneStep,
        Links,
        Renames,
    }

    fn scene(test: &str, way: Way) -> (PathBuf, Dirs) {
        PORTABLE_ONLY.with(|p| p.set(way != Way::OneStep));
        NO_HARD_LINKS.with(|n| n.set(way == Way::Renames));
        // Removed by the test when it passes.
        let dir = tempfile::Builder::new()
            .prefix(&format!("dtlto-place-{test}-{way:?}-"))
            .tempdir()
            .unwrap()
            .keep();
        fs::create_dir_all(dir.join("s/out")).unwrap();
        fs::write(dir.join("s/out/o.o"), "new").unwrap();
        let target = DirHandle::open(&dir, None).unwrap();
        let root = target.open_child("s", None).unwrap();
        let out = root.open_child("out", None).unwrap();
        (dir, Dirs::new(target, root, out))
    }

    fn id(path: &Path) -> FileId {
        crate::sandbox::file_id::of_path(path).unwrap()
    }

    fn read(path: PathBuf) -> String {
        fs::read_to_string(path).unwrap()
    }

    fn every_way(test: impl Fn(Way)) {
        for way in [Way::OneStep, Way::Links, Way::Renames] {
            test(way);
        }
    }

    #[test]
    fn a_new_output_is_created_and_undone_back_into_staging() {
        every_way(|way| {
            let (dir, dirs) = scene("new", way);
            let placed = id(&dir.join("s/out/o.o"));
            assert_eq!(
                place(&dirs, "o.o", &HashSet::new()).ok(),
                Some(Previous::None)
            );
            assert_eq!(read(dir.join("o.o")), "new");
            assert_eq!(
                undo(&dirs, "o.o", placed, Previous::None).unwrap(),
                Undone::Restored
            );
            assert!(!dir.join("o.o").exists());
            assert_eq!(read(dir.join("s/out/o.o")), "new");
            fs::remove_dir_all(dir).unwrap();
        });
    }

    #[test]
    fn a_replaced_output_is_kept_and_comes_back() {
        every_way(|way| {
            let (dir, dirs) = scene("replace", way);
            fs::write(dir.join("o.o"), "old").unwrap();
            let placed = id(&dir.join("s/out/o.o"));
            let previous = place(&dirs, "o.o", &HashSet::new()).unwrap();
            assert_eq!(
                previous,
                if way == Way::OneStep {
                    Previous::Out
                } else {
                    Previous::Aside
                }
            );
            assert_eq!(read(dir.join("o.o")), "new");
            assert_eq!(
                undo(&dirs, "o.o", placed, previous).unwrap(),
                Undone::Restored
            );
            assert_eq!(read(dir.join("o.o")), "old");
            fs::remove_dir_all(dir).unwrap();
        });
    }

    #[test]
    fn an_undo_leaves_alone_what_another_run_placed_since() {
        every_way(|way| {
            let (dir, dirs) = scene("superseded", way);
            fs::write(dir.join("o.o"), "old").unwrap();
            let placed = id(&dir.join("s/out/o.o"));
            let previous = place(&dirs, "o.o", &HashSet::new()).unwrap();
            // Another run commits its own file at the same name.
            fs::write(dir.join("theirs"), "theirs").unwrap();
            fs::rename(dir.join("theirs"), dir.join("o.o")).unwrap();
            assert_eq!(
                undo(&dirs, "o.o", placed, previous).unwrap(),
                Undone::Superseded
            );
            assert_eq!(read(dir.join("o.o")), "theirs");
            fs::remove_dir_all(dir).unwrap();
        });
    }

    #[test]
    fn a_directory_a_link_or_an_input_at_the_target_is_refused_and_left_as_it_is() {
        every_way(|way| {
            let (dir, dirs) = scene("refused", way);
            fs::create_dir(dir.join("o.o")).unwrap();
            fs::write(dir.join("o.o/inside"), "x").unwrap();
            let refused = place(&dirs, "o.o", &HashSet::new())
                .unwrap_err()
                .to_string();
            assert!(
                refused.contains("is a directory, not a regular file"),
                "{refused}"
            );
            assert_eq!(read(dir.join("o.o/inside")), "x");
            assert_eq!(read(dir.join("s/out/o.o")), "new");
            fs::remove_dir_all(dir.join("o.o")).unwrap();

            fs::write(dir.join("victim"), "victim").unwrap();
            std::os::unix::fs::symlink("victim", dir.join("o.o")).unwrap();
            let refused = place(&dirs, "o.o", &HashSet::new())
                .unwrap_err()
                .to_string();
            assert!(refused.contains("is a symbolic link"), "{refused}");
            assert_eq!(fs::read_link(dir.join("o.o")).unwrap(), Path::new("victim"));
            assert_eq!(read(dir.join("victim")), "victim");
            fs::remove_file(dir.join("o.o")).unwrap();

            fs::write(dir.join("input"), "input").unwrap();
            fs::hard_link(dir.join("input"), dir.join("o.o")).unwrap();
            let inputs = HashSet::from([id(&dir.join("input"))]);
            let refused = place(&dirs, "o.o", &inputs).unwrap_err().to_string();
            assert!(
                refused.contains("a name of a file the run reads"),
                "{refused}"
            );
            assert_eq!(read(dir.join("o.o")), "input");
            assert_eq!(read(dir.join("s/out/o.o")), "new");
            fs::remove_dir_all(dir).unwrap();
        });
    }
}
