//! What the WASI guard allows and what it has counted: the read scope of each preopen,
//! the `--max-output-bytes` and `--max-entries` budgets, and the bounded refusal record.

use crate::sandbox::FastSet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// Sets of names looked up on every open of a large link.
type NameSet = FastSet<Vec<u8>>;
/// What a guest gets for a name it may not read: WASI's `noent`, as if it were absent.
const ERRNO_NOENT: i32 = 44;
/// The first descriptor WASI gives a preopened directory: the runner preopens the
/// read-only directories first, in order, then the writable ones.
const FIRST_PREOPEN: i32 = 3;
/// Refused paths kept for the report; the rest are counted. A guest can make
/// refusals without end, each with a path as long as its memory: what is kept is
/// bounded in number, in bytes per path shown, and in bytes in all.
const REFUSALS_KEPT: usize = 1000;
/// Bytes of a guest path a refusal shows; a longer one is cut and its length given.
const PATH_SHOWN: usize = 256;
/// Bytes of refusal text kept in all (a refusal that would pass it is counted only).
const REFUSAL_BYTES_KEPT: usize = 1 << 20;
/// Names an open created that the guard remembers: none longer than `NAME_KEPT`
/// bytes, and `NAMES_KEPT_BYTES` in all, each counted with `NAME_OVERHEAD` for its
/// place in the set. A name not remembered is counted again if opened again.
pub(super) const NAME_KEPT: usize = 4096;
const NAMES_KEPT_BYTES: usize = 32 << 20;
const NAME_OVERHEAD: usize = 64;

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Checks {
    /// Bytes the staged files may grow by, in all.
    pub max_output_bytes: Option<u64>,
    /// Directory entries (files, directories, links) the guest may create, in all.
    pub max_entries: Option<u64>,
    /// Refuse paths with Windows drive, device or stream syntax.
    pub windows_paths: bool,
}

impl Checks {
    pub fn any(&self) -> bool {
        self.max_output_bytes.is_some() || self.max_entries.is_some() || self.windows_paths
    }
}

/// A read-only preopen as the guest may use it.
#[derive(Debug, Clone)]
pub struct ReadDir {
    /// The host directory, for the report of refused reads.
    pub host: PathBuf,
    /// The names in it the guest may reach; `None` for the whole tree (`--read`).
    pub names: Option<BTreeSet<String>>,
}

/// The state of the checks in one store.
pub struct Guard {
    pub(super) checks: Checks,
    /// Read-only preopens whose reach is limited to some names, by the descriptor the
    /// guest holds them under: they follow `fd_renumber` and `fd_close`.
    pub(super) scoped: BTreeMap<i32, usize>,
    read_dirs: Vec<(PathBuf, NameSet)>,
    /// Bytes the staged files grew by so far.
    pub(super) written: u64,
    /// Entries created so far.
    pub(super) created: u64,
    /// Names (under a directory descriptor) that an open created or counted as
    /// created since names last moved: opening one again to rewrite it creates
    /// nothing. A rename, an unlink or a removal forgets them all, and closing a
    /// descriptor those under it, so that a name is never taken for an entry that
    /// is gone; at worst an entry is counted twice.
    pub(super) opened_names: HashMap<i32, NameSet>,
    /// What `opened_names` holds, in bytes, each name with `NAME_OVERHEAD`.
    opened_bytes: usize,
    /// Descriptors that are the guest's stdin, stdout and stderr: writes to them are
    /// not staged. They follow `fd_renumber` and `fd_close`.
    pub(super) stdio: BTreeSet<i32>,
    /// The cap the guest ran into, in words.
    pub exceeded: Option<String>,
    /// Guest paths refused, with the reason, for the report: at most
    /// `REFUSALS_KEPT`, of `REFUSAL_BYTES_KEPT` bytes in all.
    pub refused_paths: Vec<String>,
    /// The bytes of `refused_paths`.
    refused_bytes: usize,
    /// The guest's exported memory, once instantiated: looking it up by name costs a
    /// string hash in every call.
    pub memory: Option<wasmtime::Memory>,
    /// Refusals beyond those kept.
    pub refused_more: usize,
}

impl Guard {
    /// The checks, over the read-only preopens `read_dirs` in the order they are
    /// preopened.
    pub fn new(checks: Checks, read_dirs: &[ReadDir]) -> Guard {
        let mut scoped = BTreeMap::new();
        let mut dirs = Vec::new();
        for (i, dir) in read_dirs.iter().enumerate() {
            if let Some(names) = &dir.names {
                scoped.insert(FIRST_PREOPEN + i as i32, dirs.len());
                let names = names.iter().map(|n| n.as_bytes().to_vec()).collect();
                dirs.push((dir.host.clone(), names));
            }
        }
        Guard {
            checks,
            scoped,
            read_dirs: dirs,
            written: 0,
            created: 0,
            opened_names: HashMap::new(),
            opened_bytes: 0,
            stdio: BTreeSet::from([0, 1, 2]),
            exceeded: None,
            refused_paths: Vec::new(),
            refused_bytes: 0,
            refused_more: 0,
            memory: None,
        }
    }

    /// Whether any read-only preopen is limited to some names.
    pub fn scopes_reads(&self) -> bool {
        !self.scoped.is_empty()
    }

    /// Records a refusal, `what` says it (it is made only if it is kept).
    pub(super) fn refuse(&mut self, what: impl FnOnce(&Guard) -> String) {
        if self.refused_paths.len() < REFUSALS_KEPT {
            let what = what(self);
            if self.refused_bytes + what.len() <= REFUSAL_BYTES_KEPT {
                self.refused_bytes += what.len();
                self.refused_paths.push(what);
                return;
            }
        }
        self.refused_more += 1;
    }

    /// `Some(ENOENT)` if `path` under `fd` reaches beyond the names granted in a
    /// scoped read-only preopen: the guest sees it as absent. A granted name may be
    /// written with `.` components and doubled separators, which change nothing; `..`,
    /// subdirectories and the directory itself are never granted.
    pub(super) fn refuse_read(&mut self, call: &str, fd: i32, path: &[u8]) -> Option<i32> {
        if self.may_read(fd, path) {
            return None;
        }
        let dir = *self.scoped.get(&fd)?;
        self.refuse(|guard| {
            let (host, _) = &guard.read_dirs[dir];
            let (shown, cut) = shown_path(path);
            let on_host = host.join(String::from_utf8_lossy(shown).as_ref());
            let host_cut = if cut.is_empty() { "" } else { "..." };
            format!(
                "{call} {}{cut}: undeclared input {}{host_cut}; the guest saw it as absent",
                dtlto_mock::message::quoted(&String::from_utf8_lossy(shown)),
                dtlto_mock::message::quoted(&on_host.to_string_lossy())
            )
        });
        Some(ERRNO_NOENT)
    }

    /// Whether `path` under `fd` is within reach: `fd` is no scoped read-only preopen,
    /// or `path` names one of the names granted in it.
    fn may_read(&self, fd: i32, path: &[u8]) -> bool {
        let Some(&dir) = self.scoped.get(&fd) else {
            return true;
        };
        let names = &self.read_dirs[dir].1;
        let mut parts = path
            .split(|&b| b == b'/')
            .filter(|part| !part.is_empty() && *part != b".");
        // A trailing separator asks for a directory, which is never granted.
        matches!(
            (parts.next(), parts.next(), path.ends_with(b"/")),
            (Some(name), None, false) if name != b".." && names.contains(name)
        )
    }

    /// Names may stop naming what they named: none is taken for created any more.
    pub(super) fn forget_names(&mut self) {
        self.opened_names.clear();
        self.opened_bytes = 0;
    }

    /// Remembers that an open under `fd` created `name`, within the bounds above.
    pub(super) fn remember_name(&mut self, fd: i32, name: Vec<u8>) {
        let bytes = name.len() + NAME_OVERHEAD;
        if self.opened_bytes + bytes <= NAMES_KEPT_BYTES
            && self.opened_names.entry(fd).or_default().insert(name)
        {
            self.opened_bytes += bytes;
        }
    }

    /// After `fd` was closed, or replaced by another descriptor.
    pub(super) fn forget(&mut self, fd: i32) {
        self.stdio.remove(&fd);
        self.scoped.remove(&fd);
        if let Some(names) = self.opened_names.remove(&fd) {
            let bytes: usize = names.iter().map(|n| n.len() + NAME_OVERHEAD).sum();
            self.opened_bytes = self.opened_bytes.saturating_sub(bytes);
        }
    }

    /// A trap that ends the guest if `growth` more bytes of staged output would pass
    /// the cap.
    fn room_for(&mut self, growth: u64) -> wasmtime::Result<()> {
        let Some(cap) = self.checks.max_output_bytes else {
            return Ok(());
        };
        if self.written.saturating_add(growth) > cap {
            let message = format!(
                "the distributor tried to stage more than {cap} bytes of output \
                 (--max-output-bytes {cap})"
            );
            self.exceeded.get_or_insert(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(())
    }

    /// Charges `growth` bytes of staged output to the cap, as `room_for` refuses.
    pub(super) fn charge_staged(&mut self, growth: u64) -> wasmtime::Result<()> {
        self.room_for(growth)?;
        self.written = self.written.saturating_add(growth);
        Ok(())
    }

    /// A staged file was seen to change from `before` to `after` bytes: growth is
    /// charged, shrinking (set-size, truncation) gives back what it frees. Every byte
    /// of a staged file was charged when it grew, so what is charged stays at least
    /// the size of what is staged (an unlinked file stays charged).
    pub(super) fn resized(&mut self, before: u64, after: u64) -> wasmtime::Result<()> {
        if after >= before {
            self.charge_staged(after - before)
        } else {
            self.written = self.written.saturating_sub(before - after);
            Ok(())
        }
    }

    /// Before an entry is created: a trap if it would be one too many.
    pub(super) fn may_create(&mut self) -> wasmtime::Result<()> {
        let Some(cap) = self.checks.max_entries else {
            return Ok(());
        };
        if self.created >= cap {
            let message = format!(
                "the distributor tried to create more than {cap} files, directories and \
                 links (--max-entries {cap})"
            );
            self.exceeded.get_or_insert(message.clone());
            return Err(wasmtime::Error::msg(message));
        }
        Ok(())
    }
}

/// The part of a guest path a message shows (at most `PATH_SHOWN` bytes), and what
/// to say after it if it was cut.
pub(super) fn shown_path(path: &[u8]) -> (&[u8], String) {
    match path.get(..PATH_SHOWN) {
        Some(shown) if path.len() > PATH_SHOWN => (
            shown,
            format!("... ({} bytes, the first {PATH_SHOWN} shown)", path.len()),
        ),
        _ => (path, String::new()),
    }
}
