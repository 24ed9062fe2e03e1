//! How a failed job is described: how it ended, its native object and its command.

use crate::jobs::args;
use dtlto_mock::job_file::JobFile;
use dtlto_mock::message::quoted;
use std::path::Path;
use std::process::ExitStatus;

/// Whether a file is missing or empty.
pub(super) fn is_empty(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.len() == 0)
}

/// clang's ThinLTO backend reports a module it cannot import (`Error loading
/// imported file`) on stderr, writes an empty object and exits 0: under
/// `--hermetic`, that is what an undeclared read looks like.
pub(super) fn empty_under_hermetic(job_file: &JobFile, index: usize, command: &[String]) -> String {
    format!(
        "jobs[{index}] read outside what it declares: under --hermetic it exited 0 but left \
         its native object {} empty, as clang's ThinLTO backend does when it cannot read a \
         module it imports (see its message above); declare every file it reads in \
         common.inputs or jobs[{index}].inputs, or run without --hermetic to compare: {}",
        quoted(job_file.jobs[index].native_object()),
        args::shell_words(command)
    )
}

pub(super) fn describe_failure(
    job_file: &JobFile,
    index: usize,
    command: &[String],
    status: ExitStatus,
    hermetic: bool,
) -> String {
    let how = match status.code() {
        Some(code) => format!("exit status {code}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                format!("signal {}", status.signal().unwrap_or(0))
            }
            #[cfg(not(unix))]
            {
                "no exit status".to_owned()
            }
        }
    };
    let mut message = format!(
        "jobs[{index}] (for {}) failed with {how}: {}",
        quoted(job_file.jobs[index].native_object()),
        args::shell_words(command)
    );
    if hermetic {
        message.push_str(&format!(
            "\n  jobs[{index}] ran under --hermetic: if it says a file could not be read \
             (permission denied), it read outside what it declares (common.inputs, \
             jobs[{index}].inputs); run without --hermetic to compare"
        ));
    }
    message
}
