//! File access by host path: opens through the guest's view of the file system and
//! turns every failure into a message that names the file and its role in the job.

use crate::failure::Failure;
use crate::host_paths::HostPaths;
use crate::sandbox_reach;
use dtlto_mock::commit::{commit_all, Move};
use dtlto_mock::job_file::MAX_JOB_FILE_BYTES;
use dtlto_mock::message::{file_kind, io_error, quoted};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::PathBuf;

/// Most bytes moved per host call when copying. WASI hosts copy through guest memory,
/// so std's 8 KiB default makes a call per 8 KiB; 1 MiB makes big copies cost what the
/// kernel's copy costs (see README, "Benchmarks").
pub const COPY_BLOCK: usize = 1 << 20;

/// The copy buffer's first size: a typical object file fits in one read, and a small
/// job does not pay for zeroing (and the host for mapping) a whole COPY_BLOCK.
const FIRST_BLOCK: usize = 64 << 10;

/// Most bytes asked of the host in one read of the job file: hosts refuse single
/// reads past some size (wasmtime-wasi past 128 MiB).
const READ_CHUNK: usize = 16 << 20;

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

    /// Checks, before anything is opened, that `host_path` is a regular file (opening
    /// a FIFO would wait for a writer forever), and returns its size. Under
    /// dtlto-runner the runner has checked it already, so this looks at nothing.
    pub fn check_regular(
        &self,
        what: &dyn fmt::Display,
        host_path: &str,
    ) -> Result<Option<u64>, Failure> {
        if self.paths.is_mapped() {
            return Ok(None);
        }
        let guest_path = self.paths.to_guest(host_path);
        let meta = fs::metadata(guest_path)
            .map_err(|e| self.open_failure(&what.to_string(), host_path, guest_path, &e))?;
        if !meta.is_file() {
            return Err(Failure::Job(format!(
                "cannot open {what} {}: it is {}, not a regular file",
                quoted(host_path),
                file_kind(&meta.file_type())
            )));
        }
        Ok(Some(meta.len()))
    }

    /// Opens `host_path` for reading; `what` says what it is ("the job file", ...).
    /// A `what` of many files is formatted only for a message.
    pub fn open(&self, what: &dyn fmt::Display, host_path: &str) -> Result<File, Failure> {
        let guest_path = self.paths.to_guest(host_path);
        File::open(guest_path)
            .map_err(|e| self.open_failure(&what.to_string(), host_path, guest_path, &e))
    }

    /// Reads the job file, at most MAX_JOB_FILE_BYTES, in chunks a host accepts.
    pub fn read_job_file(&self, what: &str, host_path: &str) -> Result<Vec<u8>, Failure> {
        let size = self.check_regular(&what, host_path)?;
        let mut file = self.open(&what, host_path)?;
        let size = match size {
            Some(size) => size,
            None => file.metadata().map(|m| m.len()).unwrap_or(0),
        };
        let too_big = |size: u64| {
            Failure::Job(format!(
                "cannot read {what} {}: it holds {size} bytes; a job file may hold at most \
                 {MAX_JOB_FILE_BYTES} (1 GiB)",
                quoted(host_path)
            ))
        };
        if size > MAX_JOB_FILE_BYTES {
            return Err(too_big(size));
        }
        let failed = |e: io::Error| {
            Failure::Job(format!(
                "cannot read {what} {}: {}",
                quoted(host_path),
                io_error(&e)
            ))
        };
        let out_of_memory = || failed(io::Error::new(io::ErrorKind::OutOfMemory, "out of memory"));
        let mut bytes: Vec<u8> = Vec::new();
        bytes
            .try_reserve_exact(
                usize::try_from(size)
                    .unwrap_or(usize::MAX)
                    .saturating_add(1),
            )
            .map_err(|_| out_of_memory())?;
        loop {
            let start = bytes.len();
            if bytes.capacity() == start {
                bytes.try_reserve(READ_CHUNK).map_err(|_| out_of_memory())?;
            }
            let room = (bytes.capacity() - start).min(READ_CHUNK);
            bytes.resize(start + room, 0);
            match file.read(&mut bytes[start..]) {
                Ok(0) => {
                    bytes.truncate(start);
                    return Ok(bytes);
                }
                Ok(n) => bytes.truncate(start + n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => bytes.truncate(start),
                Err(e) => return Err(failed(e)),
            }
            // The file grew while being read.
            if bytes.len() as u64 > MAX_JOB_FILE_BYTES {
                return Err(too_big(bytes.len() as u64));
            }
        }
    }

    /// Starts a set of outputs that appear at their paths only together.
    pub fn staged_outputs(&self) -> StagedOutputs<'_> {
        StagedOutputs {
            files: self,
            // A host that commits for us stages every write and commits only after a
            // clean exit: a temporary name and a rename per output would be wasted.
            write_in_place: self.paths.host_commits(),
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
                    "cannot open {what} {}: it is outside the sandbox (dtlto-runner gives the \
                     sandbox only the paths that exist when the run starts)",
                    quoted(host_path)
                )
            } else {
                sandbox_reach::unreachable_message(what, host_path, &preopens)
            };
            return Failure::Job(message);
        }
        let is_link = fs::symlink_metadata(guest_path).is_ok_and(|m| m.is_symlink());
        if is_link && !self.paths.is_mapped() {
            // WASI follows a link only within its preopened directory, and tells the
            // guest where a link leads only if that is a relative path.
            let target = fs::read_link(guest_path).ok();
            return Failure::Job(sandbox_reach::link_out_of_reach_message(
                what,
                host_path,
                target.as_ref().map(|t| t.to_string_lossy()).as_deref(),
                &preopens,
            ));
        }
        Failure::Job(format!(
            "cannot open {what} {}: {}",
            quoted(host_path),
            io_error(error)
        ))
    }
}

/// Outputs written to temporary files beside their final paths and moved into
/// place only once every one is complete (dtlto_mock::commit), so that a failed run
/// leaves no partial file at any declared output and every previous file as it was.
/// Dropping it uncommitted removes what it wrote.
pub struct StagedOutputs<'f> {
    files: &'f Files,
    /// Write final paths directly (the host stages and commits for us).
    write_in_place: bool,
    /// The move of each written output, from its temporary name.
    written: Vec<Move>,
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
                        "cannot read source {}: {}",
                        quoted(source_name),
                        io_error(&e)
                    )))
                }
            };
            output.write_all(&buffer.bytes[..n]).map_err(|e| {
                Failure::Job(format!(
                    "cannot write {what} {}: {}",
                    quoted(host_path),
                    io_error(&e)
                ))
            })?;
            left -= n as u64;
            // A short read is not the end: a FUSE file system in direct I/O (and a
            // source replaced by a pipe after the check) may give fewer bytes than
            // asked in the middle of a file. Only a read of 0 ends the copy.
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
        output.write_all(bytes).map_err(|e| {
            Failure::Job(format!(
                "cannot write {what} {}: {}",
                quoted(&shown),
                io_error(&e)
            ))
        })
    }

    /// Creates the file that will become `final_path` and records it. Temporary
    /// names are created exclusively: a file that happens to have one is never
    /// overwritten.
    fn create(&mut self, what: &str, host_path: &str, final_path: String) -> Result<File, Failure> {
        let failed = |e: &io::Error| self.files.open_failure(what, host_path, &final_path, e);
        if self.write_in_place {
            return File::create(&final_path).map_err(|e| failed(&e));
        }
        let (temp_path, output) =
            create_free(&format!("{final_path}.dtlto-partial")).map_err(|e| failed(&e))?;
        self.written.push(Move {
            label: what.to_owned(),
            from: temp_path,
            to: PathBuf::from(&final_path),
            aside: free_name(&format!("{final_path}.dtlto-previous")),
        });
        Ok(output)
    }

    /// Moves every written output to its final path, or none.
    pub fn commit(mut self) -> Result<(), Failure> {
        let written = std::mem::take(&mut self.written);
        match commit_all(&written, &|| None) {
            Ok(leftovers) => {
                for (path, error) in leftovers {
                    dtlto_mock::stderr_line!(
                        "warning: cannot remove the replaced file {}: {}",
                        quoted(&path.to_string_lossy()),
                        io_error(&error)
                    );
                }
                Ok(())
            }
            Err(error) => {
                for m in &written {
                    let _ = fs::remove_file(&m.from);
                }
                Err(Failure::Job(error.to_string()))
            }
        }
    }
}

impl Drop for StagedOutputs<'_> {
    fn drop(&mut self) {
        for m in &self.written {
            let _ = fs::remove_file(&m.from);
        }
    }
}

/// Creates `base`, or `base.2`, `base.3`... exclusively: the first free name.
fn create_free(base: &str) -> io::Result<(PathBuf, File)> {
    let mut last = None;
    for n in 1..100 {
        let path = if n == 1 {
            base.to_owned()
        } else {
            format!("{base}.{n}")
        };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((PathBuf::from(path), file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// `base`, or `base.2`, `base.3`...: the first name nothing has yet.
fn free_name(base: &str) -> PathBuf {
    (1..100)
        .map(|n| {
            if n == 1 {
                base.to_owned()
            } else {
                format!("{base}.{n}")
            }
        })
        .find(|path| fs::symlink_metadata(path).is_err())
        .map_or_else(|| PathBuf::from(base), PathBuf::from)
}
