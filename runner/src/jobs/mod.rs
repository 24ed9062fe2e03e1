//! The job machinery the native modes share (local, which runs each job's compile
//! as a process, and any mode that sends jobs elsewhere): the job file read once and
//! checked, each job's command with its outputs pointed elsewhere, scheduling N at
//! a time with the first failure ending the run, and whole-line relaying.

pub mod args;
pub mod error;
pub mod job_file;
pub mod relay;
pub mod schedule;
