//! Planning a sandboxed run before anything runs: which host directories the guest
//! may read, where each declared output is staged, and how every path the guest will
//! be given maps into its view. Inputs that cannot be read as they must (a missing
//! source, a FIFO as the job file), outputs that cannot be written as files, and
//! conflicts (an output that is also an input, the job file, a source, or another
//! job's output) stop the run here.

use super::paths::comparison_key;
use super::read_job::read_job_file;
use super::resolve::{Resolver, Target, Unresolved};
use super::{free_beside, FastMap};
use dtlto_mock::job_file::{self, JobFile, MAX_JOB_FILE_BYTES};
use dtlto_mock::message::{file_kind, io_error, quoted};
use dtlto_mock::mode::mock_sources;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What the guest may touch, decided by the runner.
#[derive(Debug, Default)]
pub struct Plan {
    /// Directories preopened read-only: (host directory, guest name).
    pub read_dirs: Vec<(PathBuf, String)>,
    /// For each of `read_dirs`, the names in it the guest may reach (the files the run
    /// declares), or `None` for a whole tree that `--read` grants.
    pub granted: Vec<Option<BTreeSet<String>>>,
    /// Directories that receive outputs; each gets a private staging directory.
    pub output_dirs: Vec<OutputDir>,
    /// Every declared output, in job order.
    pub outputs: Vec<DeclaredOutput>,
    /// Host path, exactly as written on the command line or in the job file -> the
    /// path that names it in the guest's view.
    pub guest_paths: BTreeMap<String, String>,
}

impl Plan {
    /// The host path of `outputs[index]`.
    pub fn output_path(&self, index: usize) -> PathBuf {
        let output = &self.outputs[index];
        self.output_dirs[output.dir].host.join(&output.file_name)
    }

    /// `--read DIR`: the whole tree of `dir` (relative to `cwd`), read-only, which the
    /// guest finds under `dir` as written.
    pub fn read_tree(&mut self, dir: &str, cwd: &Path) -> Result<(), ReadTreeError> {
        let host = fs::canonicalize(cwd.join(dir))
            .and_then(|host| match fs::metadata(&host)?.is_dir() {
                true => Ok(host),
                false => Err(io::Error::other("it is not a directory")),
            })
            .map_err(|error| ReadTreeError {
                dir: dir.to_owned(),
                error,
            })?;
        let guest = format!("{GUEST_ROOT}/in{}", self.read_dirs.len());
        self.read_dirs.push((host, guest.clone()));
        self.granted.push(None);
        self.guest_paths.insert(dir.to_owned(), guest);
        Ok(())
    }
}

/// A `--read DIR` that is not a directory the runner can read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read --read {}: {}", quoted(.dir), io_error(.error))]
pub struct ReadTreeError {
    /// As written on the command line.
    pub dir: String,
    pub error: io::Error,
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

/// What the distributor reads, which decides what must exist and what is preopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// dtlto-mock's mock mode: the job file, and a source per job after the first
    /// `skip` arguments (its mode word); `--fault=` options are not files.
    MockSources { skip: usize },
    /// dtlto-mock's validate mode: the job file; its other arguments are only printed.
    JobFileOnly,
    /// Another distributor: the job file, and any argument that names something.
    AnyExistingArgument,
}

/// Why the runner refuses to run. The caller names the job file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The job file or a source cannot be read as a regular file.
    #[error("cannot open {what} {}: {reason}", quoted(.path))]
    UnreadableInput {
        what: String,
        path: String,
        reason: String,
    },
    /// An output names the same file as something the run reads.
    #[error(
        "{output_location} {} is also {other_location}; \
         a distributor must not overwrite what the link reads",
        quoted(.output)
    )]
    OutputIsRead {
        output_location: String,
        output: String,
        other_location: String,
    },
    /// Two outputs name the same file.
    #[error(
        "{second_location} {} is the same file as {first_location}; \
         two jobs cannot produce one output",
        quoted(.output)
    )]
    DuplicateOutput {
        first_location: String,
        second_location: String,
        output: String,
    },
    /// An output's directory does not exist, or the output names no file.
    #[error("cannot stage {location} {}: {reason}", quoted(.output))]
    UnusableOutput {
        location: String,
        output: String,
        reason: String,
    },
}

/// The root under which the guest sees everything the runner gives it.
const GUEST_ROOT: &str = "/dtlto";

/// Where the planner gets the job file's jobs from.
#[derive(Clone, Copy)]
pub enum Jobs<'a> {
    /// The guest reads the job file: the planner reads it too, as the guest will
    /// (`read_job.rs`); one it cannot read plans no outputs, and the guest says why.
    ReadAsTheGuest,
    /// dtlto-mock's validate mode: the job file is not read and no output is
    /// planned; the guest gets read access only.
    NoOutputs,
    /// A native mode read and checked the job file once already.
    Read(&'a JobFile),
}

/// Plans a run of a distributor with `args` (the job file last), paths relative to
/// `cwd`, with the outputs of `jobs`.
pub fn plan(args: &[String], cwd: &Path, reads: Reads, jobs: Jobs) -> Result<Plan, PlanError> {
    Planner::new(cwd).plan(args, reads, jobs)
}

/// What a read path is, for the message of an output that overwrites it: formatted
/// only for that message, not for each of the many inputs of a large link.
#[derive(Debug, Clone)]
enum ReadLocation {
    /// The job file or an argument, in words.
    Described(String),
    /// The source of `jobs[i]` in mock mode: "source {i + 1} (for jobs[{i}])".
    Source(usize),
    /// `common.inputs[i]`
    CommonInput(usize),
    /// `jobs[j].inputs[i]`
    JobInput(usize, usize),
}

impl fmt::Display for ReadLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadLocation::Described(what) => f.write_str(what),
            ReadLocation::Source(i) => write!(f, "source {} (for jobs[{i}])", i + 1),
            ReadLocation::CommonInput(i) => write!(f, "common.inputs[{i}]"),
            ReadLocation::JobInput(j, i) => write!(f, "jobs[{j}].inputs[{i}]"),
        }
    }
}

/// Plans one run: the read grants and outputs of the job file's paths, each
/// resolved as the host will (`resolve.rs`).
pub(super) struct Planner<'a> {
    resolver: Resolver<'a>,
    plan: Plan,
    /// Comparison key -> JSON location or argument description, for conflict checks.
    read_keys: FastMap<String, ReadLocation>,
}

impl<'a> Planner<'a> {
    fn new(cwd: &'a Path) -> Self {
        Planner {
            resolver: Resolver::new(cwd),
            plan: Plan::default(),
            read_keys: FastMap::default(),
        }
    }

    fn plan(mut self, args: &[String], reads: Reads, jobs: Jobs) -> Result<Plan, PlanError> {
        let Some((job_path, rest)) = args.split_last() else {
            return Ok(self.plan);
        };
        self.resolver.count_dirs(args.iter());
        let job_file_location = ReadLocation::Described("the job file".to_owned());
        let job = self.required_input(job_path, &job_file_location)?;
        let job_target = self.resolver.dirs[job.dir].path.join(&job.name);
        if let Ok(meta) = fs::metadata(&job_target) {
            if meta.len() > MAX_JOB_FILE_BYTES {
                return Err(PlanError::UnreadableInput {
                    what: "the job file".to_owned(),
                    path: job_path.clone(),
                    reason: format!(
                        "it holds {} bytes; a job file may hold at most {MAX_JOB_FILE_BYTES} (1 GiB)",
                        meta.len()
                    ),
                });
            }
        }
        let read;
        let job_file = match jobs {
            Jobs::ReadAsTheGuest => {
                read = read_job_file(&job_target);
                read.as_ref()
            }
            Jobs::NoOutputs => None,
            Jobs::Read(job_file) => Some(job_file),
        };
        if let Some(job_file) = job_file {
            self.resolver.count_dirs(job_file.common.inputs.iter());
            let mut inputs = job_file.common.inputs.len();
            for job in &job_file.jobs {
                self.resolver
                    .count_dirs(job.inputs.iter().chain(&job.outputs));
                inputs += job.inputs.len();
            }
            // Sized once: growing a map of tens of thousands of keys rehashes them all.
            self.read_keys.reserve(inputs + rest.len() + 1);
        }
        self.readable(job_path, job);
        match reads {
            Reads::JobFileOnly => {}
            Reads::MockSources { skip } => {
                let jobs = job_file.map(|f| f.jobs.len());
                for (i, source) in mock_sources(rest.get(skip..).unwrap_or_default()).enumerate() {
                    // Sources beyond the jobs are ignored, as mock.py ignores them.
                    if jobs.is_some_and(|jobs| i >= jobs) {
                        break;
                    }
                    // With an invalid job file the guest reports that first, as mock.py
                    // would; its sources are made readable but not required.
                    let what = ReadLocation::Source(i);
                    let target = match jobs {
                        Some(_) => Some(self.required_input(source, &what)?),
                        None => self.input(source, &what, false)?,
                    };
                    if let Some(target) = target {
                        self.readable(source, target);
                    }
                }
            }
            Reads::AnyExistingArgument => {
                for arg in rest {
                    let what = ReadLocation::Described(
                        "a file named on the distributor's command line".to_owned(),
                    );
                    if let Some(target) = self.input(arg, &what, false)? {
                        self.readable(arg, target);
                    }
                }
            }
        }
        let Some(job_file) = job_file else {
            return Ok(self.plan);
        };
        for (i, path) in job_file.common.inputs.iter().enumerate() {
            self.note_read(path, ReadLocation::CommonInput(i));
        }
        for (j, job) in job_file.jobs.iter().enumerate() {
            for (i, path) in job.inputs.iter().enumerate() {
                self.note_read(path, ReadLocation::JobInput(j, i));
            }
        }
        let outputs = job_file.jobs.iter().map(|job| job.outputs.len()).sum();
        let mut output_keys: FastMap<String, String> =
            FastMap::with_capacity_and_hasher(outputs, Default::default());
        for (j, job) in job_file.jobs.iter().enumerate() {
            for (i, output) in job.outputs.iter().enumerate() {
                let location = format!("jobs[{j}].outputs[{i}]");
                self.output(output, location, &mut output_keys)?;
            }
        }
        let plan = std::mem::take(&mut self.plan);
        // Freed key by key, the planner's maps cost 1.5% of a link of 10,000 jobs:
        // they are freed beside the run instead.
        let entries = self.read_keys.len() + output_keys.len();
        free_beside(
            (self.resolver.into_learnt(), self.read_keys, output_keys),
            entries,
        );
        Ok(plan)
    }

    /// Resolves a path the guest will read, links followed as the OS follows them.
    /// With `required`, it must be a regular file, or the run is refused with `what`
    /// it is; otherwise a path that leads nowhere is `None`.
    fn input(
        &mut self,
        path: &str,
        what: &ReadLocation,
        required: bool,
    ) -> Result<Option<Target>, PlanError> {
        let refuse = |reason: String| PlanError::UnreadableInput {
            what: what.to_string(),
            path: path.to_owned(),
            reason,
        };
        let missing = || refuse("no such file or directory".to_owned());
        let resolved = match self.resolver.resolve(path) {
            Ok(resolved) => resolved,
            Err(Unresolved::NoDirectory(why)) if required && !why.missing => {
                return Err(refuse(why.reason))
            }
            Err(_) if required => return Err(missing()),
            Err(_) => return Ok(None),
        };
        let target = match resolved.entry_type {
            None if required => {
                let entry = self.resolver.dirs[resolved.dir].path.join(&resolved.name);
                return Err(match self.resolver.unreachable_entries.get(&entry) {
                    Some(why) => refuse(why.reason.clone()),
                    None => missing(),
                });
            }
            None => return Ok(None),
            Some(t) if t.is_symlink() => {
                let link = self.resolver.dirs[resolved.dir].path.join(&resolved.name);
                let followed = fs::canonicalize(&link).and_then(|target| {
                    let file_type = fs::metadata(&target)?.file_type();
                    Ok((target, file_type))
                });
                match followed {
                    Ok((target, file_type)) => Target {
                        dir: self.resolver.intern(
                            target
                                .parent()
                                .map_or_else(|| target.clone(), Path::to_path_buf),
                        ),
                        name: target
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        file_type,
                        via_link: true,
                    },
                    Err(e) if required => {
                        return Err(refuse(format!(
                            "it is a symbolic link that leads nowhere ({})",
                            io_error(&e)
                        )))
                    }
                    Err(_) => return Ok(None),
                }
            }
            Some(file_type) => Target {
                dir: resolved.dir,
                name: resolved.name,
                file_type,
                via_link: false,
            },
        };
        if required && !target.file_type.is_file() {
            let kind = file_kind(&target.file_type);
            return Err(refuse(if target.via_link {
                let shown = self.resolver.dirs[target.dir].path.join(&target.name);
                format!(
                    "it is a symbolic link to {}, which is {kind}, not a regular file",
                    quoted(&shown.to_string_lossy())
                )
            } else {
                format!("it is {kind}, not a regular file")
            }));
        }
        for key in resolved.keys {
            self.read_keys.entry(key).or_insert_with(|| what.clone());
        }
        Ok(Some(target))
    }

    /// An input that must be a regular file.
    fn required_input(&mut self, path: &str, what: &ReadLocation) -> Result<Target, PlanError> {
        self.input(path, what, true)?
            .ok_or_else(|| PlanError::UnreadableInput {
                what: what.to_string(),
                path: path.to_owned(),
                reason: "no such file or directory".to_owned(),
            })
    }

    /// A job's input (`common.inputs`, `jobs[i].inputs`): what a real distributor
    /// ships, so the guest may read it if it is a regular file (links followed). Its
    /// keys count as read, resolved where possible, lexically otherwise.
    fn note_read(&mut self, path: &str, what: ReadLocation) {
        let resolved = match self.resolver.resolve(path) {
            Ok(resolved) => resolved,
            Err(_) => {
                let key = comparison_key(
                    &self.resolver.cwd.join(path).to_string_lossy(),
                    self.resolver.style,
                );
                self.read_keys.entry(key).or_insert(what);
                return;
            }
        };
        let target = match resolved.entry_type {
            Some(t) if t.is_file() => Some(Target {
                dir: resolved.dir,
                name: resolved.name,
                file_type: t,
                via_link: false,
            }),
            Some(t) if t.is_symlink() => {
                let link = self.resolver.dirs[resolved.dir].path.join(&resolved.name);
                fs::canonicalize(&link).ok().and_then(|target| {
                    let file_type = fs::metadata(&target).ok()?.file_type();
                    Some(Target {
                        dir: self.resolver.intern(target.parent()?.to_path_buf()),
                        name: target.file_name()?.to_str()?.to_owned(),
                        file_type,
                        via_link: true,
                    })
                })
            }
            _ => None,
        };
        for key in resolved.keys {
            self.read_keys.entry(key).or_insert_with(|| what.clone());
        }
        if let Some(target) = target {
            if !self.plan.guest_paths.contains_key(path) {
                self.readable(path, target);
            }
        }
    }

    /// Gives the guest read access to `target`, under the name `path`, if it is a
    /// regular file: its directory is preopened read-only (a link's target's
    /// directory, for a link), and in it the guest may reach that name only. A
    /// directory is never granted for a file's sake, nor for its own.
    fn readable(&mut self, path: &str, target: Target) {
        if !target.file_type.is_file() {
            return;
        }
        let facts = &mut self.resolver.dirs[target.dir];
        let index = match facts.read_dir {
            Some(index) => index,
            None => {
                let guest = format!("{GUEST_ROOT}/in{}", self.plan.read_dirs.len());
                self.plan.read_dirs.push((facts.path.clone(), guest));
                self.plan.granted.push(Some(BTreeSet::new()));
                *facts.read_dir.insert(self.plan.read_dirs.len() - 1)
            }
        };
        let guest_path = format!("{}/{}", self.plan.read_dirs[index].1, target.name);
        if let Some(names) = &mut self.plan.granted[index] {
            names.insert(target.name);
        }
        self.plan.guest_paths.insert(path.to_owned(), guest_path);
    }

    fn output(
        &mut self,
        path: &str,
        location: String,
        output_keys: &mut FastMap<String, String>,
    ) -> Result<(), PlanError> {
        let unusable = |reason: &str| PlanError::UnusableOutput {
            location: location.clone(),
            output: path.to_owned(),
            reason: reason.to_owned(),
        };
        let style = self.resolver.style;
        if let Some(problem) = job_file::output_path_problem(path, |c| style.is_separator(c)) {
            return Err(unusable(problem));
        }
        let resolved = match self.resolver.resolve(path) {
            Ok(resolved) => resolved,
            Err(Unresolved::NoDirectory(why)) if why.missing => {
                return Err(unusable("its directory does not exist"))
            }
            Err(Unresolved::NoDirectory(why)) => {
                return Err(unusable(&format!(
                    "its directory cannot be reached: {}",
                    why.reason
                )))
            }
            Err(Unresolved::NoFileName) => {
                return Err(unusable("it does not name a file in an existing directory"))
            }
        };
        for key in &resolved.keys {
            if let Some(other) = self.read_keys.get(key) {
                return Err(PlanError::OutputIsRead {
                    output_location: location,
                    output: path.to_owned(),
                    other_location: other.to_string(),
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
        match resolved.entry_type {
            Some(t) if t.is_dir() => return Err(unusable("a directory of that name exists")),
            Some(t) if t.is_symlink() => {
                return Err(unusable(
                    "a symbolic link of that name exists; outputs replace only regular files",
                ))
            }
            Some(t) if !t.is_file() => {
                return Err(unusable(&format!(
                    "{} of that name exists; outputs replace only regular files",
                    file_kind(&t)
                )))
            }
            _ => {}
        }
        for key in &resolved.keys {
            output_keys.insert(key.clone(), location.clone());
        }
        let facts = &mut self.resolver.dirs[resolved.dir];
        let dir = match facts.output_dir {
            Some(dir) => dir,
            None => {
                let guest = format!("{GUEST_ROOT}/out{}", self.plan.output_dirs.len());
                self.plan.output_dirs.push(OutputDir {
                    host: facts.path.clone(),
                    guest,
                });
                *facts.output_dir.insert(self.plan.output_dirs.len() - 1)
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

/// The planning that needs no file system: tests/sandbox.rs has the rest.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_arguments_plan_nothing() {
        let plan = plan(
            &[],
            Path::new("/"),
            Reads::JobFileOnly,
            Jobs::ReadAsTheGuest,
        )
        .unwrap();
        assert!(plan.read_dirs.is_empty() && plan.outputs.is_empty());
    }

    #[test]
    fn errors_name_both_locations_and_escape_paths() {
        let error = PlanError::DuplicateOutput {
            first_location: "jobs[0].outputs[0]".into(),
            second_location: "jobs[2].outputs[0]".into(),
            output: "a\n.o".into(),
        };
        assert_eq!(
            error.to_string(),
            "jobs[2].outputs[0] \"a\\n.o\" is the same file as jobs[0].outputs[0]; \
             two jobs cannot produce one output"
        );
    }
}
