//! buildbox-run as another user, for a buildbox-casd that runs as root. casd starts
//! it once per action, through the launcher tools/reapi-engine.sh writes:
//!
//!     reapi-engine-run-as UID GID PATH RUNNER WORK -- BUILDBOX_RUN_ARGS...
//!
//! casd stages an action's input root by hard links out of its cache only for a
//! runner whose user is not casd's own (else it copies every file), so this runs
//! RUNNER (buildbox-run) as UID:GID, with PATH.
//!
//! casd writes the action into a private directory of its own and expects the result
//! there. That directory stays root's: root must never create, write or chown a file
//! by name in a directory another user can write, nor read one that user may have
//! put a link in place of. So root makes a directory in WORK (root's alone, searchable
//! by all), writes the action into it while it is still root's, and only then hands
//! both over; RUNNER runs there as the user; its result comes back only as a regular
//! file that user owns (what the user could read anyway), opened without following a
//! link, and root writes it into casd's directory only. Anything running as the user
//! could tamper with the action while it runs (it could anyway: same user); none of
//! it can reach root.
//!
//! One process doing system calls, not a script starting programs: it sits on every
//! action's critical path, where each program started costs a millisecond or two.

#[cfg(target_os = "linux")]
mod run_as;

use std::process::ExitCode;

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    {
        run_as::main()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("reapi-engine-run-as: Linux only, as the engine it serves");
        ExitCode::from(2)
    }
}
