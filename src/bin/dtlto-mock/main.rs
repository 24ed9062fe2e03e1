//! dtlto-mock: LLVM's DTLTO `mock.py` and `validate.py` as one wasm32-wasip1 command.
//! It sees the host only through WASI preopened directories (or dtlto-runner's sandbox).

mod cli;
mod failure;
mod faults;
mod files;
mod host_paths;
mod job_text;
mod mock;
mod sandbox_reach;
mod validate;

use cli::{Invocation, Mode};
use failure::Failure;
use files::Files;
use host_paths::HostPaths;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    // The name as messages show it: argv[0] is anyone's to choose.
    let program =
        dtlto_mock::message::shown(&cli::program_name(argv.first().and_then(|a| a.to_str())));
    match run(argv, &program) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !matches!(failure, Failure::Injected(_)) {
                dtlto_mock::stderr_line!("{program}: error: {failure}");
            }
            failure.exit_code()
        }
    }
}

fn run(argv: Vec<std::ffi::OsString>, program: &str) -> Result<(), Failure> {
    match cli::parse(argv)? {
        Invocation::Help => {
            println!("{}", cli::help(program));
            Ok(())
        }
        Invocation::Version => {
            println!("{program} {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Invocation::Run {
            mode,
            args,
            job_file,
        } => {
            let files = Files::new(HostPaths::from_env().map_err(Failure::Usage)?);
            match mode {
                Mode::Mock => mock::run(&files, program, &args, &job_file),
                Mode::Validate => validate::run(&files, &args, &job_file),
            }
        }
    }
}
