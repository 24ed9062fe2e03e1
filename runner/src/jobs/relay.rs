//! Relaying a job's output to the runner's own: whole lines at a time, so that no
//! two jobs' lines mix, and never failing a job for a closed stdout or stderr.

use std::io::{Read, Write};
use std::thread::JoinHandle;

/// The longest line relayed whole: a longer one is passed on in pieces of this
/// size, which another job's lines may come between. With the read buffer, a relay
/// holds at most `RELAY_LINE + RELAY_READ` bytes.
pub const RELAY_LINE: usize = 64 * 1024;
pub const RELAY_READ: usize = 8 * 1024;

/// Copies a job's output to ours whole lines at a time (see `RELAY_LINE`).
pub fn relay_lines(from: impl Read + Send + 'static, to_stderr: bool) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut from = from;
        let mut held: Vec<u8> = Vec::with_capacity(RELAY_LINE + RELAY_READ);
        let mut read = vec![0u8; RELAY_READ];
        // A closed stdout or stderr loses the lines, never the job.
        let pass_on = |bytes: &[u8]| {
            let _ = if to_stderr {
                std::io::stderr().lock().write_all(bytes)
            } else {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            };
        };
        loop {
            let n = match from.read(&mut read) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            held.extend_from_slice(&read[..n]);
            if let Some(last) = held.iter().rposition(|&b| b == b'\n') {
                pass_on(&held[..=last]);
                held.drain(..=last);
            }
            if held.len() >= RELAY_LINE {
                pass_on(&held);
                held.clear();
            }
        }
        if !held.is_empty() {
            pass_on(&held);
        }
    })
}

/// Passes on a job's whole output at once (a remote job's, which arrives whole): no
/// other job's lines come between its own.
pub fn relay_whole(bytes: &[u8], to_stderr: bool) {
    if bytes.is_empty() {
        return;
    }
    let _ = if to_stderr {
        std::io::stderr().lock().write_all(bytes)
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    };
}
