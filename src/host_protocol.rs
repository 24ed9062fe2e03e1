//! What a host that sandboxes the guest tells it, through its environment (wit/
//! names both variables). dtlto-runner sets them; `wasmtime run` sets neither.

/// The host-path -> guest-path map, a JSON object of strings: host path syntax
/// (drive letters, backslashes) never reaches the guest.
pub const PATH_MAP_VARIABLE: &str = "DTLTO_SANDBOX_PATHS";

/// `1` when the host stages every write and, after a clean exit, commits the
/// declared outputs itself, all or nothing: the guest then writes each output in
/// place instead of through temporaries of its own.
pub const HOST_COMMITS_VARIABLE: &str = "DTLTO_HOST_COMMITS";
