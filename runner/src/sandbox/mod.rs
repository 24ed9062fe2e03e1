//! The sandbox's plan: the guest reads through read-only preopens and writes only
//! into private staging directories (see transaction/), under guest paths decided
//! here. `file_id` tells which file a handle or path is: the plan records its
//! inputs' identities by it, and transaction/ checks directories and outputs by it.

use std::collections::{HashMap, HashSet};

/// Maps and sets keyed by the paths and names of a run, which a link of 10,000 jobs
/// has 50,000 of: hashed with foldhash, where SipHash took a tenth of a run's time.
/// Their keys come from the user's own job file, and foldhash seeds each map all the
/// same.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;

/// Frees `value`, which holds about `entries` paths, on a thread of its own when it
/// is large: the maps of a large link (tens of thousands of paths) take a noticeable
/// part of its run to free key by key, and the process need not wait for it. A small
/// one is freed here, where starting a thread would cost more than it saves.
pub fn free_beside<T: Send + 'static>(value: T, entries: usize) {
    /// Below this many paths, freeing takes less than starting a thread.
    const WORTH_A_THREAD: usize = 2_000;
    if entries < WORTH_A_THREAD {
        return drop(value);
    }
    let mut value = Some(value);
    let spawned = std::thread::Builder::new().name("free".into()).spawn({
        let value = value.take();
        move || drop(value)
    });
    drop(spawned);
    drop(value);
}

pub mod file_id;
pub mod paths;
pub mod plan;
mod read_job;
mod resolve;
