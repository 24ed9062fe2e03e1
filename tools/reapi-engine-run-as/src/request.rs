//! The command line: who runs RUNNER, where, and RUNNER's own arguments, with the
//! files it reads and writes moved into the user's directory.

use crate::credentials::User;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub struct Request {
    pub user: User,
    pub path: OsString,
    pub runner: PathBuf,
    pub work: PathBuf,
    pub runner_args: Vec<OsString>,
}

impl Request {
    /// `UID GID PATH RUNNER WORK -- RUNNER_ARGS...`
    pub fn parse(mut args: Vec<OsString>) -> Option<Request> {
        if args.len() < 6 || args[5] != "--" {
            return None;
        }
        let runner_args = args.split_off(6);
        let number = |word: &OsString| word.to_str()?.parse::<u32>().ok();
        Some(Request {
            user: User {
                uid: number(&args[0])?,
                gid: number(&args[1])?,
            },
            path: args[2].clone(),
            runner: PathBuf::from(&args[3]),
            work: PathBuf::from(&args[4]),
            runner_args,
        })
    }
}

/// RUNNER's arguments with its files in the user's directory `private`: the action
/// to read (`action`, which root copies in from the path recorded here), the result
/// to write (`result`, brought back to the path recorded here), and the command's
/// outputs, which RUNNER puts into CAS itself and names in the result, so that they
/// need not come back.
pub struct Rewritten {
    pub args: Vec<OsString>,
    pub action: Option<PathBuf>,
    pub result: Option<PathBuf>,
}

pub fn rewrite(args: &[OsString], private: &Path) -> Rewritten {
    let inside = |option: &str, name: &str| {
        let mut word = OsString::from(format!("{option}="));
        word.push(private.join(name));
        word
    };
    let mut rewritten = Rewritten {
        args: Vec::with_capacity(args.len()),
        action: None,
        result: None,
    };
    for arg in args {
        let value = |option: &str| {
            arg.as_bytes()
                .strip_prefix(option.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .map(|v| PathBuf::from(OsStr::from_bytes(v)))
        };
        if let Some(action) = value("--action") {
            rewritten.action = Some(action);
            rewritten.args.push(inside("--action", "action"));
        } else if let Some(result) = value("--action-result") {
            rewritten.result = Some(result);
            rewritten.args.push(inside("--action-result", "result"));
        } else if value("--stdout-file").is_some() {
            rewritten.args.push(inside("--stdout-file", "stdout-file"));
        } else if value("--stderr-file").is_some() {
            rewritten.args.push(inside("--stderr-file", "stderr-file"));
        } else if value("--partial-execution-metadata-file")
            .is_some_and(|v| !v.as_os_str().is_empty())
        {
            rewritten.args.push(inside(
                "--partial-execution-metadata-file",
                "partial-execution-metadata-file",
            ));
        } else {
            rewritten.args.push(arg.clone());
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&str]) -> Vec<OsString> {
        words.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_request_is_five_words_then_a_double_dash() {
        let request = Request::parse(words(&["65534", "65533", "/bin", "/r", "/w", "--", "-x"]))
            .expect("a request");
        assert_eq!(
            request.user,
            User {
                uid: 65534,
                gid: 65533
            }
        );
        assert_eq!(request.runner_args, words(&["-x"]));
        assert!(Request::parse(words(&["65534", "65533", "/bin", "/r", "/w", "-x"])).is_none());
        assert!(Request::parse(words(&["nobody", "65533", "/bin", "/r", "/w", "--"])).is_none());
        assert!(Request::parse(words(&["65534", "65533", "/bin", "/r"])).is_none());
    }

    #[test]
    fn the_runners_files_move_into_the_users_directory_and_the_rest_stays() {
        let rewritten = rewrite(
            &words(&[
                "--remote=unix:/c.sock",
                "--action=/casd/x.action",
                "--action-result=/casd/x.result",
                "--stdout-file=/casd/out",
                "--stderr-file=/casd/err",
                "--partial-execution-metadata-file=",
                "--partial-execution-metadata-file=/casd/meta",
                "--actionable",
            ]),
            Path::new("/work/action.abc"),
        );
        assert_eq!(
            rewritten.args,
            words(&[
                "--remote=unix:/c.sock",
                "--action=/work/action.abc/action",
                "--action-result=/work/action.abc/result",
                "--stdout-file=/work/action.abc/stdout-file",
                "--stderr-file=/work/action.abc/stderr-file",
                "--partial-execution-metadata-file=",
                "--partial-execution-metadata-file=/work/action.abc/partial-execution-metadata-file",
                "--actionable",
            ])
        );
        assert_eq!(
            rewritten.action.as_deref(),
            Some(Path::new("/casd/x.action"))
        );
        assert_eq!(
            rewritten.result.as_deref(),
            Some(Path::new("/casd/x.result"))
        );
    }
}
