//! The runner of this build, and commands that run it (through an emulator where
//! the tests' target needs one).

use super::dir::TestDir;
use super::run::{Run, Started};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The `dtlto-runner` binary of this build.
pub fn runner_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_dtlto-runner"))
}

/// A copy of the runner that every user may run (the build's own may lie under a
/// home directory others cannot enter), in a directory of its own: keep the
/// `TestDir` while the copy is used.
#[cfg(unix)]
pub fn runner_for_every_user() -> (TestDir, PathBuf) {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    let bin = TestDir::new("runner-for-every-user");
    let runner = bin.join("dtlto-runner");
    fs::copy(runner_exe(), &runner).expect("copy the runner");
    for path in [bin.path(), runner.as_path()] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod 755");
    }
    (bin, runner)
}

/// A command that runs the runner of this build; see `target_command`.
pub fn runner_command() -> Command {
    target_command(&runner_exe())
}

/// A command that runs `program`, built for the target these tests are built for.
/// When that target is run through an emulator (arm64 under qemu-user, which cannot
/// start a foreign program by itself), DTLTO_TARGET_RUNNER holds the emulator's
/// command line, as cargo's target runner does for the test binary itself.
pub fn target_command(program: &Path) -> Command {
    let emulator = std::env::var("DTLTO_TARGET_RUNNER").unwrap_or_default();
    let mut words = emulator.split_whitespace();
    match words.next() {
        Some(first) => {
            let mut command = Command::new(first);
            command.args(words).arg(program);
            command
        }
        None => Command::new(program),
    }
}

/// Runs the runner in `dir` with `args`.
pub fn run_runner(dir: &TestDir, args: &[&str]) -> Run {
    dir.run(runner_command().args(args))
}

/// Starts the runner in `dir` with `args`, its output captured.
pub fn spawn_runner(dir: &TestDir, args: &[&str]) -> Started {
    dir.spawn(runner_command().args(args))
}

/// The repository's root (these tests are the runner package's).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("runner/ sits in the repository")
        .to_path_buf()
}
