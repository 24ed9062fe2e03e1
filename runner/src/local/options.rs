//! Local mode's command line: what selects the mode, and its own options, parsed by
//! clap as the runner's are, with a usage and help of their own.

use clap::{Arg, ArgAction, Command};

/// The mode's word.
pub const WORD: &str = "local";
/// The program name (a copy or link of the runner) that selects the mode.
pub const PROGRAM: &str = "dtlto-local";
/// Set to `off`, the jobs run unconfined, as where Landlock is missing.
pub const LANDLOCK_VARIABLE: &str = "DTLTO_RUNNER_LANDLOCK";

/// Local mode's usage, which its usage errors end with.
pub const USAGE: &str = "dtlto-runner [--verbose] [--timeout SECONDS] local [--jobs N] [--hermetic] [--verbose] [ARG]... JOB_FILE";

const ABOUT: &str = "\
Runs a DTLTO job file's backend compiles for real, as LLVM's local.py does: each
job's `common.args + jobs[i].args`, its outputs written into a private staging and
committed together after every job has succeeded, or none. On Linux each job is
confined (Landlock) to writing its staging. See docs/local.md.";

const AFTER_HELP: &str = "\
Runner options (before `local`): --verbose, --timeout SECONDS (or
DTLTO_RUNNER_TIMEOUT). The guest's options (--module, --read, --max-output-bytes,
--max-entries and their variables) are refused: local mode runs no guest.";

/// The mode's arguments (after the word `local`), if this command line selects it.
pub fn selected<'a>(program: &str, args: &'a [String]) -> Option<&'a [String]> {
    crate::jobs::job_file::mode_args(WORD, PROGRAM, program, args)
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

/// Local mode's command line, after its word.
fn command() -> Command {
    Command::new("local")
        .about(ABOUT)
        .override_usage(USAGE)
        .after_help(AFTER_HELP)
        .disable_version_flag(true)
        .next_help_heading("Options (after `local`)")
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .short('j')
                .value_name("N")
                .value_parser(clap::value_parser!(usize))
                .default_value("1")
                .help("Run N jobs at once (0: one per core); their lines are relayed whole"),
        )
        .arg(
            Arg::new("hermetic")
                .long("hermetic")
                .action(ArgAction::SetTrue)
                .help(
                    "Let each job read only what it declares, its compiler and the system's \
                     libraries (Linux, Landlock); refuses where that cannot hold",
                ),
        )
        .arg(
            Arg::new("verbose")
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Print the confinement, each job's command and each commit"),
        )
        .arg(crate::jobs::job_file::job_file_arg(
            "The job file, last; words before it are ignored, as local.py ignores \
                     them (an option that is not local mode's is refused)",
        ))
}

/// Reads local mode's arguments (after its word); `verbose` is the runner's own
/// `--verbose`. A clap error prints as the runner's usage errors do, or is the help.
pub fn parse(args: &[String], verbose: bool) -> Result<Options, clap::Error> {
    let matches = command().no_binary_name(true).try_get_matches_from(args)?;
    let jobs = matches.get_one::<usize>("jobs").copied().unwrap_or(1);
    let job_file = crate::jobs::job_file::job_file_of(&matches);
    Ok(Options {
        jobs: if jobs == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            jobs
        },
        hermetic: matches.get_flag("hermetic"),
        verbose: verbose || matches.get_flag("verbose"),
        job_file,
    })
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
        let parsed = parse(
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
            parse(&strings(&["-j", "2", "j.json"]), false).unwrap().jobs,
            2
        );
        assert_eq!(parse(&strings(&["-j2", "j.json"]), false).unwrap().jobs, 2);
        assert!(
            parse(&strings(&["--jobs", "0", "j.json"]), false)
                .unwrap()
                .jobs
                >= 1
        );
        assert!(
            parse(&strings(&["--verbose", "j.json"]), false)
                .unwrap()
                .verbose
        );
        let misspelt = parse(&strings(&["--hermtic", "j.json"]), false).unwrap_err();
        assert_eq!(misspelt.exit_code(), 2);
        assert!(misspelt.to_string().contains("--hermtic"), "{misspelt}");
        for no_job_file in [&[][..], &["--hermetic"][..], &["--jobs=2"][..]] {
            let error = parse(&strings(no_job_file), false).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{no_job_file:?}");
            assert!(error.to_string().contains("<JOB_FILE>"), "{error}");
        }
        let not_a_number = parse(&strings(&["--jobs", "many", "j.json"]), false).unwrap_err();
        assert_eq!(not_a_number.exit_code(), 2);
        let help = parse(&strings(&["--help"]), false).unwrap_err();
        assert_eq!(help.exit_code(), 0);
        assert!(
            help.to_string().contains("Options (after `local`)"),
            "{help}"
        );
    }
}
