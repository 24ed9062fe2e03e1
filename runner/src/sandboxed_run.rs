//! One sandboxed run: plan, stage, launch, then commit only after a clean exit.

use crate::launch::{self, GuestView, Outcome};
use crate::sandbox::plan::{plan, Plan};
use crate::sandbox::staging::Staging;
use dtlto_mock::mode::Mode;
use std::path::{Path, PathBuf};

/// The guest reads the host-path -> guest-path map from this variable.
pub const PATH_MAP_VARIABLE: &str = "DTLTO_SANDBOX_PATHS";

/// Which distributor to run.
pub enum Program {
    /// The embedded dtlto-mock.wasm.
    Embedded,
    /// Another wasip1 distributor (`--module FILE.wasm`).
    File(PathBuf),
}

pub struct Request {
    pub program: Program,
    /// The guest's argv[0] (selects dtlto-mock's mode by name).
    pub program_name: String,
    /// The distributor's arguments, the job file last.
    pub args: Vec<String>,
    /// Print the plan and the commit on stderr.
    pub verbose: bool,
}

/// Exit status for a run stopped by a signal (as shells report SIGINT).
pub const INTERRUPTED_STATUS: i32 = 130;

/// Runs the request with paths relative to `cwd`; returns the exit status to report.
/// Errors are the runner's own refusals, already worded for the user.
pub fn run(request: &Request, cwd: &Path) -> Result<i32, String> {
    // dtlto-mock's validate mode writes nothing: no job file to read, no outputs.
    let writes = match request.program {
        Program::Embedded => {
            dtlto_mock::mode::select(&request.program_name, &request.args).0 == Mode::Mock
        }
        Program::File(_) => true,
    };
    let plan = plan(&request.args, cwd, writes).map_err(|e| e.to_string())?;
    let staging = Staging::create(&plan).map_err(|e| e.to_string())?;
    let write_dirs: Vec<(PathBuf, String)> = plan
        .output_dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| (staging.dir(i).to_path_buf(), dir.guest.clone()))
        .collect();
    let mut env = Vec::new();
    if !plan.guest_paths.is_empty() {
        let map = serde_json::to_string(&plan.guest_paths).map_err(|e| e.to_string())?;
        env.push((PATH_MAP_VARIABLE.to_owned(), map));
    }
    if request.verbose {
        describe_plan(&plan, &write_dirs);
    }

    let (engine, module) = match &request.program {
        Program::Embedded => {
            let embedded = launch::embedded_module().map_err(|e| format!("{e:#}"))?;
            if let (true, Some(reason)) = (request.verbose, &embedded.copied_because) {
                eprintln!("dtlto-runner: the guest's code was copied, not used in place: {reason}");
            }
            (embedded.engine, embedded.module)
        }
        Program::File(path) => {
            let engine = launch::engine().map_err(|e| format!("{e:#}"))?;
            (engine, launch::module_from_file(engine, path)?)
        }
    };
    let mut argv = vec![request.program_name.clone()];
    argv.extend(request.args.iter().cloned());
    let view = GuestView {
        argv: &argv,
        env: &env,
        read_dirs: &plan.read_dirs,
        write_dirs: &write_dirs,
        needs_no_reactor: matches!(request.program, Program::Embedded),
    };
    let outcome = if launch::interrupted() {
        Outcome::Interrupted
    } else {
        launch::run(engine, &module, &view)?
    };

    match outcome {
        Outcome::Exited(0) if !launch::interrupted() => {
            let committed = staging.commit(&plan).map_err(|e| e.to_string())?;
            if request.verbose {
                for path in &committed {
                    eprintln!("dtlto-runner: committed {}", path.display());
                }
            }
            Ok(0)
        }
        Outcome::Exited(0) | Outcome::Interrupted => {
            eprintln!("dtlto-runner: interrupted; nothing was committed");
            Ok(INTERRUPTED_STATUS)
        }
        Outcome::Exited(status) => {
            if request.verbose {
                eprintln!(
                    "dtlto-runner: the distributor exited with {status}; nothing was committed"
                );
            }
            Ok(status)
        }
        Outcome::Trapped(trap) => Err(format!(
            "the distributor trapped, so nothing was committed: {trap}"
        )),
    }
}

fn describe_plan(plan: &Plan, write_dirs: &[(PathBuf, String)]) {
    for (host, guest) in &plan.read_dirs {
        eprintln!("dtlto-runner: read-only  {guest} = {}", host.display());
    }
    for ((staging, guest), dir) in write_dirs.iter().zip(&plan.output_dirs) {
        eprintln!(
            "dtlto-runner: writable   {guest} = {} (staging for {})",
            staging.display(),
            dir.host.display()
        );
    }
    for (host, guest) in &plan.guest_paths {
        eprintln!("dtlto-runner: map        {host} -> {guest}");
    }
    for output in &plan.outputs {
        eprintln!(
            "dtlto-runner: may write  {} = {}",
            output.location,
            plan.output_dirs[output.dir]
                .host
                .join(&output.file_name)
                .display()
        );
    }
}
