//! CPython as the oracle for validate mode (tests/oracle/cpython_validate.py).

use super::{Run, TestDir};
use std::path::PathBuf;
use std::process::Command;

/// The python3 to run; a machine without one fails these tests loudly.
pub fn python3() -> PathBuf {
    for candidate in ["python3", "python"] {
        let works = Command::new(candidate)
            .args(["-c", "import sys; assert sys.version_info >= (3, 11)"])
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return PathBuf::from(candidate);
        }
    }
    panic!("the differential tests need CPython 3.11 or newer as `python3` on PATH");
}

/// Runs the oracle in `dir` as `python3 cpython_validate.py args... job_file`.
pub fn cpython_validate(dir: &TestDir, args: &[&str], job_file: &str) -> Run {
    let script = super::repo_root().join("tests/oracle/cpython_validate.py");
    dir.run(
        Command::new(python3())
            .arg(script)
            .args(args)
            .arg(job_file)
            .env("PYTHONIOENCODING", "utf-8"),
    )
}
