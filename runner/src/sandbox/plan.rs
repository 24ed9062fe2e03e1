//! Planning a sandboxed run before anything runs: which host directories the guest
//! may read, where each declared output is staged, and how every path the guest will
//! be given maps into its view. Conflicts (an output that is also an input, the job
//! file, a source, or another job's output) stop the run here.

use super::paths::{comparison_key, PathStyle};
use dtlto_mock::job_file::{self, JobFile};
use dtlto_mock::json;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// What the guest may touch, decided by the runner.
#[derive(Debug, Default)]
pub struct Plan {
    /// Directories preopened read-only: (host directory, guest name).
    pub read_dirs: Vec<(PathBuf, String)>,
    /// Directories that receive outputs; each gets a private staging directory.
    pub output_dirs: Vec<OutputDir>,
    /// Every declared output, in job order.
    pub outputs: Vec<DeclaredOutput>,
    /// Host path, exactly as written on the command line or in the job file -> the
    /// path that names it in the guest's view.
    pub guest_paths: BTreeMap<String, String>,
}

#[derive(Debug)]
pub struct OutputDir {
    /// The real directory, canonical.
    pub host: PathBuf,
    /// The writable preopen's name in the guest.
    pub guest: String,
}

#[derive(Debug)]
pub struct DeclaredOutput {
    /// `jobs[3].outputs[0]`
    pub location: String,
    /// Index into `Plan::output_dirs`.
    pub dir: usize,
    /// Its file name in that directory.
    pub file_name: String,
}

/// Why the runner refuses to run.
#[derive(Debug, PartialEq, Eq)]
pub enum PlanError {
    /// An output names the same file as something the run reads.
    OutputIsRead {
        output_location: String,
        output: String,
        other_location: String,
    },
    /// Two outputs name the same file.
    DuplicateOutput {
        first_location: String,
        second_location: String,
        output: String,
    },
    /// An output's directory does not exist, or the output names no file.
    UnusableOutput {
        location: String,
        output: String,
        reason: String,
    },
    /// The working directory could not be read.
    NoWorkingDirectory(String),
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::OutputIsRead {
                output_location,
                output,
                other_location,
            } => write!(
                f,
                "{output_location} \"{output}\" is also {other_location}; \
                 a distributor must not overwrite what the link reads"
            ),
            PlanError::DuplicateOutput {
                first_location,
                second_location,
                output,
            } => write!(
                f,
                "{second_location} \"{output}\" is the same file as {first_location}; \
                 two jobs cannot produce one output"
            ),
            PlanError::UnusableOutput {
                location,
                output,
                reason,
            } => write!(f, "cannot stage {location} \"{output}\": {reason}"),
            PlanError::NoWorkingDirectory(e) => {
                write!(f, "cannot read the working directory: {e}")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// The root under which the guest sees everything the runner gives it.
const GUEST_ROOT: &str = "/dtlto";

/// Plans a run of a distributor with `args` (the job file last), paths relative to
/// `cwd`. With `writes` false (dtlto-mock's validate mode) the job file is not read and
/// no output is planned: the guest gets read access only.
pub fn plan(args: &[String], cwd: &Path, writes: bool) -> Result<Plan, PlanError> {
    Planner::new(cwd).plan(args, writes)
}

/// Reads the job file as the guest will; `None` if it is unreadable or invalid, in
/// which case the guest reports why and nothing may be written.
pub fn read_job_file(path: &Path) -> Option<JobFile> {
    let text = fs::read_to_string(path).ok()?;
    let doc = json::parse(&text).ok()?;
    job_file::read(&doc).ok()
}

/// From this many planned paths in one directory on, the planner lists the directory
/// once instead of `lstat`ing each path (a link of 10,000 jobs names 50,000 paths in
/// two or three directories).
const LIST_FROM: usize = 64;

struct Planner<'a> {
    cwd: &'a Path,
    style: PathStyle,
    plan: Plan,
    /// Comparison key -> JSON location or argument description, for conflict checks.
    read_keys: HashMap<String, String>,
    /// Directory as written -> its canonical form, or `None` if it does not exist.
    /// Thousands of paths share a few directories.
    canonical_dirs: HashMap<PathBuf, Option<PathBuf>>,
    /// Directory as written -> how many of the planned paths lie in it.
    paths_per_dir: HashMap<PathBuf, usize>,
    /// Canonical directory -> the type of each entry, by its comparison key; `None` if
    /// it could not be listed.
    listings: HashMap<PathBuf, Option<HashMap<String, fs::FileType>>>,
}

/// A path resolved the way the host will resolve it.
struct Resolved {
    /// Canonical directory that holds it.
    dir: PathBuf,
    /// Its name in that directory.
    name: String,
    /// Keys naming it: the entry itself and, if it is a link, what it leads to.
    keys: Vec<String>,
    /// Whether a directory of that name exists.
    is_dir: bool,
}

/// Why a path cannot be resolved.
enum Unresolved {
    /// It ends in `..`, `.` or a separator, or is not Unicode.
    NoFileName,
    /// Its directory does not exist.
    NoDirectory,
}

impl<'a> Planner<'a> {
    fn new(cwd: &'a Path) -> Self {
        Planner {
            cwd,
            style: PathStyle::host(),
            plan: Plan::default(),
            read_keys: HashMap::new(),
            canonical_dirs: HashMap::new(),
            paths_per_dir: HashMap::new(),
            listings: HashMap::new(),
        }
    }

    fn count_dirs<'p>(&mut self, paths: impl Iterator<Item = &'p String>) {
        for path in paths {
            if let Some(dir) = self.cwd.join(path).parent() {
                *self.paths_per_dir.entry(dir.to_path_buf()).or_default() += 1;
            }
        }
    }

    /// The type of the entry `dir`/`name` (whose key is `key`), as `lstat` reports it;
    /// `None` if there is none. `many` says whether enough paths lie in `dir` to list it.
    fn entry_type(
        &mut self,
        dir: &Path,
        name: &str,
        key: &str,
        many: bool,
    ) -> Option<fs::FileType> {
        // Only where names match byte for byte is a listing the whole truth: file systems
        // that ignore case may also match names that differ in Unicode normalisation.
        if many && self.style == PathStyle::Posix {
            if !self.listings.contains_key(dir) {
                let listing = self.list(dir);
                self.listings.insert(dir.to_path_buf(), listing);
            }
            if let Some(Some(listing)) = self.listings.get(dir) {
                return listing.get(key).copied();
            }
        }
        fs::symlink_metadata(dir.join(name))
            .ok()
            .map(|m| m.file_type())
    }

    fn list(&self, dir: &Path) -> Option<HashMap<String, fs::FileType>> {
        let mut listing = HashMap::new();
        for entry in fs::read_dir(dir).ok()? {
            let entry = entry.ok()?;
            let key = comparison_key(&entry.path().to_string_lossy(), self.style);
            // From the directory entry where the file system records it, else lstat.
            listing.insert(key, entry.file_type().ok()?);
        }
        Some(listing)
    }

    fn plan(mut self, args: &[String], writes: bool) -> Result<Plan, PlanError> {
        let Some((job_path, sources)) = args.split_last() else {
            return Ok(self.plan);
        };
        let job_file = if writes {
            read_job_file(&self.cwd.join(job_path))
        } else {
            None
        };
        self.count_dirs(args.iter());
        if let Some(job_file) = &job_file {
            self.count_dirs(job_file.common.inputs.iter());
            for job in &job_file.jobs {
                self.count_dirs(job.inputs.iter().chain(&job.outputs));
            }
        }
        self.readable(job_path, "the job file".to_owned());
        for arg in sources {
            self.readable(
                arg,
                "a file named on the distributor's command line".to_owned(),
            );
        }
        let Some(job_file) = job_file else {
            return Ok(self.plan);
        };
        for (i, path) in job_file.common.inputs.iter().enumerate() {
            self.note_read(path, format!("common.inputs[{i}]"));
        }
        for (j, job) in job_file.jobs.iter().enumerate() {
            for (i, path) in job.inputs.iter().enumerate() {
                self.note_read(path, format!("jobs[{j}].inputs[{i}]"));
            }
        }
        let mut output_keys: HashMap<String, String> = HashMap::new();
        for (j, job) in job_file.jobs.iter().enumerate() {
            for (i, output) in job.outputs.iter().enumerate() {
                let location = format!("jobs[{j}].outputs[{i}]");
                self.output(output, location, &mut output_keys)?;
            }
        }
        Ok(self.plan)
    }

    fn canonical_dir(&mut self, dir: &Path) -> Option<PathBuf> {
        if let Some(known) = self.canonical_dirs.get(dir) {
            return known.clone();
        }
        let canonical = fs::canonicalize(dir).ok().filter(|d| d.is_dir());
        self.canonical_dirs
            .insert(dir.to_path_buf(), canonical.clone());
        canonical
    }

    /// Resolves `path` against the working directory: its canonical directory (which
    /// must exist) and name. One `lstat` per path, or one listing per crowded
    /// directory; only a link needs more.
    fn resolve(&mut self, path: &str) -> Result<Resolved, Unresolved> {
        let joined = self.cwd.join(path);
        let name = joined
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !matches!(*n, "." | ".."))
            .ok_or(Unresolved::NoFileName)?
            .to_owned();
        let parent = joined.parent().ok_or(Unresolved::NoFileName)?;
        let many = self
            .paths_per_dir
            .get(parent)
            .is_some_and(|n| *n >= LIST_FROM);
        let dir = self.canonical_dir(parent).ok_or(Unresolved::NoDirectory)?;
        let entry = dir.join(&name);
        let mut keys = vec![comparison_key(&entry.to_string_lossy(), self.style)];
        let entry_type = self.entry_type(&dir, &name, &keys[0], many);
        if entry_type.is_some_and(|t| t.is_symlink()) {
            if let Ok(target) = fs::canonicalize(&entry) {
                keys.push(comparison_key(&target.to_string_lossy(), self.style));
            }
        }
        Ok(Resolved {
            dir,
            name,
            keys,
            is_dir: entry_type.is_some_and(|t| t.is_dir()),
        })
    }

    /// Keys for a path the run reads but the guest is not given (job inputs):
    /// resolved where possible, lexically otherwise.
    fn note_read(&mut self, path: &str, what: String) {
        let keys = match self.resolve(path) {
            Ok(resolved) => resolved.keys,
            Err(_) => vec![comparison_key(
                &self.cwd.join(path).to_string_lossy(),
                self.style,
            )],
        };
        for key in keys {
            self.read_keys.entry(key).or_insert_with(|| what.clone());
        }
    }

    /// Gives the guest read access to `path` if its directory exists. Arguments that
    /// are not paths (`--da1=10`) are mapped too; the guest never opens them.
    fn readable(&mut self, path: &str, what: String) {
        let Ok(resolved) = self.resolve(path) else {
            return;
        };
        let index = match self
            .plan
            .read_dirs
            .iter()
            .position(|(d, _)| *d == resolved.dir)
        {
            Some(index) => index,
            None => {
                let guest = format!("{GUEST_ROOT}/in{}", self.plan.read_dirs.len());
                self.plan.read_dirs.push((resolved.dir.clone(), guest));
                self.plan.read_dirs.len() - 1
            }
        };
        let guest_path = format!("{}/{}", self.plan.read_dirs[index].1, resolved.name);
        self.plan.guest_paths.insert(path.to_owned(), guest_path);
        for key in resolved.keys {
            self.read_keys.entry(key).or_insert_with(|| what.clone());
        }
    }

    fn output(
        &mut self,
        path: &str,
        location: String,
        output_keys: &mut HashMap<String, String>,
    ) -> Result<(), PlanError> {
        let unusable = |reason: &str| PlanError::UnusableOutput {
            location: location.clone(),
            output: path.to_owned(),
            reason: reason.to_owned(),
        };
        let resolved = match self.resolve(path) {
            Ok(resolved) => resolved,
            Err(Unresolved::NoDirectory) => return Err(unusable("its directory does not exist")),
            Err(Unresolved::NoFileName) => {
                return Err(unusable("it does not name a file in an existing directory"))
            }
        };
        if resolved.is_dir {
            return Err(unusable("a directory of that name exists"));
        }
        for key in &resolved.keys {
            if let Some(other) = self.read_keys.get(key) {
                return Err(PlanError::OutputIsRead {
                    output_location: location,
                    output: path.to_owned(),
                    other_location: other.clone(),
                });
            }
            if let Some(first) = output_keys.get(key) {
                return Err(PlanError::DuplicateOutput {
                    first_location: first.clone(),
                    second_location: location,
                    output: path.to_owned(),
                });
            }
        }
        for key in &resolved.keys {
            output_keys.insert(key.clone(), location.clone());
        }
        let dir = match self
            .plan
            .output_dirs
            .iter()
            .position(|d| d.host == resolved.dir)
        {
            Some(dir) => dir,
            None => {
                let guest = format!("{GUEST_ROOT}/out{}", self.plan.output_dirs.len());
                self.plan.output_dirs.push(OutputDir {
                    host: resolved.dir.clone(),
                    guest,
                });
                self.plan.output_dirs.len() - 1
            }
        };
        let guest_path = format!("{}/{}", self.plan.output_dirs[dir].guest, resolved.name);
        self.plan.guest_paths.insert(path.to_owned(), guest_path);
        self.plan.outputs.push(DeclaredOutput {
            location,
            dir,
            file_name: resolved.name,
        });
        Ok(())
    }
}

/// The planning that needs no file system: see tests/sandbox_*.rs for the rest.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_plan_nothing() {
        let plan = plan(&[], Path::new("/"), true).unwrap();
        assert!(plan.read_dirs.is_empty() && plan.outputs.is_empty());
    }

    #[test]
    fn errors_name_both_locations() {
        let error = PlanError::DuplicateOutput {
            first_location: "jobs[0].outputs[0]".into(),
            second_location: "jobs[2].outputs[0]".into(),
            output: "a.o".into(),
        };
        assert_eq!(
            error.to_string(),
            "jobs[2].outputs[0] \"a.o\" is the same file as jobs[0].outputs[0]; \
             two jobs cannot produce one output"
        );
    }
}
