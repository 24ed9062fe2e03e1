//! Reading the job file the way the guest will, so that the plan covers the files
//! the guest is going to read; a job file it cannot read plans no outputs.

use dtlto_mock::job_file::{self, JobFile, MAX_JOB_FILE_BYTES};
use dtlto_mock::json;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// Reads the job file as the guest will; `None` if it is unreadable or invalid, in
/// which case the guest reports why and nothing may be written. It must still be a
/// regular file within the size limit when opened (it was when planned).
pub(super) fn read_job_file(path: &Path) -> Option<JobFile> {
    let file = open_without_blocking(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_JOB_FILE_BYTES {
        return None;
    }
    // It may grow while being read: no more than the limit is taken. Sized to the
    // file first: growing by doubling copies and faults in a large file twice over.
    let mut text = String::with_capacity(usize::try_from(meta.len()).ok()?.saturating_add(1));
    file.take(MAX_JOB_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .ok()?;
    if text.len() as u64 > MAX_JOB_FILE_BYTES {
        return None;
    }
    let doc = json::parse(&text).ok()?;
    job_file::read(&doc).ok()
}

/// Opens for reading without waiting for a writer, should a FIFO have taken the
/// file's place since it was looked at.
fn open_without_blocking(path: &Path) -> io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}
