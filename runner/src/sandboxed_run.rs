//! One sandboxed run: plan, stage, launch, then commit only after a clean exit.

use crate::error::{self, RunError};
use crate::exit_status::ExitStatus;
use crate::guest::guest_limits::DEFAULT_LIMITS;
use crate::guest::launch::{self, Ended, GuestView, LaunchError, Outcome};
use crate::guest::wasi_guard::Checks;
use crate::interrupt;
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::{plan, Plan, Reads};
use crate::transaction::{self, Begun, Commit, Ending};
use dtlto_mock::host_protocol::{HOST_COMMITS_VARIABLE, PATH_MAP_VARIABLE};
use dtlto_mock::message::shown;
use dtlto_mock::mode::Mode;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Which distributor to run.
pub enum Program {
    /// The embedded dtlto-mock.wasm.
    Embedded,
    /// Another wasip1 distributor (`--module FILE.wasm`).
    File(PathBuf),
}

/// One run of a distributor, as the command line asks for it.
pub struct Request {
    /// The distributor.
    pub program: Program,
    /// The guest's argv[0] (selects dtlto-mock's mode by name).
    pub program_name: String,
    /// The distributor's arguments, the job file last.
    pub args: Vec<String>,
    /// Print the plan and the commit on stderr.
    pub verbose: bool,
    /// `--max-output-bytes`: the most the guest may stage, in all.
    pub max_output_bytes: Option<u64>,
    /// `--max-entries`: the most files, directories and links the guest may create.
    pub max_entries: Option<u64>,
    /// `--read DIR`: directories the guest may read whole, as written.
    pub read_trees: Vec<String>,
}

/// Runs the request with paths relative to `cwd`; returns the exit status to report.
/// Errors are the runner's own refusals and failures. Once per process: the plan's
/// memory is left to the process's end.
pub fn run(request: &Request, cwd: &Path) -> Result<ExitStatus, RunError> {
    let (reads, writes, mode_words) = match request.program {
        Program::Embedded => match dtlto_mock::mode::select(&request.program_name, &request.args) {
            (Mode::Mock, skip) => (Reads::MockSources { skip }, true, skip),
            // Validate mode writes nothing, and reads only the job file.
            (Mode::Validate, skip) => (Reads::JobFileOnly, false, skip),
        },
        Program::File(_) => (Reads::AnyExistingArgument, true, 0),
    };
    let job_file = request.args.last().map_or("", String::as_str);
    // `mock --help`, `validate --version`, or a mode word alone: the guest answers
    // (help, version, or a usage error) without a job file, so none is planned.
    let bare = matches!(request.program, Program::Embedded)
        && needs_no_job_file(&request.args[mode_words..]);
    let mut plan = if bare {
        Plan::default()
    } else {
        plan(&request.args, cwd, reads, writes).map_err(|error| RunError::Plan {
            job_file: job_file.to_owned(),
            error,
        })?
    };
    for dir in &request.read_trees {
        plan.read_tree(dir, cwd)?;
    }

    let transaction = match transaction::reclaim_and_begin(&plan, request.verbose)
        .map_err(|error| RunError::transaction(job_file, error))?
    {
        Begun::Held(transaction) => transaction,
        Begun::Stopped(status) => return Ok(status),
    };
    let write_dirs: Vec<(PathBuf, String)> = transaction
        .staged_outputs_dirs()
        .unwrap_or_default()
        .into_iter()
        .zip(&plan.output_dirs)
        .map(|(staged, dir)| (staged, dir.guest.clone()))
        .collect();
    if request.verbose {
        describe_plan(&plan, &write_dirs);
    }

    let ended = launch_guest(request, &plan, &write_dirs);
    let clean_exit = matches!(
        &ended,
        Ok(Ended {
            outcome: Outcome::Exited(0),
            ..
        })
    );
    let commit = if clean_exit && interrupt::stopped().is_none() {
        transaction.commit(&plan, &input_ids(&plan, cwd))
    } else {
        Commit::NotTried
    };
    let status = finish(request, job_file, &plan, ended, transaction.settle(commit));
    // A run is its process's last work (main.rs and the example make one each), and
    // the process's end frees everything at once: freed here key by key, the path
    // map of a link of 10,000 jobs costs 2% of its run.
    std::mem::forget(plan);
    status
}

/// Says how the run ended and picks the exit status.
fn finish(
    request: &Request,
    job_file: &str,
    plan: &Plan,
    ended: Result<Ended, RunError>,
    ending: Ending,
) -> Result<ExitStatus, RunError> {
    if let Some(status) = ending.report_stop(job_file) {
        return Ok(status);
    }
    let Ending { commit, cleanup } = ending;
    let ended = ended?;
    if request.verbose {
        for refused in &ended.refused_paths {
            dtlto_mock::stderr_line!("dtlto-runner: refused the guest path {refused}");
        }
    }
    let status = match (ended.outcome, commit) {
        (_, Commit::Failed(error)) => {
            return Err(RunError::transaction(job_file, error).with_cleanup(cleanup));
        }
        (Outcome::Exited(0), Commit::Done(committed)) => {
            if request.verbose {
                for &output in &committed {
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: committed {}",
                        shown(&plan.output_path(output).to_string_lossy())
                    );
                }
            }
            ExitStatus::Success
        }
        (Outcome::Exited(status), _) => {
            if let Some(limit) = &ended.limit {
                dtlto_mock::stderr_line!("dtlto-runner: {limit}");
            }
            if request.verbose || ended.limit.is_some() {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: the distributor exited with {status}; nothing was committed"
                );
            }
            ExitStatus::of_distributor(status)
        }
        (Outcome::Trapped(trap), _) => {
            let error = match ended.limit {
                Some(limit) => RunError::Limit(limit),
                None => RunError::Trapped(trap),
            };
            return Err(error.with_cleanup(cleanup));
        }
        // A stop always leaves through the branch above.
        (Outcome::Stopped, _) => ExitStatus::Failure,
    };
    if let Err(failures) = cleanup {
        if status == ExitStatus::Success {
            return Err(RunError::CommittedNotRemoved(failures));
        }
        // The distributor's own failure keeps its status.
        dtlto_mock::stderr_line!(
            "dtlto-runner: error: the staging could not be removed: {}",
            error::reasons(&failures)
        );
    }
    Ok(status)
}

/// The identities of the files the run reads, where another name of one could pass
/// the planner's comparison of names: Windows, whose short names (`INLONG~1.O`)
/// are a second name of the same entry. Elsewhere replacing a second name (a hard
/// link) leaves the input itself untouched, and the commit checks nothing.
fn input_ids(plan: &Plan, cwd: &Path) -> HashSet<FileId> {
    if !cfg!(windows) {
        return HashSet::new();
    }
    let is_output = |guest: &str| {
        plan.output_dirs.iter().any(|dir| {
            guest
                .strip_prefix(dir.guest.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    plan.guest_paths
        .iter()
        .filter(|(_, guest)| !is_output(guest))
        .filter_map(|(path, _)| file_id::of_path_followed(&cwd.join(path)).ok())
        .collect()
}

/// Loads the distributor and runs it in the plan's view.
fn launch_guest(
    request: &Request,
    plan: &Plan,
    write_dirs: &[(PathBuf, String)],
) -> Result<Ended, RunError> {
    // The guest's environment: the path map, and that this host commits for it.
    let mut env = vec![(HOST_COMMITS_VARIABLE.to_owned(), "1".to_owned())];
    if !plan.guest_paths.is_empty() {
        let map = serde_json::to_string(&plan.guest_paths).map_err(RunError::PathMap)?;
        env.push((PATH_MAP_VARIABLE.to_owned(), map));
    }
    let (engine, module) = match &request.program {
        Program::Embedded => {
            let embedded = launch::embedded_module().map_err(LaunchError::Engine)?;
            if let (true, Some(reason)) = (request.verbose, &embedded.copied_because) {
                dtlto_mock::stderr_line!(
                    "dtlto-runner: the guest's code was copied, not used in place: {reason}"
                );
            }
            (embedded.engine, embedded.module)
        }
        Program::File(path) => {
            let engine = launch::engine().map_err(LaunchError::Engine)?;
            (engine, launch::module_from_file(engine, path)?)
        }
    };
    let mut argv = vec![request.program_name.clone()];
    argv.extend(request.args.iter().cloned());
    let view = GuestView {
        argv: &argv,
        env: &env,
        read_dirs: &plan.read_dirs,
        granted: &plan.granted,
        write_dirs,
        needs_no_reactor: matches!(request.program, Program::Embedded),
        limits: DEFAULT_LIMITS,
        checks: Checks {
            max_output_bytes: request.max_output_bytes,
            max_entries: request.max_entries,
            windows_paths: cfg!(windows),
        },
    };
    Ok(launch::run(engine, &module, &view)?)
}

/// Whether the embedded guest's arguments after its mode word ask for no job file:
/// none at all (a usage error), or `--help` or `--version` alone.
fn needs_no_job_file(args: &[String]) -> bool {
    matches!(
        args,
        [] | [_] if args.first().is_none_or(|a| matches!(a.as_str(), "--help" | "-h" | "--version" | "-V"))
    )
}

fn describe_plan(plan: &Plan, write_dirs: &[(PathBuf, String)]) {
    let path = |path: &Path| shown(&path.to_string_lossy());
    for (i, (host, guest)) in plan.read_dirs.iter().enumerate() {
        let reach = match plan.granted.get(i) {
            Some(None) => " (the whole tree, --read)",
            _ => "",
        };
        dtlto_mock::stderr_line!("dtlto-runner: read-only  {guest} = {}{reach}", path(host));
    }
    for ((staging, guest), dir) in write_dirs.iter().zip(&plan.output_dirs) {
        dtlto_mock::stderr_line!(
            "dtlto-runner: writable   {guest} = {} (staging for {})",
            path(staging),
            path(&dir.host)
        );
    }
    for (host, guest) in &plan.guest_paths {
        dtlto_mock::stderr_line!(
            "dtlto-runner: map        {} -> {}",
            shown(host),
            shown(guest)
        );
    }
    for output in &plan.outputs {
        dtlto_mock::stderr_line!(
            "dtlto-runner: may write  {} = {}",
            output.location,
            path(&plan.output_dirs[output.dir].host.join(&output.file_name))
        );
    }
}
