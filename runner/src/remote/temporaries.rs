//! A compile's `-save-temps` temporaries, as remote mode brings them back: which
//! names a job may ask for (none that the link declares), and moving what came back
//! into the working directory once the outputs are committed, never over a file
//! the run reads or writes, under whatever name.

use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::Plan;
use crate::transaction::HeldTransaction;
use dtlto_mock::job_file::JobFile;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The paths the link declares (every input and output, and the job file), by
/// their names from the working directory: no temporary takes one.
pub(super) struct DeclaredPaths {
    cwd: PathBuf,
    paths: HashSet<PathBuf>,
}

impl DeclaredPaths {
    pub(super) fn of(job_file: &JobFile, job_path: &str, cwd: &Path) -> DeclaredPaths {
        let jobs = job_file.jobs.iter();
        let paths = job_file
            .common
            .inputs
            .iter()
            .chain(jobs.flat_map(|j| j.inputs.iter().chain(&j.outputs)))
            .map(String::as_str)
            .chain([job_path])
            .map(|p| lexical(&cwd.join(p)))
            .collect();
        DeclaredPaths {
            cwd: cwd.to_path_buf(),
            paths,
        }
    }

    /// Whether a name in the working directory is one of them.
    pub(super) fn names(&self, name: &str) -> bool {
        self.paths.contains(&lexical(&self.cwd.join(name)))
    }

    /// The identities of those that exist, and of the links among them.
    fn identities(&self) -> HashSet<FileId> {
        let mut ids = HashSet::new();
        for path in &self.paths {
            ids.extend(file_id::of_path_followed(path).ok());
            ids.extend(link_identity(path));
        }
        ids
    }
}

/// Moves each job's temporaries (its private directory in the staging, their names)
/// into the working directory `into` (with its identity when planned), after the
/// commit; what is left is named in a warning. `None` without temporaries, else how
/// many were moved.
pub(super) fn move_into_place(
    transaction: &HeldTransaction,
    brought: Vec<(PathBuf, Vec<String>)>,
    into: (&Path, Option<FileId>),
    plan: &Plan,
    declared: &DeclaredPaths,
) -> Option<usize> {
    if brought.is_empty() {
        return None;
    }
    // Neither an input nor an output of the run is replaced, whatever its name.
    let mut kept = declared.identities();
    kept.extend(
        (0..plan.outputs.len()).filter_map(|k| file_id::of_path(&plan.output_path(k)).ok()),
    );
    let mut moved = 0;
    for (dir, names) in brought {
        let report = transaction.bring_back(&dir, &names, into, &kept);
        moved += report.moved;
        for problem in report.left {
            dtlto_mock::stderr_line!(
                "dtlto-runner: warning: a -save-temps temporary was not brought back: {problem}"
            );
        }
    }
    Some(moved)
}

/// The identity of a link itself (where the path is one), not of what it leads to.
#[cfg(unix)]
fn link_identity(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    Some(FileId::from_raw(meta.dev(), meta.ino()))
}

/// Windows: links are followed (std gives no identity of a link itself).
#[cfg(not(unix))]
fn link_identity(_: &Path) -> Option<FileId> {
    None
}

/// A path with `.` left out and each `..` taking the name before it away.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn declared_paths_are_compared_as_the_working_directory_names_them() {
        let job_file = JobFile {
            common: dtlto_mock::job_file::Common {
                linker_output: "app".into(),
                args: vec!["clang".into()],
                inputs: Vec::new(),
            },
            jobs: vec![dtlto_mock::job_file::Job {
                args: Vec::new(),
                inputs: vec!["./a.o".into(), "sub/../b.o".into(), "/abs/c.o".into()],
                outputs: vec!["a.native.o".into()],
            }],
        };
        let declared = DeclaredPaths::of(&job_file, "job.json", Path::new("/w"));
        for name in ["a.o", "b.o", "a.native.o", "job.json"] {
            assert!(declared.names(name), "{name}");
        }
        assert!(!declared.names("a.s") && !declared.names("c.o"));
    }
}
