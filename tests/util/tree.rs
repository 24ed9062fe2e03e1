//! Snapshots of a directory tree, to prove what a run changed and what it left alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File {
        size: u64,
        hash: u64,
        modified: Option<std::time::SystemTime>,
        /// Which file it is: (inode number, link count); zero where the host has none.
        inode: (u64, u64),
    },
    Dir,
    Symlink(PathBuf),
    /// A FIFO, device or socket.
    Special,
}

impl Entry {
    /// The same entry without what differs between equal runs (mtime, inode).
    pub fn contents_only(self) -> Entry {
        match self {
            Entry::File { size, hash, .. } => Entry::File {
                size,
                hash,
                modified: None,
                inode: (0, 0),
            },
            other => other,
        }
    }
}

/// Everything under `root`, by path relative to it.
pub fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut entries = BTreeMap::new();
    snapshot_into(root, root, &mut entries);
    entries
}

/// Every entry under `root` with its kind and size, one per line.
pub fn listing(root: &Path) -> String {
    let mut out = format!("contents of {}:\n", root.display());
    for (name, entry) in snapshot(root) {
        let _ = writeln!(out, "  {name}  {entry:?}");
    }
    out
}

/// What changed between two snapshots, one line an entry, sorted by name:
/// `+ name` added, `- name` removed, `~ name` changed (content, mtime, inode or links).
pub fn changes(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| match (before.get(name), after.get(name)) {
            (None, Some(_)) => Some(format!("+ {name}")),
            (Some(_), None) => Some(format!("- {name}")),
            (Some(a), Some(b)) if a != b => Some(format!("~ {name}")),
            _ => None,
        })
        .collect()
}

/// Which file `meta` is, where the host says.
fn inode_of(meta: &fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (meta.ino(), meta.nlink())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        (0, 0)
    }
}

fn snapshot_into(root: &Path, dir: &Path, entries: &mut BTreeMap<String, Entry>) {
    let Ok(read) = fs::read_dir(dir) else { return };
    for entry in read.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path);
        // A name that is not Unicode is shown escaped, so that it cannot collide with
        // one that is.
        let name = match relative.to_str() {
            Some(name) => name.to_owned(),
            None => format!("{relative:?}"),
        };
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            entries.insert(
                name,
                Entry::Symlink(fs::read_link(&path).unwrap_or_default()),
            );
        } else if meta.is_dir() {
            entries.insert(name, Entry::Dir);
            snapshot_into(root, &path, entries);
        } else if meta.is_file() {
            let bytes = fs::read(&path).unwrap_or_default();
            entries.insert(
                name,
                Entry::File {
                    size: meta.len(),
                    hash: fnv1a(&bytes),
                    modified: meta.modified().ok(),
                    inode: inode_of(&meta),
                },
            );
        } else {
            entries.insert(name, Entry::Special);
        }
    }
}

/// A content fingerprint for snapshots (FNV-1a; collisions are not a concern here).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}
