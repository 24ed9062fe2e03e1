//! buildbox-run as another user, for a buildbox-casd that runs as root. casd starts
//! it once per action, through the launcher tools/reapi-engine.sh writes:
//!
//!     reapi-engine-run-as UID GID PATH RUNNER WORK -- BUILDBOX_RUN_ARGS...
//!
//! casd stages an action's input root by hard links out of its cache only for a
//! runner whose user is not casd's own (else it copies every file), so this runs
//! RUNNER (buildbox-run) as UID:GID, with PATH and nothing else of root's.
//!
//! casd writes the action into a private directory of its own and expects the result
//! there. That directory stays root's. Root makes the user a directory in WORK
//! (root's, writable by nobody else: checked), reached only through descriptors so
//! that no name on the way can be swapped; writes the action into it while it is
//! still root's, and only then hands it over (`action_dir`). RUNNER runs there as the
//! user: no groups, terminal, keyring, descriptor or variable of root's, and what it
//! leaves running is ended before its result is read (`runner`). The result comes
//! back only as a regular file the user owns (what the user could read anyway),
//! opened without following a link, and root writes it into casd's directory only.
//! The user removes what it made, in a process it cannot signal; root, the empty
//! directory (`credentials`). So nothing running as the user can make root read,
//! write or delete anything it could not itself, or hold it up; it could tamper with
//! its own action while it runs (it could anyway).
//!
//! One process doing system calls, not a script starting programs: it sits on every
//! action's critical path, where each program started costs a millisecond or two.

#[cfg(target_os = "linux")]
mod action_dir;
#[cfg(target_os = "linux")]
mod credentials;
#[cfg(target_os = "linux")]
mod request;
#[cfg(target_os = "linux")]
mod runner;

use std::process::ExitCode;

#[cfg(not(target_os = "linux"))]
fn main() -> ExitCode {
    eprintln!("reapi-engine-run-as: Linux only, as the engine it serves");
    ExitCode::from(2)
}

#[cfg(target_os = "linux")]
fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let Some(request) = request::Request::parse(args) else {
        eprintln!("usage: reapi-engine-run-as UID GID PATH RUNNER WORK -- BUILDBOX_RUN_ARGS...");
        return ExitCode::from(2);
    };
    match run(&request) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("reapi-engine-run-as: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What RUNNER may write back and casd reads: an ActionResult, and the status
/// buildbox-run writes beside it when it fails; `result` is copied to casd's
/// `--action-result` path, `result.error-status` beside it.
#[cfg(target_os = "linux")]
const RESULTS: [&str; 2] = ["result", "result.error-status"];

#[cfg(target_os = "linux")]
fn run(request: &request::Request) -> Result<u8, String> {
    use std::io::Write;
    runner::prepare()?;
    let user = request.user;
    let mut dir = action_dir::ActionDir::make(&request.work)?;
    let rewritten = request::rewrite(&request.runner_args, dir.path());
    if let Some(action) = &rewritten.action {
        let bytes = std::fs::read(action)
            .map_err(|e| format!("cannot read the action {}: {e}", action.display()))?;
        dir.create("action", user)
            .and_then(|mut file| file.write_all(&bytes))
            .map_err(|e| format!("cannot copy the action into {}: {e}", dir.path().display()))?;
    }
    let log = dir
        .create("runner.log", user)
        .map_err(|e| format!("cannot make RUNNER's log in {}: {e}", dir.path().display()))?;
    dir.hand_over(user)
        .map_err(|e| format!("cannot hand {} over: {e}", dir.path().display()))?;

    let status = runner::run(request, &rewritten.args, &dir, &log);
    runner::relay_log(&log);
    let status = status?;

    if let Some(result) = &rewritten.result {
        for name in RESULTS {
            let mut back = result.clone().into_os_string();
            back.push(&name["result".len()..]);
            dir.bring_back(name, std::path::Path::new(&back), user.uid)?;
        }
    }
    Ok(status)
}
