//! dtlto-runner: the native launcher a linker calls as its DTLTO distributor.

use clap::{Arg, ArgAction, Command};
use dtlto_runner::error::{LimitError, RunError, UsageError};
use dtlto_runner::exit_status::ExitStatus;
use dtlto_runner::sandboxed_run::{self, Program, Request};
use dtlto_runner::{example, interrupt, local, remote};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT_VARIABLE: &str = "DTLTO_RUNNER_TIMEOUT";
const MAX_OUTPUT_BYTES_VARIABLE: &str = "DTLTO_RUNNER_MAX_OUTPUT_BYTES";
const MAX_ENTRIES_VARIABLE: &str = "DTLTO_RUNNER_MAX_ENTRIES";
/// Entries a distributor may create unless told otherwise: far more than the outputs
/// of any link, far fewer than would exhaust a file system's inodes.
const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

const ABOUT: &str = "\
Runs dtlto-mock.wasm (LLVM's DTLTO mock.py and validate.py) in a sandbox that can
write only the outputs the job file declares. A linker calls it as a distributor:
  clang -fthinlto-distributor=dtlto-runner -Xthinlto-distributor=a.native.o ...
  ld.lld --thinlto-distributor=dtlto-runner --thinlto-distributor-arg=validate ...
Runner options are recognised only before the distributor's arguments; everything
from the first other argument on goes to the distributor verbatim.
Its other modes run the jobs' compiles for real: `local` on this machine, `remote`
on any REAPI v2 service (dtlto-runner local --help, dtlto-runner remote --help).
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
            "dtlto-runner [OPTIONS] [mock|validate] <ARG>... <JOB_FILE>\n       dtlto-runner [OPTIONS] local [--jobs N] [--hermetic] <JOB_FILE>\n       dtlto-runner [OPTIONS] remote --endpoint URL [REMOTE OPTIONS] <JOB_FILE>\n       dtlto-runner [--example]",
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
            Arg::new("read")
                .long("read")
                .value_name("DIR")
                .action(ArgAction::Append)
                .help("Let the distributor read the whole tree of DIR (by default it may read only \
                       the job file, the sources, the jobs' inputs and, for --module, arguments \
                       that are regular files)"),
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .value_parser(parse_seconds)
                .help(format!("End the run after SECONDS, like a signal: nothing is committed, \
                       exit status 124 [env: {TIMEOUT_VARIABLE}]")),
        )
        .arg(
            Arg::new("max-output-bytes")
                .long("max-output-bytes")
                .value_name("N")
                .value_parser(parse_count)
                .help(format!("Fail the run, committing nothing, if the distributor's staged files \
                       grow by more than N bytes [env: {MAX_OUTPUT_BYTES_VARIABLE}]")),
        )
        .arg(
            Arg::new("max-entries")
                .long("max-entries")
                .value_name("N")
                .value_parser(parse_count)
                .help(format!("Fail the run, committing nothing, if the distributor creates more \
                       than N files, directories and links [default: {DEFAULT_MAX_ENTRIES}] \
                       [env: {MAX_ENTRIES_VARIABLE}]")),
        )
        .arg(
            Arg::new("guest-wasm")
                .long("guest-wasm")
                .value_name("FILE")
                .value_parser(clap::value_parser!(PathBuf))
                .help("Write the embedded dtlto-mock.wasm to FILE (for `wasmtime run` by hand), print its sha256, and exit"),
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
        Ok(status) => status.into(),
        Err(error) => {
            dtlto_mock::stderr_line!("dtlto-runner: error: {error}");
            error.exit_status().into()
        }
    }
}

fn run() -> Result<ExitStatus, RunError> {
    raise_open_file_limit();
    let matches = match command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return Ok(clap_answered(&e)),
    };
    let args: Vec<String> = matches
        .get_many::<String>("args")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    // Each stands alone: distributor arguments beside it would be silently dropped.
    for alone in ["guest-wasm", "example"] {
        if matches.value_source(alone) == Some(clap::parser::ValueSource::CommandLine)
            && !args.is_empty()
        {
            return Err(UsageError::StandsAlone {
                option: format!("--{alone}"),
                first: args[0].clone(),
            }
            .into());
        }
    }
    if let Some(path) = matches.get_one::<PathBuf>("guest-wasm") {
        return write_guest(path);
    }
    // A limit from the command line wins over its variable; an empty variable is unset.
    let (timeout, max_output_bytes, max_entries) = match (
        limit(&matches, "timeout", TIMEOUT_VARIABLE, parse_seconds),
        limit(
            &matches,
            "max-output-bytes",
            MAX_OUTPUT_BYTES_VARIABLE,
            parse_count,
        ),
        limit(&matches, "max-entries", MAX_ENTRIES_VARIABLE, parse_count),
    ) {
        (Ok(timeout), Ok(bytes), Ok(entries)) => (timeout, bytes, entries),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Err(e.into()),
    };
    // One table of exit statuses (exit_status.rs), for the stops that end the
    // process on the signal thread too.
    let status_of = |stop| i32::from(ExitStatus::from(stop).code());
    interrupt::install(timeout, status_of).map_err(RunError::Signals)?;
    // The native modes: local runs the compile jobs here, remote sends them to a
    // REAPI service; the guest runs in neither, so its options are refused.
    let program = invoked_as();
    let native = [
        (local::selected(&program, &args), local::WORD, local::USAGE),
        (
            remote::selected(&program, &args),
            remote::WORD,
            remote::USAGE,
        ),
    ];
    if let Some((Some(mode_args), mode, usage)) = native.into_iter().find(|(a, ..)| a.is_some()) {
        if let Some(what) = guest_option_given(&matches) {
            return Err(UsageError::NotForMode { what, mode, usage }.into());
        }
        let verbose = matches.get_flag("verbose");
        let cwd = || std::env::current_dir().map_err(RunError::WorkingDirectory);
        if mode == local::WORD {
            return match local::parse(mode_args, verbose) {
                Ok(options) => local::run(&options, &cwd()?),
                Err(e) => Ok(clap_answered(&e)),
            };
        }
        return match remote::parse(mode_args, verbose) {
            Ok(options) => remote::run(&options, &cwd()?),
            Err(remote::OptionsError::Usage(e)) => Ok(clap_answered(&e)),
            Err(e) => Err(UsageError::ModeOption {
                message: e.to_string(),
                usage: remote::USAGE,
            }
            .into()),
        };
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
    let cwd = std::env::current_dir().map_err(RunError::WorkingDirectory)?;
    sandboxed_run::run(
        &Request {
            program,
            program_name,
            args,
            verbose: matches.get_flag("verbose"),
            max_output_bytes,
            max_entries: Some(max_entries.unwrap_or(DEFAULT_MAX_ENTRIES)),
            read_trees: matches
                .get_many::<String>("read")
                .map(|dirs| dirs.cloned().collect())
                .unwrap_or_default(),
        },
        &cwd,
    )
}

/// Prints what clap answered (help, a version, or a usage error), and gives its
/// status: 0 after --help or --version, 2 for a usage error.
fn clap_answered(e: &clap::Error) -> ExitStatus {
    let _ = e.print();
    match e.exit_code() {
        0 => ExitStatus::Success,
        _ => ExitStatus::Usage,
    }
}

/// The first runner option, or variable, given for the guest alone, which a native
/// mode would otherwise ignore.
fn guest_option_given(matches: &clap::ArgMatches) -> Option<String> {
    let given = |id: &str| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    for option in [
        "module",
        "read",
        "max-output-bytes",
        "max-entries",
        "example",
    ] {
        if given(option) {
            return Some(format!("--{option}"));
        }
    }
    [MAX_OUTPUT_BYTES_VARIABLE, MAX_ENTRIES_VARIABLE]
        .into_iter()
        .find(|variable| std::env::var_os(variable).is_some_and(|v| !v.is_empty()))
        .map(|variable| format!("the environment variable {variable}"))
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

/// The value of the option `id`, or else of the environment variable `variable`
/// (unset or empty: none); an error names where the value came from.
fn limit<T: Clone + Send + Sync + 'static>(
    matches: &clap::ArgMatches,
    id: &'static str,
    variable: &'static str,
    parse: fn(&str) -> Result<T, LimitError>,
) -> Result<Option<T>, UsageError> {
    if let Some(value) = matches.get_one::<T>(id) {
        return Ok(Some(value.clone()));
    }
    match std::env::var_os(variable) {
        None => Ok(None),
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => {
            let text = value.to_string_lossy();
            parse(&text)
                .map(Some)
                .map_err(|reason| UsageError::Variable {
                    value: text.into_owned(),
                    variable,
                    option: id,
                    reason,
                })
        }
    }
}

/// Writes the exact guest this runner embeds, the artifact `wasmtime run` takes.
fn write_guest(path: &std::path::Path) -> Result<ExitStatus, RunError> {
    std::fs::write(path, dtlto_runner::guest_module::WASM).map_err(|error| {
        RunError::WriteGuest {
            path: path.to_owned(),
            error,
        }
    })?;
    println!(
        "{}  {}",
        dtlto_runner::guest_module::WASM_SHA256,
        path.display()
    );
    Ok(ExitStatus::Success)
}

/// A number of seconds more than 0, `1.5` and `1e3` allowed. More than a Duration
/// holds (about 585 billion years), `inf` included, waits as long as a Duration can.
fn parse_seconds(text: &str) -> Result<Duration, LimitError> {
    let seconds: f64 = text.trim().parse().map_err(|_| LimitError::NotSeconds)?;
    if seconds.is_nan() {
        return Err(LimitError::NotSeconds);
    }
    if seconds <= 0.0 {
        return Err(LimitError::NotPositive);
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .unwrap_or(Duration::MAX)
        .max(Duration::from_nanos(1)))
}

/// A whole number from 0 to 18446744073709551615.
fn parse_count(text: &str) -> Result<u64, LimitError> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(LimitError::NotWholeNumber);
    }
    digits.parse().map_err(|_| LimitError::TooLarge)
}

/// This program's name, as dtlto-mock reads its own argv[0].
fn invoked_as() -> String {
    let argv0 = std::env::args_os().next();
    dtlto_mock::mode::program_name(argv0.as_deref().and_then(|a| a.to_str()))
}
