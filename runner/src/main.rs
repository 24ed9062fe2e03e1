//! dtlto-runner: the native launcher a linker calls as its DTLTO distributor.

use clap::{Arg, ArgAction, Command};
use dtlto_runner::sandboxed_run::{self, Program, Request};
use dtlto_runner::{example, interrupt, local};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const ABOUT: &str = "\
Runs dtlto-mock.wasm (LLVM's DTLTO mock.py and validate.py) in a sandbox that can
write only the outputs the job file declares. A linker calls it as a distributor:
  clang -fthinlto-distributor=dtlto-runner -Xthinlto-distributor=a.native.o ...
  ld.lld --thinlto-distributor=dtlto-runner --thinlto-distributor-arg=validate ...
Runner options are recognised only before the distributor's arguments; everything
from the first other argument on goes to the distributor verbatim.
With no arguments it runs a built-in example. The guest's own help:
  dtlto-runner mock --help";

fn command() -> Command {
    Command::new("dtlto-runner")
        .version(concat!(
            env!("CARGO_PKG_VERSION"),
            " (dtlto-mock.wasm sha256 ",
            env!("DTLTO_MOCK_WASM_SHA256"),
            ")"
        ))
        .about(ABOUT)
        .override_usage(
            "dtlto-runner [OPTIONS] [mock|validate] <ARG>... <JOB_FILE>\n       dtlto-runner [OPTIONS] local [--jobs N] [--hermetic] <JOB_FILE>\n       dtlto-runner [--example]",
        )
        .arg(
            Arg::new("module")
                .long("module")
                .value_name("FILE.wasm")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Run another wasip1 distributor in the same sandbox"),
        )
        .arg(
            Arg::new("verbose")
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Print the plan (preopens, path map, staged and committed files) on stderr"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .env("DTLTO_RUNNER_TIMEOUT")
                .value_parser(parse_seconds)
                .help("End the run after SECONDS, like a signal: nothing is committed, exit status 124"),
        )
        .arg(
            Arg::new("max-output-bytes")
                .long("max-output-bytes")
                .value_name("N")
                .env("DTLTO_RUNNER_MAX_OUTPUT_BYTES")
                .value_parser(clap::value_parser!(u64))
                .help("Fail the run, committing nothing, if the distributor stages more than N bytes"),
        )
        .arg(
            Arg::new("example")
                .long("example")
                .action(ArgAction::SetTrue)
                .help("Run the built-in example (also what no arguments do)"),
        )
        .arg(
            Arg::new("args")
                .value_name("ARG")
                .help("The distributor's arguments; the last is the job file")
                .num_args(1..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .action(ArgAction::Append),
        )
}

fn main() -> ExitCode {
    match run() {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(message) => {
            dtlto_mock::stderr_line!("dtlto-runner: error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<i32, String> {
    raise_open_file_limit();
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            return Ok(e.exit_code());
        }
    };
    let args: Vec<String> = matches
        .get_many::<String>("args")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    interrupt::install(matches.get_one::<Duration>("timeout").copied())?;
    // Local mode runs the compile jobs natively; the guest never runs in it.
    if let Some(local_args) = local::selected(&invoked_as(), &args) {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot read the working directory: {e}"))?;
        return local::run(local_args, matches.get_flag("verbose"), &cwd);
    }
    if args.is_empty() || matches.get_flag("example") {
        return example::run();
    }
    let program = match matches.get_one::<PathBuf>("module") {
        Some(path) => Program::File(path.clone()),
        None => Program::Embedded,
    };
    let program_name = match &program {
        Program::File(path) => path
            .file_name()
            .map_or("distributor".into(), |n| n.to_string_lossy().into_owned()),
        // Called as dtlto-validate (a copy or link of this binary), the guest validates,
        // by the same rule for argv[0] as the guest's.
        Program::Embedded if invoked_as() == "dtlto-validate" => "dtlto-validate".to_owned(),
        Program::Embedded => "dtlto-mock".to_owned(),
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    sandboxed_run::run(
        &Request {
            program,
            program_name,
            args,
            verbose: matches.get_flag("verbose"),
            max_output_bytes: matches.get_one::<u64>("max-output-bytes").copied(),
        },
        &cwd,
    )
}

/// Raises the soft limit on open files to the hard limit, as many tools do: a link
/// whose outputs lie in many directories needs a staging preopen for each.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return;
        }
        // macOS refuses more than OPEN_MAX for an unlimited hard limit.
        let wanted = if cfg!(target_vendor = "apple") {
            limit.rlim_max.min(10240)
        } else {
            limit.rlim_max
        };
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted;
            // SAFETY: `limit` is a valid rlimit; a refusal leaves the limit as it was.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        }
    }
}

/// A positive number of seconds, `1.5` allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a positive number of seconds"))
}

/// This program's name, as dtlto-mock reads its own argv[0].
fn invoked_as() -> String {
    let argv0 = std::env::args_os().next();
    dtlto_mock::mode::program_name(argv0.as_deref().and_then(|a| a.to_str()))
}
