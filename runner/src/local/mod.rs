//! `local` mode: a drop-in for LLVM's `llvm/utils/dtlto/local.py`, which runs each
//! job's compile (`common.args + jobs[i].args`) for real, in order. The jobs run
//! natively (WASI preview 1 cannot start processes), each writing into the same
//! staging and committed by the same transaction as the guest's outputs, and, on
//! Linux, each confined by Landlock to its staging (and with `--hermetic` to reading
//! what it declares).

pub mod args;
mod children;
pub mod confine;
pub mod error;

use crate::error::{RunError, UsageError};
use crate::exit_status;
use crate::interrupt;
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::{plan, Reads};
use crate::transaction::{self, Commit, Ending, Transaction};
use dtlto_mock::job_file::{self, JobFile, MAX_JOB_FILE_BYTES};
use dtlto_mock::message::{file_kind, quoted, shown};
use error::{JobError, JobFileError, LocalError, LocalUsage, NoLandlock};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The mode's word.
pub const WORD: &str = "local";
/// The program name (a copy or link of the runner) that selects the mode.
pub const PROGRAM: &str = "dtlto-local";
/// Set to `off`, the jobs run unconfined, as where Landlock is missing.
pub const LANDLOCK_VARIABLE: &str = "DTLTO_RUNNER_LANDLOCK";

/// The mode's arguments (after the word `local`), if this command line selects it.
pub fn selected<'a>(program: &str, args: &'a [String]) -> Option<&'a [String]> {
    match args.first() {
        Some(word) if word == WORD => Some(&args[1..]),
        _ if program == PROGRAM => Some(args),
        _ => None,
    }
}

/// What a stop does to local mode's jobs (a stop hook, registered with the
/// interrupt module): every running one is ended with its process group, none
/// starts after, and every process a job started is killed and reaped (Linux) before
/// the hook returns, so that nothing of theirs can write into the staging the stop
/// then removes.
fn stop_jobs() {
    children::stop_all();
    children::end_all_descendants();
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    /// How many jobs at a time.
    pub jobs: usize,
    /// `--hermetic`: each job reads only what it declares.
    pub hermetic: bool,
    /// `--verbose`, before or after the word `local`.
    pub verbose: bool,
    /// The job file, as written (the last argument).
    pub job_file: String,
}

/// Reads local mode's arguments. As local.py reads only its last argument, other
/// words are ignored; an option that is not ours is refused, so that a misspelt
/// `--hermetic` cannot pass silently.
pub fn options(args: &[String], verbose: bool) -> Result<Options, LocalUsage> {
    let Some((job_file, rest)) = args.split_last() else {
        return Err(LocalUsage::NoJobFile);
    };
    // `local --hermetic` alone: the job file is missing, not named `--hermetic`.
    if job_file.starts_with('-') {
        return Err(LocalUsage::OptionForJobFile(job_file.clone()));
    }
    let mut options = Options {
        jobs: 1,
        hermetic: false,
        verbose,
        job_file: job_file.clone(),
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let jobs = match arg.as_str() {
            "--hermetic" => {
                options.hermetic = true;
                continue;
            }
            "--verbose" => {
                options.verbose = true;
                continue;
            }
            "--jobs" | "-j" => rest
                .next()
                .ok_or_else(|| LocalUsage::NoNumber(arg.clone()))?
                .as_str(),
            other => match other.strip_prefix("--jobs=").or(other.strip_prefix("-j")) {
                Some(value) => value,
                None if other.starts_with('-') => {
                    return Err(LocalUsage::UnknownOption(other.to_owned()))
                }
                // A word, such as the script local.py replaced: ignored, as local.py does.
                None => continue,
            },
        };
        let n: usize = jobs
            .parse()
            .map_err(|_| LocalUsage::NotANumber(jobs.to_owned()))?;
        options.jobs = if n == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            n
        };
    }
    Ok(options)
}

/// Runs local mode with `args` (after the word `local`); returns the exit status.
/// Once per process: the planner's memory is left to the process's end.
pub fn run(
    args: &[String],
    verbose: bool,
    cwd: &Path,
) -> Result<exit_status::ExitStatus, RunError> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        // A closed stdout loses the help, not the status.
        let _ = writeln!(std::io::stdout().lock(), "{}", error::LOCAL_HELP);
        return Ok(exit_status::ExitStatus::Success);
    }
    let options = options(args, verbose).map_err(UsageError::Local)?;
    let job_path = options.job_file.as_str();
    let job_file = read_job_file(&cwd.join(job_path), job_path).map_err(LocalError::from)?;

    // Confinement, decided before anything is created.
    // DTLTO_RUNNER_LANDLOCK=off runs as where Landlock is missing: to compare, or
    // should confinement stand in a build's way.
    let switched_off = std::env::var_os(LANDLOCK_VARIABLE).is_some_and(|v| v == "off");
    let landlock = if switched_off {
        None
    } else {
        confine::abi_version()
    };
    // Where it can, each confined job also gets a mount namespace in which all but
    // its staging is read-only: Landlock has no rights for metadata.
    let sealed = landlock.is_some() && confine::sealing_works();
    if options.hermetic && landlock.is_none() {
        let why = if switched_off {
            NoLandlock::SwitchedOff {
                variable: LANDLOCK_VARIABLE,
            }
        } else if cfg!(target_os = "linux") {
            NoLandlock::Kernel
        } else {
            NoLandlock::System
        };
        return Err(LocalError::NoLandlock(why).into());
    }
    if let Some(why) = landlock
        .filter(|_| options.hermetic)
        .and_then(|abi| confine::Promises::of(abi, sealed).hermetic_refusal())
    {
        return Err(LocalError::HermeticNotHeld(why).into());
    }
    if switched_off {
        // Said whether or not --verbose: the user may have forgotten it is set.
        dtlto_mock::stderr_line!(
            "dtlto-runner: warning: {LANDLOCK_VARIABLE}=off: local mode's jobs run NOT \
             confined; a job could write or read anywhere its user can"
        );
    }

    // Every output must be an argument the runner can point at staging.
    for (i, job) in job_file.jobs.iter().enumerate() {
        let mut command = full_args(&job_file, i);
        for (k, output) in job.outputs.iter().enumerate() {
            if args::point_output(&mut command, output, output) == 0 {
                return Err(LocalError::OutputNotAnArgument {
                    job_file: job_path.to_owned(),
                    job: i,
                    output: k,
                    path: output.clone(),
                }
                .into());
            }
        }
    }

    // What every job may read under --hermetic besides its inputs, checked before
    // anything is created.
    let hermetic_reads = if options.hermetic {
        Some(hermetic_reads(&job_file, cwd).map_err(LocalError::HermeticNotHeld)?)
    } else {
        None
    };

    // The same planning and transaction as the guest's: the outputs and their
    // directories, and the checks (no output is an input or another's output).
    let plan = plan(
        std::slice::from_ref(&options.job_file),
        cwd,
        Reads::JobFileOnly,
        true,
    )
    .map_err(|error| RunError::Plan {
        job_file: job_path.to_owned(),
        error,
    })?;
    let declared: usize = job_file.jobs.iter().map(|j| j.outputs.len()).sum();
    if plan.outputs.len() != declared {
        return Err(LocalError::Changed(job_path.to_owned()).into());
    }
    children::become_reaper().map_err(LocalError::Reaper)?;
    interrupt::on_stop(stop_jobs);
    let begun = transaction::reclaim_and_begin(&plan, options.verbose)
        .map_err(|error| RunError::transaction(job_path, error))?;
    if let Some(stopped) = begun {
        return Ok(stopped);
    }
    let staging_outs: Vec<PathBuf> = interrupt::with_held(|t: &mut Transaction| {
        (0..plan.output_dirs.len())
            .map(|i| t.guest_dir(i))
            .collect()
    })
    .unwrap_or_default();
    if staging_outs.len() != plan.output_dirs.len() {
        // A stop took the transaction as soon as it was made, and ends the process.
        interrupt::settle::<Transaction>();
        return Ok(exit_status::ExitStatus::Failure);
    }
    if options.verbose {
        let head = format!(
            "dtlto-runner: local: {} job(s), {} at a time",
            job_file.jobs.len(),
            options.jobs
        );
        match landlock {
            Some(abi) => {
                let promises = confine::Promises::of(abi, sealed);
                dtlto_mock::stderr_line!(
                    "{head}, confined by Landlock (ABI {abi}): each creates, writes, renames \
                     and removes files only in its staging; {}",
                    if options.hermetic {
                        "it reads only what it declares (--hermetic)"
                    } else {
                        "reads are not restricted (see --hermetic)"
                    }
                );
                let held = promises.held();
                if !held.is_empty() {
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: local: on this kernel a job also cannot: {}",
                        held.join("; ")
                    );
                }
                dtlto_mock::stderr_line!(
                    "dtlto-runner: local: on this kernel a job still CAN: {}",
                    promises.gaps().join("; ")
                );
            }
            None => dtlto_mock::stderr_line!(
                "{head}, NOT confined ({}): writes to the outputs still go through staging, \
                 but a job could write or read anywhere its user can",
                if switched_off {
                    format!("{LANDLOCK_VARIABLE}=off")
                } else {
                    "no Landlock on this system".to_owned()
                }
            ),
        }
    }

    // Each job's command, outputs pointed at staging, and what it may touch.
    let mut prepared = Vec::with_capacity(job_file.jobs.len());
    let mut outputs = plan.outputs.iter();
    for (i, job) in job_file.jobs.iter().enumerate() {
        let mut command = full_args(&job_file, i);
        let mut writable = Vec::new();
        let mut native_object = None;
        for output in &job.outputs {
            // One planned output per declared output, as counted above.
            let Some(planned) = outputs.next() else {
                let cleanup = Ending::settle(Commit::NotTried).cleanup;
                let error = RunError::from(LocalError::Changed(job_path.to_owned()));
                return Err(error.with_cleanup(cleanup));
            };
            let out = &staging_outs[planned.dir];
            let staged = out.join(&planned.file_name);
            args::point_output(&mut command, output, &args::for_job(&staged));
            native_object.get_or_insert(staged);
            if !writable.contains(out) {
                writable.push(out.clone());
            }
        }
        // Its TMPDIR: beside the `out/` of its first output's staging, apart from
        // the outputs the commit checks.
        let tmp = native_object
            .as_ref()
            .and_then(|staged: &PathBuf| staged.parent()?.parent())
            .map_or_else(PathBuf::new, |root| root.join("tmp").join(i.to_string()));
        writable.push(tmp.clone());
        // A compile asked for its temporaries (`-save-temps`, as LLVM's own tests
        // ask with --thinlto-remote-compiler-arg) writes them in the working
        // directory, named after its input, where local.py lets them land: that job
        // may write there too. Its declared outputs still go through staging.
        if args::asks_for_temporaries_in_cwd(&command) {
            writable.push(cwd.to_path_buf());
            if options.verbose {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: jobs[{i}] asks for -save-temps: it may also write in the \
                     working directory {}",
                    quoted(&cwd.to_string_lossy())
                );
            }
        }
        let readable = hermetic_reads.as_ref().map(|reads| {
            let mut readable: Vec<PathBuf> = job_file
                .common
                .inputs
                .iter()
                .chain(&job.inputs)
                .map(|p| cwd.join(p))
                .collect();
            readable.extend(reads.iter().cloned());
            readable
        });
        prepared.push(Prepared {
            index: i,
            command,
            tmp,
            native_object: native_object.unwrap_or_default(),
            rules: confine::Rules {
                writable,
                readable,
                seal: sealed,
                cwd: cwd.to_path_buf(),
            },
        });
    }

    let mut relays = Vec::new();
    let outcome = run_jobs(
        &options,
        &prepared,
        landlock.is_some(),
        &job_file,
        cwd,
        &mut relays,
    );
    // Nothing a job started may write into the staging once the commit or the
    // cleanup begins, whatever the outcome.
    children::end_all_descendants();
    // Their pipes are closed now: what they held is relayed to its end.
    for relay in relays {
        let _ = relay.join();
    }
    let commit = match (&outcome, interrupt::stopped()) {
        (Ok(()), None) => transaction::commit_held(&plan, &input_ids(&job_file, job_path, cwd)),
        _ => Commit::NotTried,
    };
    let ending = Ending::settle(commit);
    if let Some(status) = ending.report_stop(job_path) {
        return Ok(status);
    }
    let Ending { commit, cleanup } = ending;
    let failed = match (outcome, commit) {
        (Err(failure), _) => Some(LocalError::Job(failure)),
        (Ok(()), Commit::Failed(error)) => Some(LocalError::Commit(Box::new(error))),
        (Ok(()), Commit::Done(committed)) => {
            if options.verbose {
                for &output in &committed {
                    let path = plan.output_path(output);
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: committed {}",
                        shown(&path.to_string_lossy())
                    );
                }
            }
            None
        }
        (Ok(()), Commit::NotTried) => Some(LocalError::NoTransaction),
    };
    match (failed, cleanup) {
        (None, Ok(())) => Ok(exit_status::ExitStatus::Success),
        (None, Err(failures)) => Err(RunError::CommittedNotRemoved(failures)),
        (Some(error), cleanup) => Err(RunError::from(error).with_cleanup(cleanup)),
    }
}

/// What a job may read besides its inputs and its compiler, with `--hermetic`: the
/// dynamic loader, its configuration and the system's shared libraries, and the
/// devices a compiler opens. (`/proc/self` is granted by the child itself, see
/// confine.rs.)
const SYSTEM_READS: &[&str] = &[
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/dev/null",
    "/dev/urandom",
];

/// What every job may read under `--hermetic` besides its declared inputs: its
/// compiler's installation, the system's libraries and loader files
/// (`SYSTEM_READS`) and the directories of `LD_LIBRARY_PATH`. `Err` says why
/// `--hermetic` cannot keep its promise: a grant that would hold the job's own
/// files (the working directory, its inputs' and outputs' directories) or the whole
/// of `/`, or a job that asks for its temporaries in the working directory.
fn hermetic_reads(job_file: &JobFile, cwd: &Path) -> Result<Vec<PathBuf>, String> {
    for i in 0..job_file.jobs.len() {
        if args::asks_for_temporaries_in_cwd(&full_args(job_file, i)) {
            return Err(format!(
                "jobs[{i}] asks for -save-temps, whose temporaries land in the working \
                 directory {}; Landlock cannot let a job read only the files it created \
                 itself, so writing there would let it read everything there, declared or \
                 not (run it without --hermetic, or without -save-temps)",
                quoted(&cwd.to_string_lossy())
            ));
        }
    }
    let own = own_dirs(job_file, cwd);
    let program = &job_file.common.args[0];
    let mut reads: Vec<(PathBuf, String)> = Vec::new();
    if let Some(tree) = compiler_tree(program, cwd) {
        reads.push((
            tree.clone(),
            format!(
                "the compiler {}'s installation {}",
                quoted(program),
                quoted(&tree.to_string_lossy())
            ),
        ));
    }
    for path in SYSTEM_READS {
        reads.push((
            PathBuf::from(path),
            format!("the system's {}", quoted(path)),
        ));
    }
    // The loader reads the compiler's libraries from there too.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&paths).filter(|p| p.is_absolute()) {
            let words = format!("LD_LIBRARY_PATH's {}", quoted(&dir.to_string_lossy()));
            reads.push((dir, words));
        }
    }
    let mut granted = Vec::with_capacity(reads.len());
    for (path, words) in reads {
        // What the grant really is: Landlock follows links when it opens the path.
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if real.parent().is_none() {
            return Err(format!(
                "{words} is the root directory: granting it would let every job read \
                 everything"
            ));
        }
        if let Some(held) = own.iter().find(|dir| dir.starts_with(&real)) {
            return Err(format!(
                "{words} holds {}, where the jobs' own files are (the working directory, \
                 their inputs' and outputs' directories): granting it would let a job read \
                 undeclared files there",
                quoted(&held.to_string_lossy())
            ));
        }
        granted.push(path);
    }
    Ok(granted)
}

/// The directories of the jobs' own files: the working directory and the
/// directories of every input and output, canonical where they exist.
fn own_dirs(job_file: &JobFile, cwd: &Path) -> Vec<PathBuf> {
    let files = job_file.common.inputs.iter().chain(
        job_file
            .jobs
            .iter()
            .flat_map(|job| job.inputs.iter().chain(&job.outputs)),
    );
    let mut dirs = vec![cwd.to_path_buf()];
    for file in files {
        if let Some(dir) = cwd.join(file).parent() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs.into_iter()
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
        .collect()
}

/// The compiler's installation: `program` found as the system finds it (on PATH if
/// it has no separator), then its real file (links resolved, so that a link in
/// `~/bin` does not stand for `~`): the tree above the real file's `bin` directory
/// (where clang's resource directory and libraries are), or its own directory
/// otherwise.
fn compiler_tree(program: &str, cwd: &Path) -> Option<PathBuf> {
    let found = if program.contains(std::path::MAIN_SEPARATOR) || program.contains('/') {
        Some(cwd.join(program))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| cwd.join(dir).join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    let real = std::fs::canonicalize(found?).ok()?;
    let dir = real.parent()?;
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(root)) if name == "bin" => Some(root.to_path_buf()),
        _ => Some(dir.to_path_buf()),
    }
}

/// The identities of what the jobs read (their declared inputs and the job file),
/// where another name of one could pass the planner's comparison of names: Windows,
/// whose short names (`INLONG~1.O`) are a second name of the same entry, so that the
/// commit refuses an output that would replace an input. Elsewhere a second name is
/// a hard link, whose replacement leaves the input itself untouched.
fn input_ids(job_file: &JobFile, job_path: &str, cwd: &Path) -> HashSet<FileId> {
    if !cfg!(windows) {
        return HashSet::new();
    }
    let inputs = job_file.jobs.iter().flat_map(|job| job.inputs.iter());
    job_file
        .common
        .inputs
        .iter()
        .chain(inputs)
        .map(String::as_str)
        .chain([job_path])
        .filter_map(|path| file_id::of_path_followed(&cwd.join(path)).ok())
        .collect()
}

fn full_args(job_file: &JobFile, i: usize) -> Vec<String> {
    let mut command = job_file.common.args.clone();
    command.extend(job_file.jobs[i].args.iter().cloned());
    command
}

/// Reads and checks the job file (the rules validate.py enforces).
fn read_job_file(path: &Path, shown_as: &str) -> Result<JobFile, JobFileError> {
    let shown_as = shown_as.to_owned();
    // Without waiting for a writer, should it be a FIFO; then refused unless regular.
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.custom_flags(libc::O_NONBLOCK);
    }
    let file = match open.open(path) {
        Ok(file) => file,
        Err(error) => return Err(JobFileError::Open { shown_as, error }),
    };
    match file.metadata() {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) => {
            return Err(JobFileError::NotRegular {
                shown_as,
                kind: file_kind(&meta.file_type()),
            })
        }
        Err(error) => return Err(JobFileError::Read { shown_as, error }),
    }
    let mut text = String::new();
    if let Err(error) = file.take(MAX_JOB_FILE_BYTES + 1).read_to_string(&mut text) {
        return Err(JobFileError::Read { shown_as, error });
    }
    if text.len() as u64 > MAX_JOB_FILE_BYTES {
        return Err(JobFileError::TooBig {
            shown_as,
            limit: MAX_JOB_FILE_BYTES,
        });
    }
    let doc = match dtlto_mock::json::parse(&text) {
        Ok(doc) => doc,
        Err(error) => return Err(JobFileError::NotJson { shown_as, error }),
    };
    job_file::read(&doc).map_err(|violations| JobFileError::Invalid {
        shown_as,
        violations,
    })
}

/// A job ready to start.
struct Prepared {
    index: usize,
    /// `common.args + jobs[i].args`, outputs pointed at staging.
    command: Vec<String>,
    /// Its TMPDIR, inside staging.
    tmp: PathBuf,
    /// Where its native object (`outputs[0]`) is staged.
    native_object: PathBuf,
    rules: confine::Rules,
}

struct Running {
    index: usize,
    child: Child,
    relays: Vec<JoinHandle<()>>,
}

/// Runs the jobs, `options.jobs` at a time, in order; the first failure (or a
/// stop) ends the others and starts no more. `Err` says which job failed and why.
/// The relays of ended jobs whose pipes are still open (something the job started
/// holds them) are left in `relays`, to be joined once that has been ended too.
fn run_jobs(
    options: &Options,
    jobs: &[Prepared],
    landlock: bool,
    job_file: &JobFile,
    cwd: &Path,
    relays: &mut Vec<JoinHandle<()>>,
) -> Result<(), JobError> {
    let (ended_tx, ended_rx) = mpsc::channel::<usize>();
    let mut next = 0;
    let mut running: Vec<Running> = Vec::new();
    let mut failure: Option<JobError> = None;
    let stopping = || interrupt::stopped().is_some() || children::stopped();
    loop {
        while failure.is_none() && !stopping() && running.len() < options.jobs && next < jobs.len()
        {
            match start(&jobs[next], options, landlock, cwd, &ended_tx) {
                Ok(Some(started)) => running.push(started),
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
            next += 1;
        }
        if running.is_empty() {
            break;
        }
        // A child that ends wakes this thread at once (Unix); the timeout is for
        // stops, and for systems without the waiter threads.
        let _ = ended_rx.recv_timeout(Duration::from_millis(20));
        let mut still = Vec::with_capacity(running.len());
        for mut job in running {
            match children::try_wait(&mut job.child) {
                Ok(None) => still.push(job),
                Ok(Some(status)) => {
                    relays.extend(job.relays);
                    relays.retain(|relay| !relay.is_finished());
                    if failure.is_some() || stopping() {
                        continue;
                    }
                    // Messages show the job's command as the job file has it (the
                    // staging it wrote into is gone when they are read).
                    let command = full_args(job_file, job.index);
                    if !status.success() {
                        failure = Some(JobError::Failed(describe_failure(
                            job_file,
                            job.index,
                            &command,
                            status,
                            options.hermetic,
                        )));
                    } else if options.hermetic && is_empty(&jobs[job.index].native_object) {
                        failure = Some(JobError::Failed(empty_under_hermetic(
                            job_file, job.index, &command,
                        )));
                    }
                }
                Err(error) => {
                    if failure.is_none() {
                        failure = Some(JobError::Wait {
                            job: job.index,
                            error,
                        });
                    }
                    children::end(&mut job.child);
                    still.push(job);
                }
            }
        }
        running = still;
        if failure.is_some() || stopping() {
            for job in &mut running {
                children::end(&mut job.child);
            }
        }
    }
    match failure {
        Some(message) => Err(message),
        None => Ok(()),
    }
}

fn start(
    job: &Prepared,
    options: &Options,
    landlock: bool,
    cwd: &Path,
    ended: &mpsc::Sender<usize>,
) -> Result<Option<Running>, JobError> {
    let i = job.index;
    std::fs::create_dir_all(&job.tmp).map_err(|error| JobError::Tmpdir {
        job: i,
        dir: job.tmp.clone(),
        error,
    })?;
    let mut command = Command::new(&job.command[0]);
    command.args(&job.command[1..]).current_dir(cwd);
    let tmp = args::for_job(&job.tmp);
    command.env("TMPDIR", &tmp);
    if cfg!(windows) {
        command.env("TMP", &tmp).env("TEMP", &tmp);
    }
    let confinement = if landlock {
        Some(confine::prepare(&job.rules).map_err(|error| JobError::Confine { job: i, error })?)
    } else {
        None
    };
    if let Some(confinement) = &confinement {
        confinement.apply_to(&mut command);
    }
    // One at a time, the job has the terminal as local.py gives it; several at once,
    // its lines are relayed whole, so that no two jobs' lines mix.
    let relay = options.jobs > 1;
    if relay {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    if options.verbose {
        dtlto_mock::stderr_line!(
            "dtlto-runner: jobs[{i}]: {}",
            args::shell_words(&job.command)
        );
    }
    let mut child = match children::spawn(&mut command) {
        Ok(Some(child)) => child,
        Ok(None) => return Ok(None),
        Err(error) => {
            return Err(JobError::Start {
                job: i,
                error,
                command: args::shell_words(&job.command),
            })
        }
    };
    let mut relays = Vec::new();
    if let Some(out) = child.stdout.take() {
        relays.push(relay_lines(out, false));
    }
    if let Some(err) = child.stderr.take() {
        relays.push(relay_lines(err, true));
    }
    #[cfg(unix)]
    {
        let pid = child.id();
        let ended = ended.clone();
        std::thread::spawn(move || {
            children::wait_for_end(pid);
            let _ = ended.send(i);
        });
    }
    #[cfg(not(unix))]
    let _ = ended;
    Ok(Some(Running {
        index: i,
        child,
        relays,
    }))
}

/// The longest line relayed whole: a longer one is passed on in pieces of this
/// size, which another job's lines may come between. With the read buffer, a relay
/// holds at most `RELAY_LINE + RELAY_READ` bytes.
pub const RELAY_LINE: usize = 64 * 1024;
const RELAY_READ: usize = 8 * 1024;

/// Copies a job's output to ours whole lines at a time (see `RELAY_LINE`).
fn relay_lines(from: impl Read + Send + 'static, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = from;
        let mut held: Vec<u8> = Vec::with_capacity(RELAY_LINE + RELAY_READ);
        let mut read = vec![0u8; RELAY_READ];
        // A closed stdout or stderr loses the lines, never the job.
        let pass_on = |bytes: &[u8]| {
            let _ = if to_stderr {
                std::io::stderr().lock().write_all(bytes)
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            };
        };
        loop {
            let n = match from.read(&mut read) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            held.extend_from_slice(&read[..n]);
            if let Some(last) = held.iter().rposition(|&b| b == b'\n') {
                pass_on(&held[..=last]);
                held.drain(..=last);
            }
            if held.len() >= RELAY_LINE {
                pass_on(&held);
                held.clear();
            }
        }
        if !held.is_empty() {
            pass_on(&held);
        }
    })
}

/// Whether a file is missing or empty.
fn is_empty(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.len() == 0)
}

/// clang's ThinLTO backend reports a module it cannot import (`Error loading
/// imported file`) on stderr, writes an empty object and exits 0: under
/// `--hermetic`, that is what an undeclared read looks like.
fn empty_under_hermetic(job_file: &JobFile, index: usize, command: &[String]) -> String {
    format!(
        "jobs[{index}] read outside what it declares: under --hermetic it exited 0 but left \
         its native object {} empty, as clang's ThinLTO backend does when it cannot read a \
         module it imports (see its message above); declare every file it reads in \
         common.inputs or jobs[{index}].inputs, or run without --hermetic to compare: {}",
        quoted(job_file.jobs[index].native_object()),
        args::shell_words(command)
    )
}

fn describe_failure(
    job_file: &JobFile,
    index: usize,
    command: &[String],
    status: ExitStatus,
    hermetic: bool,
) -> String {
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                format!("signal {}", status.signal().unwrap_or(0))
            }
            #[cfg(not(unix))]
            {
                "no exit status".to_owned()
            }
        }
    };
    let mut message = format!(
        "jobs[{index}] (for {}) failed with {how}: {}",
        quoted(job_file.jobs[index].native_object()),
        args::shell_words(command)
    );
    if hermetic {
        message.push_str(&format!(
            "\n  jobs[{index}] ran under --hermetic: if it says a file could not be read \
             (permission denied), it read outside what it declares (common.inputs, \
             jobs[{index}].inputs); run without --hermetic to compare"
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn the_word_or_the_name_selects_local_mode() {
        let args = strings(&["local", "--jobs", "2", "j.json"]);
        assert_eq!(selected("dtlto-runner", &args), Some(&args[1..]));
        let args = strings(&["j.json"]);
        assert_eq!(selected("dtlto-local", &args), Some(&args[..]));
        assert_eq!(selected("dtlto-runner", &args), None);
    }

    #[test]
    fn options_are_read_and_other_words_ignored() {
        let parsed = options(
            &strings(&["local.py", "--jobs=3", "--hermetic", "j.json"]),
            false,
        )
        .unwrap();
        assert_eq!(
            parsed,
            Options {
                jobs: 3,
                hermetic: true,
                verbose: false,
                job_file: "j.json".into()
            }
        );
        assert_eq!(
            options(&strings(&["-j", "2", "j.json"]), false)
                .unwrap()
                .jobs,
            2
        );
        assert!(
            options(&strings(&["--jobs", "0", "j.json"]), false)
                .unwrap()
                .jobs
                >= 1
        );
        assert!(options(&strings(&["--hermtic", "j.json"]), false)
            .unwrap_err()
            .to_string()
            .contains("unknown option \"--hermtic\""));
        assert!(options(&[], false).is_err());
    }
}
