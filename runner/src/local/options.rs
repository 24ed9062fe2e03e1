//! Local mode's command line: what selects the mode, and its own options.

use crate::error::LocalUsage;

/// The mode's word.
pub const WORD: &str = "local";
/// The program name (a copy or link of the runner) that selects the mode.
pub const PROGRAM: &str = "dtlto-local";

/// The mode's arguments (after the word `local`), if this command line selects it.
pub fn selected<'a>(program: &str, args: &'a [String]) -> Option<&'a [String]> {
    match args.first() {
        Some(word) if word == WORD => Some(&args[1..]),
        _ if program == PROGRAM => Some(args),
        _ => None,
    }
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

/// Reads local mode's arguments. As local.py reads only its last argument, other
/// words are ignored; an option that is not ours is refused, so that a misspelt
/// `--hermetic` cannot pass silently.
pub fn options(args: &[String], verbose: bool) -> Result<Options, LocalUsage> {
    let Some((job_file, rest)) = args.split_last() else {
        return Err(LocalUsage::NoJobFile);
    };
    // `local --hermetic` alone: the job file is missing, not named `--hermetic`.
    if job_file.starts_with('-') {
        return Err(LocalUsage::OptionForJobFile(job_file.clone()));
    }
    let mut options = Options {
        jobs: 1,
        hermetic: false,
        verbose,
        job_file: job_file.clone(),
    };
    let mut rest = rest.iter();
    while let Some(arg) = rest.next() {
        let jobs = match arg.as_str() {
            "--hermetic" => {
                options.hermetic = true;
                continue;
            }
            "--verbose" => {
                options.verbose = true;
                continue;
            }
            "--jobs" | "-j" => rest
                .next()
                .ok_or_else(|| LocalUsage::NoNumber(arg.clone()))?
                .as_str(),
            other => match other.strip_prefix("--jobs=").or(other.strip_prefix("-j")) {
                Some(value) => value,
                None if other.starts_with('-') => {
                    return Err(LocalUsage::UnknownOption(other.to_owned()))
                }
                // A word, such as the script local.py replaced: ignored, as local.py does.
                None => continue,
            },
        };
        let n: usize = jobs
            .parse()
            .map_err(|_| LocalUsage::NotANumber(jobs.to_owned()))?;
        options.jobs = if n == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            n
        };
    }
    Ok(options)
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
        let parsed = options(
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
            options(&strings(&["-j", "2", "j.json"]), false)
                .unwrap()
                .jobs,
            2
        );
        assert!(
            options(&strings(&["--jobs", "0", "j.json"]), false)
                .unwrap()
                .jobs
                >= 1
        );
        assert!(options(&strings(&["--hermtic", "j.json"]), false)
            .unwrap_err()
            .to_string()
            .contains("unknown option \"--hermtic\""));
        assert!(options(&[], false).is_err());
    }
}
