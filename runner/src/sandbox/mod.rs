//! The sandbox's plan: the guest reads through read-only preopens and writes only
//! into private staging directories (see transaction/), under guest paths decided
//! here. `file_id` tells which file a handle or path is: the plan records its
//! inputs' identities by it, and transaction/ checks directories and outputs by it.

pub mod file_id;
pub mod paths;
pub mod plan;
