//! How this run's jobs are confined, decided once before anything is created, and
//! said under `--verbose`: Landlock and its ABI, sealing (a mount namespace in which
//! all but the staging is read-only), or nothing, and what `--hermetic` then refuses.

use super::confine;
use super::error::{LocalError, NoLandlock};
use super::LANDLOCK_VARIABLE;

/// This run's confinement.
pub(super) struct Confinement {
    /// The kernel's Landlock ABI, if jobs are confined by it.
    pub landlock: Option<i32>,
    /// Whether each job also gets all but its staging read-only.
    pub sealed: bool,
    /// `DTLTO_RUNNER_LANDLOCK=off`.
    pub switched_off: bool,
}

impl Confinement {
    /// Decides the confinement, refusing `--hermetic` where its promise cannot hold,
    /// and warns (always) when the user switched Landlock off.
    pub(super) fn decide(hermetic: bool) -> Result<Confinement, LocalError> {
        // Confinement, decided before anything is created.
        // DTLTO_RUNNER_LANDLOCK=off runs as where Landlock is missing: to compare, or
        // should confinement stand in a build's way.
        let switched_off = std::env::var_os(LANDLOCK_VARIABLE).is_some_and(|v| v == "off");
        let landlock = if switched_off {
            None
        } else {
            confine::abi_version()
        };
        // Where it can, each confined job also gets a mount namespace in which all but
        // its staging is read-only: Landlock has no rights for metadata.
        let sealed = landlock.is_some() && confine::sealing_works();
        if hermetic && landlock.is_none() {
            let why = if switched_off {
                NoLandlock::SwitchedOff {
                    variable: LANDLOCK_VARIABLE,
                }
            } else if cfg!(target_os = "linux") {
                NoLandlock::Kernel
            } else {
                NoLandlock::System
            };
            return Err(LocalError::NoLandlock(why));
        }
        if let Some(why) = landlock
            .filter(|_| hermetic)
            .and_then(|abi| confine::Promises::of(abi, sealed).hermetic_refusal())
        {
            return Err(LocalError::HermeticNotHeld(why));
        }
        if switched_off {
            // Said whether or not --verbose: the user may have forgotten it is set.
            dtlto_mock::stderr_line!(
                "dtlto-runner: warning: {LANDLOCK_VARIABLE}=off: local mode's jobs run NOT \
                 confined; a job could write or read anywhere its user can"
            );
        }
        Ok(Confinement {
            landlock,
            sealed,
            switched_off,
        })
    }

    /// Says, on stderr, how `jobs` jobs run `at_a_time` are confined, and what holds
    /// on this kernel (`--verbose`).
    pub(super) fn describe(&self, jobs: usize, at_a_time: usize, hermetic: bool) {
        let (landlock, sealed, switched_off) = (self.landlock, self.sealed, self.switched_off);
        let head = format!(
            "dtlto-runner: local: {} job(s), {} at a time",
            jobs, at_a_time
        );
        match landlock {
            Some(abi) => {
                let promises = confine::Promises::of(abi, sealed);
                dtlto_mock::stderr_line!(
                    "{head}, confined by Landlock (ABI {abi}): each creates, writes, renames \
                     and removes files only in its staging; {}",
                    if hermetic {
                        "it reads only what it declares (--hermetic)"
                    } else {
                        "reads are not restricted (see --hermetic)"
                    }
                );
                let held = promises.held();
                if !held.is_empty() {
                    dtlto_mock::stderr_line!(
                        "dtlto-runner: local: on this kernel a job also cannot: {}",
                        held.join("; ")
                    );
                }
                dtlto_mock::stderr_line!(
                    "dtlto-runner: local: on this kernel a job still CAN: {}",
                    promises.gaps().join("; ")
                );
            }
            None => dtlto_mock::stderr_line!(
                "{head}, NOT confined ({}): writes to the outputs still go through staging, \
                 but a job could write or read anywhere its user can",
                if switched_off {
                    format!("{LANDLOCK_VARIABLE}=off")
                } else {
                    "no Landlock on this system".to_owned()
                }
            ),
        }
    }
}
