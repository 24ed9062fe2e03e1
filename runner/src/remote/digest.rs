//! SHA-256 digests of blobs and files, and the persisted digest cache: a file is hashed
//! again only when its identity (device, inode), size, mtime or ctime changed, so a
//! toolchain of hundreds of megabytes is hashed once, not every link.
//!
//! The cache is a text file, one entry a line, written to a temporary name and
//! renamed (so a reader never sees half a file), merged with what another run wrote
//! meanwhile, and read leniently: a line that does not parse is skipped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bazel_remote_apis::build::bazel::remote::execution::v2::Digest;
use sha2::{Digest as _, Sha256};

/// The digest of bytes in memory.
pub(crate) fn of_bytes(bytes: &[u8]) -> Digest {
    Digest {
        hash: hex(&Sha256::digest(bytes)),
        size_bytes: bytes.len() as i64,
    }
}

/// `hash/size`, as REAPI resource names and messages spell a digest.
pub(crate) fn show(digest: &Digest) -> String {
    format!("{}/{}", digest.hash, digest.size_bytes)
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Hashes a reader to its end: the digest and the number of bytes read.
pub(crate) fn of_reader(mut reader: impl Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Digest {
        hash: hex(&hasher.finalize()),
        size_bytes: size as i64,
    })
}

/// What identifies one version of a file: if none of it changed, neither did the bytes
/// (short of someone resetting both timestamps, which ctime makes hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    /// The key of a file's metadata; `None` where the platform gives no inode
    /// (Windows: such files are hashed every time).
    #[cfg(unix)]
    pub(crate) fn of(md: &std::fs::Metadata) -> Option<FileKey> {
        use std::os::unix::fs::MetadataExt;
        Some(FileKey {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        })
    }

    /// The key of a file's metadata; `None` where the platform gives no inode
    /// (Windows: such files are hashed every time).
    #[cfg(not(unix))]
    pub(crate) fn of(_md: &std::fs::Metadata) -> Option<FileKey> {
        None
    }

    /// Whether the file changed so recently that another change within the same
    /// timestamp tick could go unseen (git's "racy" files): such keys are not stored.
    fn is_racy(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs() as i64;
        // Two seconds covers file systems with one- or two-second timestamps.
        self.mtime.0 >= now - 2 || self.ctime.0 >= now - 2
    }

    fn to_line(self, digest: &Digest) -> String {
        format!(
            "{} {} {} {} {} {} {} {}\n",
            self.dev,
            self.ino,
            self.size,
            self.mtime.0,
            self.mtime.1,
            self.ctime.0,
            self.ctime.1,
            digest.hash
        )
    }

    fn from_line(line: &str) -> Option<(FileKey, Digest)> {
        let mut f = line.split(' ');
        let mut num = || f.next()?.parse::<i64>().ok();
        let (dev, ino, size) = (num()? as u64, num()? as u64, num()? as u64);
        let mtime = (num()?, num()?);
        let ctime = (num()?, num()?);
        let hash = f.next()?;
        if f.next().is_some()
            || hash.len() != 64
            || !hash
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            return None;
        }
        let key = FileKey {
            dev,
            ino,
            size,
            mtime,
            ctime,
        };
        let digest = Digest {
            hash: hash.to_string(),
            size_bytes: size as i64,
        };
        Some((key, digest))
    }
}

/// The first line of the cache file; another line means another format, ignored.
const HEADER: &str = "dtlto-mock remote digest cache v1\n";
/// Bounds the file: beyond this many entries, a save keeps only this run's.
const MAX_ENTRIES: usize = 200_000;

/// File digests by file identity, loaded from and saved to one file.
pub(crate) struct DigestCache {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<FileKey, Digest>>,
    /// Entries added by this run (what a save must not lose).
    added: Mutex<HashMap<FileKey, Digest>>,
}

impl DigestCache {
    /// The cache in `path` (none: in memory only). A missing or unreadable file is an
    /// empty cache.
    pub(crate) fn load(path: Option<PathBuf>) -> DigestCache {
        let entries = path.as_deref().map(read_entries).unwrap_or_default();
        DigestCache {
            path,
            entries: Mutex::new(entries),
            added: Mutex::new(HashMap::new()),
        }
    }

    /// Where the cache lives by default: `$XDG_CACHE_HOME/dtlto-mock/` or
    /// `~/.cache/dtlto-mock/` (`%LOCALAPPDATA%\dtlto-mock\` on Windows).
    pub(crate) fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .or_else(|| {
                std::env::var_os("LOCALAPPDATA")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })?;
        Some(base.join("dtlto-mock").join("remote-digests-v1"))
    }

    /// The digest of the file at `path` (links followed), and how many bytes were
    /// hashed to get it (0 when the cache knew it).
    pub(crate) fn file(&self, path: &Path) -> io::Result<(Digest, u64)> {
        let file = File::open(path)?;
        let before = file.metadata()?;
        if !before.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let key = FileKey::of(&before);
        if let Some(key) = key {
            if let Some(d) = lock(&self.entries).get(&key) {
                return Ok((d.clone(), 0));
            }
        }
        let now = SystemTime::now();
        let digest = of_reader(&file)?;
        let hashed = digest.size_bytes as u64;
        // Stored only if the file did not change while it was read, and is not racy.
        if let Some(key) = key {
            let after = FileKey::of(&file.metadata()?);
            if after == Some(key) && key.size == hashed && !key.is_racy(now) {
                lock(&self.entries).insert(key, digest.clone());
                lock(&self.added).insert(key, digest.clone());
            }
        }
        Ok((digest, hashed))
    }

    /// Writes this run's new entries, merged with the file as it is now, atomically.
    pub(crate) fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let added = lock(&self.added).clone();
        if added.is_empty() {
            return Ok(());
        }
        let mut all = read_entries(path);
        if all.len() + added.len() > MAX_ENTRIES {
            all.clear();
        }
        all.extend(added);
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut text = String::from(HEADER);
        for (key, digest) in &all {
            text.push_str(&key.to_line(digest));
        }
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(text.as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

fn read_entries(path: &Path) -> HashMap<FileKey, Digest> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let Some(body) = text.strip_prefix(HEADER) else {
        return HashMap::new();
    };
    body.lines().filter_map(FileKey::from_line).collect()
}

/// A poisoned lock still holds a consistent map (every update is one insert).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_bytes() {
        let d = of_bytes(b"");
        assert_eq!(
            d.hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.size_bytes, 0);
        let d = of_bytes(b"abc");
        assert_eq!(
            d.hash,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(of_reader(&b"abc"[..]).unwrap(), d);
    }

    #[cfg(unix)]
    #[test]
    fn identity_rules_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let cache_path = dir.path().join("cache/digests");
        let a = dir.path().join("a");
        std::fs::write(&a, b"hello").unwrap();
        // A fresh file is racy: hashed every time, never stored.
        let cache = DigestCache::load(Some(cache_path.clone()));
        assert_eq!(cache.file(&a).unwrap().1, 5);
        assert_eq!(cache.file(&a).unwrap().1, 5);
        // Once it is older than the racy window it is stored, and found by identity.
        std::thread::sleep(Duration::from_millis(3100));
        assert_eq!(cache.file(&a).unwrap().1, 5);
        let (d, hashed) = cache.file(&a).unwrap();
        assert_eq!((d, hashed), (of_bytes(b"hello"), 0));
        cache.save().unwrap();
        // Another run loads it: nothing hashed.
        let again = DigestCache::load(Some(cache_path.clone()));
        assert_eq!(again.file(&a).unwrap().1, 0);
        // A changed file (same size, new content) has a new ctime and mtime: hashed.
        std::fs::write(&a, b"world").unwrap();
        let (d, hashed) = again.file(&a).unwrap();
        assert_eq!((d, hashed), (of_bytes(b"world"), 5));
        // A rename keeps the identity (the same inode): still known.
        std::thread::sleep(Duration::from_millis(3100));
        let b = dir.path().join("b");
        let _ = again.file(&a).unwrap();
        std::fs::rename(&a, &b).unwrap();
        // rename changes ctime on some file systems; either way the digest is right.
        assert_eq!(again.file(&b).unwrap().0, of_bytes(b"world"));
    }

    #[test]
    fn corrupt_cache_files_are_ignored_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("digests");
        let good = FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (4, 5),
            ctime: (6, 7),
        };
        let d = Digest {
            hash: "ab".repeat(32),
            size_bytes: 3,
        };
        let text = format!(
            "{HEADER}garbage\n1 2\n{}{}",
            good.to_line(&d),
            "9 9 9 9 9 9 9 XYZ\n"
        );
        std::fs::write(&p, text).unwrap();
        let entries = read_entries(&p);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[&good], d);
        // Another header (another format, or binary junk): nothing, no error.
        std::fs::write(&p, b"\xff\xfe junk").unwrap();
        assert!(read_entries(&p).is_empty());
        std::fs::write(&p, "other v9\n1 2 3 4 5 6 7 ab\n").unwrap();
        assert!(read_entries(&p).is_empty());
    }

    #[test]
    fn save_merges_with_another_runs_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("digests");
        let k1 = FileKey {
            dev: 1,
            ino: 1,
            size: 3,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        let k2 = FileKey {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        let d = Digest {
            hash: "cd".repeat(32),
            size_bytes: 3,
        };
        let one = DigestCache::load(Some(p.clone()));
        let two = DigestCache::load(Some(p.clone()));
        lock(&one.added).insert(k1, d.clone());
        lock(&two.added).insert(k2, d.clone());
        one.save().unwrap();
        two.save().unwrap();
        let entries = read_entries(&p);
        assert!(entries.contains_key(&k1) && entries.contains_key(&k2));
    }
}
