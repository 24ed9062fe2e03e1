//! Remote mode's command line: what selects the mode, and its own options, each also
//! settable by an environment variable (a linker is often called from a build
//! system), and credentials that never need the command line (a variable or a file).

use super::Settings;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::path::PathBuf;

/// The mode's word.
pub const WORD: &str = "remote";
/// The program name (a copy or link of the runner) that selects the mode.
pub const PROGRAM: &str = "dtlto-remote";
/// Remote mode's usage, which its usage errors end with.
pub const USAGE: &str =
    "dtlto-runner [--verbose] [--timeout SECONDS] remote --endpoint URL [OPTIONS] JOB_FILE";
/// Actions in flight at once unless told otherwise: remote workers are many, and a
/// cache hit costs the service little.
pub const DEFAULT_JOBS: usize = 16;

const ABOUT: &str = "\
Sends each of a DTLTO job file's backend compiles to a REAPI v2 service (Bazel's
Remote Execution API: BuildBuddy, EngFlow, NativeLink, Buildbarn, BuildGrid,
buildbox) as an action: the action cache first, execution on a miss. Only the job's
declared inputs and its compiler (with what the compiler loads) are sent. The
outputs are written into a private staging and committed together after every job
has succeeded, or none. See docs/remote.md.";

const AFTER_HELP: &str = "\
Runner options (before `remote`): --verbose, --timeout SECONDS (or
DTLTO_RUNNER_TIMEOUT). The guest's options (--module, --read, --max-output-bytes,
--max-entries and their variables) are refused: remote mode runs no guest.";

/// The mode's arguments (after the word `remote`), if this command line selects it.
pub fn selected<'a>(program: &str, args: &'a [String]) -> Option<&'a [String]> {
    crate::jobs::job_file::mode_args(WORD, PROGRAM, program, args)
}

/// What the command line asks for.
#[derive(Debug)]
pub struct Options {
    /// How to reach the service, and what to send.
    pub settings: Settings,
    /// Actions in flight at once.
    pub jobs: usize,
    /// `--verbose`, before or after the word `remote`.
    pub verbose: bool,
    /// The job file, as written (the last argument).
    pub job_file: String,
}

fn command() -> Command {
    let file = || clap::value_parser!(PathBuf);
    Command::new("remote")
        .about(ABOUT)
        .override_usage(USAGE)
        .after_help(AFTER_HELP)
        .disable_version_flag(true)
        .next_help_heading("Options (after `remote`)")
        .arg(
            Arg::new("endpoint")
                .long("endpoint")
                .value_name("URL")
                .env("DTLTO_REMOTE_ENDPOINT")
                .required(true)
                .help("grpc://HOST:PORT, grpcs://HOST:PORT (TLS) or unix:///PATH"),
        )
        .arg(
            Arg::new("instance-name")
                .long("instance-name")
                .value_name("NAME")
                .env("DTLTO_REMOTE_INSTANCE_NAME")
                .default_value("")
                .hide_default_value(true)
                .help("The REAPI instance name, if the service has several"),
        )
        .arg(
            Arg::new("header")
                .long("header")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .help("A header sent with every call; for a secret, prefer --header-file"),
        )
        .arg(
            Arg::new("header-file")
                .long("header-file")
                .value_name("FILE")
                .env("DTLTO_REMOTE_HEADER_FILE")
                .value_parser(file())
                .help(
                    "Headers sent with every call, one NAME=VALUE a line (`#` starts a \
                     comment): credentials off the command line",
                ),
        )
        .arg(
            Arg::new("platform")
                .long("platform")
                .value_name("KEY=VALUE")
                .env("DTLTO_REMOTE_PLATFORM")
                .value_delimiter(',')
                .action(ArgAction::Append)
                .help(
                    "A platform property that selects the worker (OSFamily=linux, \
                     container-image=...); the variable takes KEY=VALUE,KEY=VALUE",
                ),
        )
        .arg(
            Arg::new("jobs")
                .long("jobs")
                .short('j')
                .value_name("N")
                .env("DTLTO_REMOTE_JOBS")
                .value_parser(clap::value_parser!(u16).range(1..))
                .default_value(DEFAULT_JOBS.to_string())
                .help("Actions in flight at once"),
        )
        .arg(
            Arg::new("no-cache-lookup")
                .long("no-cache-lookup")
                .env("DTLTO_REMOTE_NO_CACHE_LOOKUP")
                .action(ArgAction::SetTrue)
                .help("Execute every action, without asking the action cache first"),
        )
        .arg(
            Arg::new("cache-salt")
                .long("cache-salt")
                .value_name("TEXT")
                .env("DTLTO_REMOTE_CACHE_SALT")
                .default_value("")
                .hide_default_value(true)
                .help(
                    "Put the actions in a cache namespace of their own (REAPI's Action \
                     salt): a new salt disowns results a broken tool or worker cached",
                ),
        )
        .arg(
            Arg::new("worker-toolchain")
                .long("worker-toolchain")
                .env("DTLTO_REMOTE_WORKER_TOOLCHAIN")
                .action(ArgAction::SetTrue)
                .help(
                    "Use the worker's own compiler at the same path (select its image with \
                     --platform) instead of sending this machine's compiler and libraries",
                ),
        )
        .arg(
            Arg::new("tls-ca")
                .long("tls-ca")
                .value_name("FILE")
                .env("DTLTO_REMOTE_TLS_CA")
                .value_parser(file())
                .help("Trust this CA (PEM) for grpcs:// instead of the system's roots"),
        )
        .arg(
            Arg::new("tls-cert")
                .long("tls-cert")
                .value_name("FILE")
                .env("DTLTO_REMOTE_TLS_CERT")
                .value_parser(file())
                .requires("tls-key")
                .help("This client's certificate (PEM), for mutual TLS"),
        )
        .arg(
            Arg::new("tls-key")
                .long("tls-key")
                .value_name("FILE")
                .env("DTLTO_REMOTE_TLS_KEY")
                .value_parser(file())
                .requires("tls-cert")
                .help("The key of --tls-cert (PEM)"),
        )
        .arg(
            Arg::new("verbose")
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Print, for each job, a cache hit or an execution, bytes sent and received, time"),
        )
        .arg(
            crate::jobs::job_file::job_file_arg("The job file, last; words before it are ignored"),
        )
}

/// Why remote mode's command line cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// clap's own answer: a usage error, or the help.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// A `--platform` without `=`.
    #[error("{what} {}: expected NAME=VALUE", dtlto_mock::message::quoted(.value))]
    NotAPair {
        /// Where it came from.
        what: String,
        /// The value (a header's is not shown: it may be a secret).
        value: String,
    },
    /// A header that is not `NAME=VALUE`; it is not shown, as it may be a secret.
    #[error("{what} is not NAME=VALUE (it is not shown: it may hold a secret)")]
    HeaderNotAPair {
        /// Where it came from.
        what: String,
    },
    /// The header file cannot be read.
    #[error("cannot read the header file {}: {}", dtlto_mock::message::quoted(&.path.to_string_lossy()), dtlto_mock::message::io_error(.error))]
    HeaderFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        error: std::io::Error,
    },
}

/// Reads remote mode's arguments (after its word); `verbose` is the runner's own.
pub fn parse(args: &[String], verbose: bool) -> Result<Options, OptionsError> {
    let matches = command().no_binary_name(true).try_get_matches_from(args)?;
    let text = |id: &str| matches.get_one::<String>(id).cloned().unwrap_or_default();
    let path = |id: &str| matches.get_one::<PathBuf>(id).cloned();
    let mut settings = Settings::new(text("endpoint"));
    settings.instance_name = text("instance-name");
    settings.headers = headers(&matches)?;
    settings.platform = pairs(&matches, "platform", "--platform")?;
    settings.skip_cache_lookup = matches.get_flag("no-cache-lookup");
    settings.cache_salt = text("cache-salt");
    settings.ship_toolchain = !matches.get_flag("worker-toolchain");
    settings.tls_ca = path("tls-ca");
    settings.tls_client_cert = path("tls-cert");
    settings.tls_client_key = path("tls-key");
    let job_file = crate::jobs::job_file::job_file_of(&matches);
    Ok(Options {
        settings,
        jobs: matches
            .get_one::<u16>("jobs")
            .map_or(DEFAULT_JOBS, |&n| usize::from(n)),
        verbose: verbose || matches.get_flag("verbose"),
        job_file,
    })
}

fn split_pair(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_owned(), value.to_owned()))
}

fn pairs(
    matches: &ArgMatches,
    id: &str,
    what: &str,
) -> Result<Vec<(String, String)>, OptionsError> {
    matches
        .get_many::<String>(id)
        .into_iter()
        .flatten()
        .filter(|value| !value.is_empty())
        .map(|value| {
            split_pair(value).ok_or_else(|| OptionsError::NotAPair {
                what: what.to_owned(),
                value: value.clone(),
            })
        })
        .collect()
}

/// `--header`s, then the header file's lines. A value is never shown in a message.
fn headers(matches: &ArgMatches) -> Result<Vec<(String, String)>, OptionsError> {
    let mut headers = Vec::new();
    for value in matches.get_many::<String>("header").into_iter().flatten() {
        headers.push(
            split_pair(value).ok_or_else(|| OptionsError::HeaderNotAPair {
                what: "a --header".to_owned(),
            })?,
        );
    }
    if let Some(path) = matches.get_one::<PathBuf>("header-file") {
        let text = std::fs::read_to_string(path).map_err(|error| OptionsError::HeaderFile {
            path: path.clone(),
            error,
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            headers.push(
                split_pair(line).ok_or_else(|| OptionsError::HeaderNotAPair {
                    what: format!("line {} of the header file {}", n + 1, path.display()),
                })?,
            );
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_and_pairs_are_read() {
        let parsed = parse(
            &strings(&[
                "--endpoint=grpc://127.0.0.1:1",
                "--header",
                "authorization=Bearer x=y",
                "--platform",
                "OSFamily=linux",
                "-j",
                "3",
                "--no-cache-lookup",
                "--cache-salt=ci-7",
                "j.json",
            ]),
            false,
        )
        .unwrap();
        assert_eq!(parsed.settings.endpoint, "grpc://127.0.0.1:1");
        assert_eq!(
            parsed.settings.headers,
            vec![("authorization".to_owned(), "Bearer x=y".to_owned())]
        );
        assert_eq!(
            parsed.settings.platform,
            vec![("OSFamily".to_owned(), "linux".to_owned())]
        );
        assert_eq!(parsed.jobs, 3);
        assert_eq!(parsed.settings.cache_salt, "ci-7");
        assert!(parsed.settings.skip_cache_lookup && parsed.settings.ship_toolchain);
        assert_eq!(parsed.job_file, "j.json");
    }

    #[test]
    fn a_header_without_a_value_is_refused_without_showing_it() {
        let error = parse(
            &strings(&[
                "--endpoint=grpc://h:1",
                "--header",
                "secret-token",
                "j.json",
            ]),
            false,
        )
        .unwrap_err();
        assert!(error.to_string().contains("is not NAME=VALUE"), "{error}");
        assert!(!error.to_string().contains("secret-token"), "{error}");
        let error = parse(
            &strings(&["--endpoint=grpc://h:1", "--jobs", "0", "j.json"]),
            false,
        )
        .unwrap_err();
        assert!(matches!(error, OptionsError::Usage(_)), "{error}");
    }
}
