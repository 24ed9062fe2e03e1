//! Which mode to run and on what: from the program name (`dtlto-mock`,
//! `dtlto-validate`) or a leading mode word (`mock`, `validate`); mock is the default.
//!
//! A linker passes distributor arguments verbatim and appends the job file, so nothing
//! after the mode word is an option of ours: `--help` counts only when it is alone.

use crate::failure::Failure;
use clap::{Arg, ArgAction, Command};
use std::ffi::OsString;

pub use dtlto_mock::mode::{program_name, Mode};

#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    Help,
    Version,
    Run {
        mode: Mode,
        /// Everything before the job file: sources (mock) or distributor args (validate).
        args: Vec<String>,
        job_file: String,
    },
}

const LLVM_MAPPING: &str = "\
Modes:
  mock      <SOURCE>... <JOB_FILE>   copy SOURCE_i to jobs[i].outputs[0] (LLVM's mock.py)
  validate  [ARG]... <JOB_FILE>      print the ARGs and the job file as Python would,
                                     then check its schema (LLVM's validate.py)
The mode is a leading word, or the program's name (dtlto-mock, dtlto-validate);
mock is the default. A linker appends JOB_FILE after the arguments it was given.

LLVM's invocations and their replacements (RUNNER = dtlto-runner, or
`wasmtime run --dir . dtlto-mock.wasm`):
  clang -fthinlto-distributor=python3 -Xthinlto-distributor=mock.py -Xthinlto-distributor=a.o
    -> clang -fthinlto-distributor=RUNNER -Xthinlto-distributor=a.o
  ld.lld --thinlto-distributor=python3 --thinlto-distributor-arg=validate.py
         --thinlto-distributor-arg=--da1=10
    -> ld.lld --thinlto-distributor=RUNNER --thinlto-distributor-arg=validate
              --thinlto-distributor-arg=--da1=10
  llvm-lto2 -dtlto-distributor=python3 -dtlto-distributor-arg=mock.py,a.o,b.o
    -> llvm-lto2 -dtlto-distributor=RUNNER -dtlto-distributor-arg=a.o,b.o

By hand:
  wasmtime run --dir . dtlto-mock.wasm a.native.o b.native.o app.123.dist-file.json
  wasmtime run --dir . dtlto-mock.wasm validate --da1=10 app.123.dist-file.json

Exit status: 0 success; 1 invalid job file or failed job; 2 usage error.";

fn command(program: &str) -> Command {
    Command::new(program.to_owned())
        .version(env!("CARGO_PKG_VERSION"))
        .about("LLVM's DTLTO test distributors mock.py and validate.py, as one sandboxed command")
        .override_usage(format!(
            "{program} [mock] <SOURCE>... <JOB_FILE>\n       {program} validate [ARG]... <JOB_FILE>"
        ))
        .after_help(format!("{LLVM_MAPPING}\n\n{}", crate::faults::HELP))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("args")
                .value_name("ARG")
                .help("Arguments as the linker passes them; the last is the job file")
                .num_args(1..)
                .required(true)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .action(ArgAction::Append),
        )
}

/// The help text shown by `--help`.
pub fn help(program: &str) -> String {
    command(program).render_help().to_string()
}

/// Decides what to do from the full argument vector (program name first).
pub fn parse(argv: Vec<OsString>) -> Result<Invocation, Failure> {
    let mut argv: Vec<String> = argv
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Failure::Usage(format!("argument {a:?} is not valid Unicode")))
        })
        .collect::<Result<_, _>>()?;
    let program = program_name(argv.first().map(String::as_str));
    if !argv.is_empty() {
        argv.remove(0);
    }
    let (mode, mode_words) = dtlto_mock::mode::select(&program, &argv);
    argv.drain(..mode_words);
    // From here on the name is only shown: escaped, as argv[0] is anyone's to choose.
    let program = dtlto_mock::message::shown(&program);
    match argv.as_slice() {
        [only] if only == "--help" || only == "-h" => return Ok(Invocation::Help),
        [only] if only == "--version" || only == "-V" => return Ok(Invocation::Version),
        _ => {}
    }
    let matches = command(&program)
        .try_get_matches_from(std::iter::once(program.clone()).chain(argv))
        .map_err(|e| {
            // Our caller prefixes "error: " itself.
            let rendered = e.render().to_string();
            let message = rendered.strip_prefix("error: ").unwrap_or(&rendered);
            Failure::Usage(message.trim_end().to_owned())
        })?;
    let mut args: Vec<String> = matches
        .get_many::<String>("args")
        .map(|values| values.cloned().collect())
        .unwrap_or_default();
    let job_file = args
        .pop()
        .ok_or_else(|| Failure::Usage(format!("{program}: missing the job file")))?;
    Ok(Invocation::Run {
        mode,
        args,
        job_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str]) -> Invocation {
        parse(argv.iter().map(OsString::from).collect()).unwrap()
    }

    fn runs(mode: Mode, args: &[&str], job_file: &str) -> Invocation {
        Invocation::Run {
            mode,
            args: args.iter().map(|s| s.to_string()).collect(),
            job_file: job_file.to_owned(),
        }
    }

    #[test]
    fn mock_is_the_default_and_the_job_file_is_last() {
        assert_eq!(
            run(&["dtlto-mock.wasm", "a.o", "b.o", "j.json"]),
            runs(Mode::Mock, &["a.o", "b.o"], "j.json")
        );
    }

    #[test]
    fn a_leading_word_or_the_program_name_picks_validate() {
        assert_eq!(
            run(&["dtlto-mock", "validate", "--da1=10", "j.json"]),
            runs(Mode::Validate, &["--da1=10"], "j.json")
        );
        assert_eq!(
            run(&["/usr/bin/dtlto-validate", "--help", "j.json"]),
            runs(Mode::Validate, &["--help"], "j.json")
        );
        assert_eq!(
            run(&["dtlto-validate", "mock", "a.o", "j.json"]),
            runs(Mode::Mock, &["a.o"], "j.json")
        );
    }

    #[test]
    fn help_only_when_alone() {
        assert_eq!(run(&["dtlto-mock", "--help"]), Invocation::Help);
        assert_eq!(run(&["dtlto-mock", "validate", "-h"]), Invocation::Help);
        assert!(help("dtlto-mock").contains("-fthinlto-distributor=RUNNER"));
    }

    #[test]
    fn no_job_file_is_a_usage_error() {
        let err = parse(vec![OsString::from("dtlto-mock")]).unwrap_err();
        assert!(matches!(err, Failure::Usage(_)), "{err:?}");
        let err = parse(vec!["dtlto-mock".into(), "validate".into()]).unwrap_err();
        assert!(matches!(err, Failure::Usage(_)), "{err:?}");
    }
}
