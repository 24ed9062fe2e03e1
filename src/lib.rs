//! dtlto-mock: LLVM's DTLTO test distributors `mock.py` and `validate.py`, exactly.
//!
//! The library holds what the guest command (`src/bin/dtlto-mock/`, built for wasm32-wasip1)
//! and the native runner (`runner/`) share: the job file's schema and rules, and the
//! Python-exact JSON and `repr` printing that `validate.py`'s output depends on.

// Shared by the guest and the runner; nothing here needs unsafe code.
#![forbid(unsafe_code)]

pub mod commit;
pub mod host_protocol;
pub mod job_file;
pub mod json;
pub mod message;
pub mod mode;
pub mod python_repr;
