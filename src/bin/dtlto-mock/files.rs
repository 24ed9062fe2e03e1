//! File access by host path: opens through the guest's view of the file system and
//! turns every failure into a message that names the file and its role in the job.

use crate::failure::Failure;
use crate::host_paths::HostPaths;
use crate::sandbox_reach;
use std::fs::File;
use std::io::{self, Read, Write};

/// Most bytes moved per host call when copying. WASI hosts copy through guest memory,
/// so std's 8 KiB default makes a call per 8 KiB; 1 MiB makes big copies cost what the
/// kernel's copy costs (see README, "Benchmarks").
pub const COPY_BLOCK: usize = 1 << 20;

/// The copy buffer's first size: a typical object file fits in one read, and a small
/// job does not pay for zeroing (and the host for mapping) a whole COPY_BLOCK.
const FIRST_BLOCK: usize = 64 << 10;

/// The buffer copies go through. It starts at FIRST_BLOCK and doubles, up to
/// COPY_BLOCK, each time a read fills it.
pub struct CopyBuffer {
    bytes: Vec<u8>,
}

impl CopyBuffer {
    pub fn new() -> Self {
        CopyBuffer {
            bytes: vec![0; FIRST_BLOCK],
        }
    }

    fn grow_after(&mut self, filled: usize) {
        if filled == self.bytes.len() && self.bytes.len() < COPY_BLOCK {
            self.bytes.resize((self.bytes.len() * 2).min(COPY_BLOCK), 0);
        }
    }
}

pub struct Files {
    paths: HostPaths,
}

impl Files {
    pub fn new(paths: HostPaths) -> Self {
        Files { paths }
    }

    /// Opens `host_path` for reading; `what` says what it is ("the job file", ...).
    pub fn open(&self, what: &str, host_path: &str) -> Result<File, Failure> {
        let guest_path = self.paths.to_guest(host_path);
        File::open(guest_path).map_err(|e| self.open_failure(what, host_path, guest_path, &e))
    }

    /// Reads a whole file.
    pub fn read(&self, what: &str, host_path: &str) -> Result<Vec<u8>, Failure> {
        let mut file = self.open(what, host_path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Failure::Job(format!("cannot read {what} \"{host_path}\": {e}")))?;
        Ok(bytes)
    }

    /// Starts a set of outputs that appear at their paths only together.
    pub fn staged_outputs(&self) -> StagedOutputs<'_> {
        StagedOutputs {
            files: self,
            // dtlto-runner stages every write and commits only after a clean exit, so
            // under it a temporary name and a rename per output would be wasted work.
            write_in_place: self.paths.is_mapped(),
            written: Vec::new(),
        }
    }

    fn open_failure(
        &self,
        what: &str,
        host_path: &str,
        guest_path: &str,
        error: &io::Error,
    ) -> Failure {
        let preopens = sandbox_reach::preopened_dirs();
        if cfg!(target_os = "wasi") && !sandbox_reach::is_reachable(guest_path, &preopens) {
            let message = if self.paths.is_mapped() {
                format!(
                    "cannot open {what} \"{host_path}\": it is outside the sandbox (dtlto-runner \
                     maps a path only if its directory exists when the run starts)"
                )
            } else {
                sandbox_reach::unreachable_message(what, host_path, &preopens)
            };
            return Failure::Job(message);
        }
        Failure::Job(format!("cannot open {what} \"{host_path}\": {error}"))
    }
}

/// Outputs written to temporary files beside their final paths and renamed into
/// place only once every one is complete, so that a failed run leaves no partial
/// file at any declared output. Dropping it uncommitted removes what it wrote.
pub struct StagedOutputs<'f> {
    files: &'f Files,
    /// Write final paths directly (the host stages and commits for us).
    write_in_place: bool,
    /// (temporary guest path, final guest path, host path) of each written output.
    written: Vec<(String, String, String)>,
}

impl StagedOutputs<'_> {
    /// Copies `source` (at most `limit` bytes of it) to the output `host_path`.
    pub fn copy(
        &mut self,
        what: &str,
        host_path: &str,
        source: &mut File,
        source_name: &str,
        buffer: &mut CopyBuffer,
        limit: Option<u64>,
    ) -> Result<(), Failure> {
        let final_path = self.files.paths.to_guest(host_path).to_owned();
        let mut output = self.create(what, host_path, final_path)?;
        let mut left = limit.unwrap_or(u64::MAX);
        while left > 0 {
            let want = buffer
                .bytes
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match source.read(&mut buffer.bytes[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::Job(format!(
                        "cannot read source \"{source_name}\": {e}"
                    )))
                }
            };
            output
                .write_all(&buffer.bytes[..n])
                .map_err(|e| Failure::Job(format!("cannot write {what} \"{host_path}\": {e}")))?;
            left -= n as u64;
            buffer.grow_after(n);
        }
        Ok(())
    }

    /// Writes `bytes` as the output `host_path`; `suffix` is appended to its path in
    /// this guest's view (an undeclared neighbour of a declared output).
    pub fn write(
        &mut self,
        what: &str,
        host_path: &str,
        suffix: &str,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let final_path = format!("{}{suffix}", self.files.paths.to_guest(host_path));
        let shown = format!("{host_path}{suffix}");
        let mut output = self.create(what, &shown, final_path)?;
        output
            .write_all(bytes)
            .map_err(|e| Failure::Job(format!("cannot write {what} \"{shown}\": {e}")))
    }

    /// Creates the file that will become `final_path` and records it.
    fn create(&mut self, what: &str, host_path: &str, final_path: String) -> Result<File, Failure> {
        let temp_path = if self.write_in_place {
            final_path.clone()
        } else {
            format!("{final_path}.dtlto-partial")
        };
        let output = File::create(&temp_path)
            .map_err(|e| self.files.open_failure(what, host_path, &final_path, &e))?;
        self.written
            .push((temp_path, final_path, host_path.to_owned()));
        Ok(output)
    }

    /// Moves every written output to its final path.
    pub fn commit(mut self) -> Result<(), Failure> {
        let written = std::mem::take(&mut self.written);
        for (i, (temp, final_path, host)) in written.iter().enumerate() {
            if temp == final_path {
                continue;
            }
            if let Err(e) = std::fs::rename(temp, final_path) {
                // Leave nothing behind: not the rest of the temporaries, nor the
                // outputs already moved, which a failed run must not pretend to have made.
                for (temp, _, _) in &written[i..] {
                    let _ = std::fs::remove_file(temp);
                }
                for (_, done, _) in &written[..i] {
                    let _ = std::fs::remove_file(done);
                }
                return Err(Failure::Job(format!(
                    "cannot move the finished output into place at \"{host}\": {e}"
                )));
            }
        }
        Ok(())
    }
}

impl Drop for StagedOutputs<'_> {
    fn drop(&mut self) {
        for (temp, _, _) in &self.written {
            let _ = std::fs::remove_file(temp);
        }
    }
}
