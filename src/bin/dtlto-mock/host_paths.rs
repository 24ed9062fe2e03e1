//! Where a path the linker wrote lives in this guest's view of the file system.
//!
//! Under `wasmtime run --dir ...` the guest sees host paths as they are. Under
//! `dtlto-runner`, directories are preopened under other names, and the runner passes
//! the exact host-path -> guest-path map (see dtlto_mock::host_protocol), so that
//! drive letters, backslashes and UNC names are the runner's business, not ours.

use dtlto_mock::host_protocol::{HOST_COMMITS_VARIABLE, PATH_MAP_VARIABLE as MAP_VARIABLE};
use std::collections::BTreeMap;

pub struct HostPaths {
    map: BTreeMap<String, String>,
    host_commits: bool,
}

impl HostPaths {
    /// Reads the runner's map, if any. A map that is present but unreadable is a bug in
    /// the host, reported rather than guessed around.
    pub fn from_env() -> Result<Self, String> {
        let map = match std::env::var(MAP_VARIABLE) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!("{MAP_VARIABLE} is set but is not a JSON object of strings: {e}")
            })?,
            Err(_) => BTreeMap::new(),
        };
        let host_commits = std::env::var(HOST_COMMITS_VARIABLE).is_ok_and(|v| v == "1");
        Ok(HostPaths { map, host_commits })
    }

    /// True when the host stages and commits every output itself.
    pub fn host_commits(&self) -> bool {
        self.host_commits
    }

    /// True when a runner decided what this guest can see.
    pub fn is_mapped(&self) -> bool {
        !self.map.is_empty()
    }

    /// The guest path for `host_path`; unmapped paths are taken as they are.
    pub fn to_guest<'a>(&'a self, host_path: &'a str) -> &'a str {
        self.map.get(host_path).map_or(host_path, String::as_str)
    }
}
