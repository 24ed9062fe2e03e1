//! The sandbox: the guest reads through read-only preopens and writes only into
//! private staging directories; the runner commits declared outputs afterwards.

pub mod paths;
pub mod plan;
pub mod staging;
