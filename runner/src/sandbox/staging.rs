//! Private staging directories, one inside each output directory (so the commit is a
//! rename on one file system), and the commit that moves declared outputs into place.
//! Dropping an uncommitted `Staging` removes everything the guest wrote.

use super::plan::Plan;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub struct Staging {
    /// The staging directory of each of the plan's output directories.
    dirs: Vec<PathBuf>,
}

#[derive(Debug)]
pub enum CommitError {
    /// The guest wrote paths the job file does not declare; nothing was committed.
    Undeclared(Vec<PathBuf>),
    /// The file system refused a step.
    Io { what: String, error: io::Error },
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Undeclared(paths) => {
                write!(
                    f,
                    "the distributor wrote {} path(s) the job file does not declare, \
                     so nothing was committed:",
                    paths.len()
                )?;
                for path in paths {
                    write!(f, "\n  {}", path.display())?;
                }
                Ok(())
            }
            CommitError::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for CommitError {}

impl Staging {
    /// Creates a fresh staging directory in each output directory.
    pub fn create(plan: &Plan) -> Result<Staging, CommitError> {
        let mut staging = Staging { dirs: Vec::new() };
        for (i, dir) in plan.output_dirs.iter().enumerate() {
            let path = dir
                .host
                .join(format!(".dtlto-staging-{}-{i}", std::process::id()));
            // A directory left by a killed run with our pid is ours to reuse.
            let _ = fs::remove_dir_all(&path);
            fs::create_dir(&path).map_err(|error| CommitError::Io {
                what: format!(
                    "cannot create a staging directory in output directory {}",
                    dir.host.display()
                ),
                error,
            })?;
            staging.dirs.push(path);
        }
        Ok(staging)
    }

    /// The staging directory for the plan's `index`-th output directory.
    pub fn dir(&self, index: usize) -> &Path {
        &self.dirs[index]
    }

    /// Checks that every staged entry is a declared output, then renames each into
    /// place. Returns the committed paths.
    pub fn commit(self, plan: &Plan) -> Result<Vec<PathBuf>, CommitError> {
        let declared: HashSet<(usize, &str)> = plan
            .outputs
            .iter()
            .map(|o| (o.dir, o.file_name.as_str()))
            .collect();
        let mut undeclared = Vec::new();
        let mut staged = Vec::new();
        for (index, staging_dir) in self.dirs.iter().enumerate() {
            let final_dir = &plan.output_dirs[index].host;
            let entries = fs::read_dir(staging_dir).map_err(|error| CommitError::Io {
                what: format!("cannot list staging directory {}", staging_dir.display()),
                error,
            })?;
            for entry in entries {
                let entry = entry.map_err(|error| CommitError::Io {
                    what: format!("cannot list staging directory {}", staging_dir.display()),
                    error,
                })?;
                let name = entry.file_name();
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                let is_declared = name
                    .to_str()
                    .is_some_and(|name| declared.contains(&(index, name)));
                if is_declared && is_file {
                    staged.push((entry.path(), final_dir.join(&name)));
                } else {
                    undeclared.push(final_dir.join(&name));
                }
            }
        }
        if !undeclared.is_empty() {
            undeclared.sort();
            return Err(CommitError::Undeclared(undeclared));
        }
        let mut committed = Vec::new();
        for (from, to) in staged {
            fs::rename(&from, &to).map_err(|error| CommitError::Io {
                what: format!(
                    "cannot move the staged output into place at {}",
                    to.display()
                ),
                error,
            })?;
            committed.push(to);
        }
        Ok(committed)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir_all(dir);
        }
    }
}
