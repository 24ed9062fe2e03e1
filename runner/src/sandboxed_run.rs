//! mock and validate mode: the wasm guest (dtlto-mock.wasm, or `--module`) run in a
//! sandbox whose only writable directories are the run's staging, as an executor of
//! the run's driver (drive.rs), which commits only after the guest exits cleanly.

use crate::drive::{self, Executed, Executor, Run, Staging};
use crate::error::RunError;
use crate::exit_status::ExitStatus;
use crate::guest::guest_limits::DEFAULT_LIMITS;
use crate::guest::launch::{self, Ended, GuestView, LaunchError, Outcome};
use crate::guest::wasi_guard::Checks;
use crate::sandbox::file_id::{self, FileId};
use crate::sandbox::plan::{plan, Jobs, Plan, Reads};
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

/// Runs the request with paths relative to `cwd` through the run's driver;
/// returns the exit status to report. Errors are the runner's own refusals and
/// failures.
pub fn run(request: &Request, cwd: &Path) -> Result<ExitStatus, RunError> {
    let job_file = request.args.last().map_or("", String::as_str);
    drive::drive(
        &mut GuestRun { request },
        &Run {
            job_file,
            verbose: request.verbose,
            cwd,
        },
    )
}

/// The guest's executor: the guest plans nothing of its own, and writes its
/// outputs through its writable preopens, which are the staging.
struct GuestRun<'a> {
    request: &'a Request,
}

impl Executor for GuestRun<'_> {
    fn plan(&mut self, cwd: &Path) -> Result<Plan, RunError> {
        let request = self.request;
        let (reads, jobs, mode_words) = match request.program {
            Program::Embedded => {
                match dtlto_mock::mode::select(&request.program_name, &request.args) {
                    (Mode::Mock, skip) => (Reads::MockSources { skip }, Jobs::ReadAsTheGuest, skip),
                    // Validate mode writes nothing, and reads only the job file.
                    (Mode::Validate, skip) => (Reads::JobFileOnly, Jobs::NoOutputs, skip),
                }
            }
            Program::File(_) => (Reads::AnyExistingArgument, Jobs::ReadAsTheGuest, 0),
        };
        // `mock --help`, `validate --version`, or a mode word alone: the guest answers
        // (help, version, or a usage error) without a job file, so none is planned.
        let bare = matches!(request.program, Program::Embedded)
            && needs_no_job_file(&request.args[mode_words..]);
        let mut plan = if bare {
            Plan::default()
        } else {
            plan(&request.args, cwd, reads, jobs).map_err(|error| RunError::Plan {
                job_file: request.args.last().cloned().unwrap_or_default(),
                error,
            })?
        };
        for dir in &request.read_trees {
            plan.read_tree(dir, cwd)?;
        }
        Ok(plan)
    }

    fn execute(&mut self, staging: &Staging) -> Executed {
        let request = self.request;
        let plan = staging.plan;
        let write_dirs: Vec<(PathBuf, String)> = staging
            .outputs_dirs
            .iter()
            .cloned()
            .zip(plan.output_dirs.iter().map(|dir| dir.guest.clone()))
            .collect();
        if request.verbose {
            describe_plan(plan, &write_dirs);
        }
        let ended = match launch_guest(request, plan, &write_dirs) {
            Ok(ended) => ended,
            Err(error) => return Executed::Failed(error),
        };
        if request.verbose {
            for refused in &ended.refused_paths {
                dtlto_mock::stderr_line!("dtlto-runner: refused the guest path {refused}");
            }
        }
        match ended.outcome {
            Outcome::Exited(0) => Executed::Done,
            Outcome::Exited(status) => {
                if let Some(limit) = &ended.limit {
                    dtlto_mock::stderr_line!("dtlto-runner: {limit}");
                }
                if request.verbose || ended.limit.is_some() {
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: the distributor exited with {status}; nothing was committed"
                    );
                }
                Executed::Status(ExitStatus::of_distributor(status))
            }
            Outcome::Trapped(trap) => Executed::Failed(match ended.limit {
                Some(limit) => RunError::Limit(limit),
                None => RunError::Trapped(trap),
            }),
            // The driver reports the stop.
            Outcome::Stopped => Executed::Status(ExitStatus::Failure),
        }
    }

    fn inputs(&self, plan: &Plan, cwd: &Path) -> HashSet<FileId> {
        input_ids(plan, cwd)
    }
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
