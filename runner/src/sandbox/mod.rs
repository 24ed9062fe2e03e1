//! The sandbox's plan: the guest reads through read-only preopens and writes only
//! into private staging directories (see transaction/), under guest paths decided
//! here.

pub mod paths;
pub mod plan;
