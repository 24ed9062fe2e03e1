//! A real REAPI v2 engine for remote mode's tests: buildbox-casd with buildbox-run
//! (bubblewrap), started by tools/reapi-engine.sh in a directory of its own and
//! stopped when dropped. The tests that need it are #[ignore]d with that reason, and
//! fail loudly when run without it.

use super::dir::TestDir;
use super::runner::repo_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the engine's binaries are: DTLTO_REAPI_ENGINE_BIN, which tests/all.sh sets
/// from tools/install-reapi-engine.sh.
fn engine_bin() -> PathBuf {
    match std::env::var_os("DTLTO_REAPI_ENGINE_BIN") {
        Some(bin) if Path::new(&bin).join("buildbox-casd").exists() => PathBuf::from(bin),
        _ => panic!(
            "the REAPI engine is missing: set DTLTO_REAPI_ENGINE_BIN to the directory \
             `bash tools/install-reapi-engine.sh` prints (tests/all.sh does)"
        ),
    }
}

/// A running engine: its endpoint, and its directory (cache, log, pid).
pub struct Engine {
    pub endpoint: String,
    dir: TestDir,
}

impl Engine {
    /// Starts an engine that executes actions, with a cache of its own.
    pub fn start(name: &str) -> Engine {
        Engine::start_in(TestDir::new(name), false)
    }

    /// Starts an engine in `dir`, reusing the cache an earlier engine left there;
    /// `cache_only`: without its execution service.
    pub fn start_in(dir: TestDir, cache_only: bool) -> Engine {
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("tools/reapi-engine.sh"))
            .arg("start");
        if cache_only {
            command.arg("--cache-only");
        }
        command
            .arg(dir.join("engine"))
            .env("DTLTO_REAPI_ENGINE_BIN", engine_bin());
        let output = command.output().expect("run tools/reapi-engine.sh");
        assert!(
            output.status.success(),
            "the engine did not start:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        Engine {
            endpoint: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            dir,
        }
    }

    /// Stops it, keeping its cache for `start_in`.
    pub fn stop(self) -> TestDir {
        let dir = self.dir.clone();
        drop(self);
        dir
    }

    /// The engine's cache directory (its CAS holds every blob sent).
    pub fn cache(&self) -> PathBuf {
        self.dir.join("engine/cache")
    }

    /// Kills it at once (SIGKILL), as a server that dies mid-run.
    pub fn kill(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("engine/pid")) {
            let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
        }
    }

    fn stop_now(&self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("tools/reapi-engine.sh"))
            .arg("stop")
            .arg(self.dir.join("engine"))
            .output();
    }

    /// The engine's log, for a failed assertion's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("engine/casd.log")).unwrap_or_default()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_now();
    }
}
