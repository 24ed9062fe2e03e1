//! Resolving a planned path as the host will: its canonical directory, its entry, and
//! where links lead; facts kept per directory, as thousands of paths share a few.

use super::paths::{comparison_key, PathStyle};
use super::{file_id, FastMap};
use dtlto_mock::message::io_error;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// At most this many links are followed in a chain, as Linux follows them (then the
/// chain counts as a loop: ELOOP).
const MAX_LINK_HOPS: usize = 40;

/// Where the chain of links that starts at `link` ends when it ends at nothing: the
/// entry that the last link names (canonical directory and name), which writing an
/// output there would create. `None` for a loop, or a chain that cannot be read.
fn dangling_end(link: &Path) -> Option<PathBuf> {
    let mut current = link.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        let written = fs::read_link(&current).ok()?;
        let next = current.parent()?.join(written);
        match fs::symlink_metadata(&next) {
            Ok(meta) if meta.file_type().is_symlink() => current = next,
            _ => {
                let parent = fs::canonicalize(next.parent()?).ok()?;
                return Some(parent.join(next.file_name()?));
            }
        }
    }
    None
}

/// The entries of `dir` and their types; `None` if it cannot be listed.
fn list(dir: &Path) -> Option<FastMap<String, fs::FileType>> {
    let mut listing = FastMap::default();
    for entry in fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        // Paths in a job file are text: a name that is not UTF-8 is none of them, and
        // a lossy key could make it look like one.
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        // From the directory entry where the file system records it, else lstat.
        listing.insert(name, entry.file_type().ok()?);
    }
    Some(listing)
}

/// From this many planned paths in one directory on, the planner lists the directory
/// once instead of `lstat`ing each path (a link of 10,000 jobs names 50,000 paths in
/// two or three directories).
const LIST_FROM: usize = 64;

/// A directory as a path names it.
#[derive(Default)]
pub(super) struct WrittenDir {
    /// How many of the planned paths lie in it.
    pub(super) paths: usize,
    /// Its canonical directory (an index into `Resolver::dirs`), once resolved.
    pub(super) canonical: Option<Result<usize, Unreachable>>,
}

/// What the planner learnt of a canonical directory, each fact when first needed.
pub(super) struct DirFacts {
    pub(super) path: PathBuf,
    /// Its identity (device and file number): one directory reached by two paths (a
    /// bind mount, another drive letter) is one directory.
    pub(super) id: Option<Option<String>>,
    /// The type of each entry, by name; `Some(None)` if it could not be listed.
    /// Listings serve only hosts whose names match byte for byte, where two names in
    /// one directory are one entry exactly when they are equal.
    pub(super) listing: Option<Option<FastMap<String, fs::FileType>>>,
    /// Its index in the plan's `read_dirs`, once preopened for reading.
    pub(super) read_dir: Option<usize>,
    /// Its index in the plan's `output_dirs`, once it receives an output.
    pub(super) output_dir: Option<usize>,
}

/// A path resolved the way the host will resolve it, up to its last name.
pub(super) struct Resolved {
    /// Canonical directory that holds it (an index into `Resolver::dirs`).
    pub(super) dir: usize,
    /// Its name in that directory.
    pub(super) name: String,
    /// Keys naming it (see `entry_key`): the entry itself and, if it is a link, what
    /// it leads to.
    pub(super) keys: Vec<String>,
    /// The entry's own type (not following a link); `None` if there is none.
    pub(super) entry_type: Option<fs::FileType>,
}

/// What a path to read leads to, links followed.
pub(super) struct Target {
    /// Its canonical directory (an index into `Resolver::dirs`).
    pub(super) dir: usize,
    pub(super) name: String,
    pub(super) file_type: fs::FileType,
    /// The link it was reached through, if any.
    pub(super) via_link: bool,
}

/// Why a directory cannot be reached.
#[derive(Debug, Clone)]
pub(super) struct Unreachable {
    /// It does not exist (not some other failure, such as permission denied).
    pub(super) missing: bool,
    /// The OS's words.
    pub(super) reason: String,
}

impl Unreachable {
    fn new(error: &io::Error) -> Self {
        Unreachable {
            // Windows says "invalid name" for a name it cannot hold (a control
            // character), which no directory holds either.
            missing: matches!(
                error.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::InvalidFilename
            ),
            reason: io_error(error),
        }
    }
}

/// Why a path cannot be resolved.
pub(super) enum Unresolved {
    /// It ends in `..`, `.` or a separator, or is not Unicode.
    NoFileName,
    /// Its directory cannot be reached.
    NoDirectory(Unreachable),
}

/// What the planner knows of the host's file system: the directories met, each
/// resolved once, so that thousands of paths cost a lookup each.
pub(super) struct Resolver<'a> {
    pub(super) cwd: &'a Path,
    pub(super) style: PathStyle,
    /// Directory as written -> what the planner knows of it. Thousands of paths
    /// share a few directories: each path costs one lookup here.
    written_dirs: FastMap<PathBuf, WrittenDir>,
    /// Canonical directories met so far, and their index in `dirs`.
    dir_index: FastMap<PathBuf, usize>,
    pub(super) dirs: Vec<DirFacts>,
    /// Entries that exist, or may, but cannot be looked at (permission denied).
    pub(super) unreachable_entries: FastMap<PathBuf, Unreachable>,
}

impl<'a> Resolver<'a> {
    /// A resolver of paths relative to `cwd`.
    pub(super) fn new(cwd: &'a Path) -> Self {
        Resolver {
            cwd,
            style: PathStyle::host(),
            written_dirs: FastMap::default(),
            dir_index: FastMap::default(),
            dirs: Vec::new(),
            unreachable_entries: FastMap::default(),
        }
    }
}

impl Resolver<'_> {
    /// What the resolver learnt, owned, to be freed apart from the run.
    pub(super) fn into_learnt(self) -> impl Send + 'static {
        (
            self.written_dirs,
            self.dir_index,
            self.dirs,
            self.unreachable_entries,
        )
    }

    /// The key that is equal for two names exactly when the host takes them for one
    /// directory entry: the directory's identity and the name (case-folded where the
    /// host folds case); the path's text where the directory cannot be identified.
    fn entry_key(&mut self, dir: usize, name: &str) -> String {
        let facts = &mut self.dirs[dir];
        let id = facts
            .id
            .get_or_insert_with(|| file_id::of_path(&facts.path).ok().map(|id| id.as_key()));
        match id {
            Some(id) => {
                let folded;
                let name = match self.style {
                    PathStyle::Posix => name,
                    PathStyle::PosixCaseInsensitive | PathStyle::Windows => {
                        folded = name.to_lowercase();
                        &folded
                    }
                };
                // Built by hand: `format!` costs more than the key for every path.
                let mut key = String::with_capacity(id.len() + 1 + name.len());
                key.push_str(id);
                key.push('/');
                key.push_str(name);
                key
            }
            None => comparison_key(&facts.path.join(name).to_string_lossy(), self.style),
        }
    }

    /// The index of the canonical directory `path` in `dirs`.
    pub(super) fn intern(&mut self, path: PathBuf) -> usize {
        if let Some(&index) = self.dir_index.get(&path) {
            return index;
        }
        self.dirs.push(DirFacts {
            path: path.clone(),
            id: None,
            listing: None,
            read_dir: None,
            output_dir: None,
        });
        self.dir_index.insert(path, self.dirs.len() - 1);
        self.dirs.len() - 1
    }

    /// The key of what the link `link` leads to at the end of its chain, even if that
    /// does not exist yet: an output may not become a dangling input's target.
    fn link_target_key(&mut self, link: &Path) -> Option<String> {
        let target = match fs::canonicalize(link) {
            Ok(target) => target,
            Err(_) => dangling_end(link)?,
        };
        let name = target.file_name()?.to_str()?.to_owned();
        let parent = self.intern(target.parent()?.to_path_buf());
        Some(self.entry_key(parent, &name))
    }

    pub(super) fn count_dirs<'p>(&mut self, paths: impl Iterator<Item = &'p String>) {
        for path in paths {
            if let Some(dir) = self.cwd.join(path).parent() {
                match self.written_dirs.get_mut(dir) {
                    Some(written) => written.paths += 1,
                    None => {
                        let written = WrittenDir {
                            paths: 1,
                            canonical: None,
                        };
                        self.written_dirs.insert(dir.to_path_buf(), written);
                    }
                }
            }
        }
    }

    /// The type of the entry `dir`/`name`, as `lstat` reports it; `None` if there is
    /// none. `many` says whether enough paths lie in `dir` to list it.
    fn entry_type(&mut self, dir: usize, name: &str, many: bool) -> Option<fs::FileType> {
        let facts = &mut self.dirs[dir];
        // Only where names match byte for byte is a listing the whole truth: file systems
        // that ignore case may also match names that differ in Unicode normalisation.
        if many && self.style == PathStyle::Posix {
            let listing = facts.listing.get_or_insert_with(|| list(&facts.path));
            if let Some(listing) = listing {
                return listing.get(name).copied();
            }
        }
        let dir = &facts.path;
        match fs::symlink_metadata(dir.join(name)) {
            Ok(meta) => Some(meta.file_type()),
            Err(e) => {
                let why = Unreachable::new(&e);
                if !why.missing {
                    self.unreachable_entries.insert(dir.join(name), why);
                }
                None
            }
        }
    }

    /// The canonical directory (an index into `dirs`) of the directory `dir` as
    /// written, and whether enough planned paths lie in it to list it.
    fn canonical_dir(&mut self, dir: &Path) -> Result<(usize, bool), Unreachable> {
        if let Some(written) = self.written_dirs.get(dir) {
            let many = written.paths >= LIST_FROM;
            if let Some(known) = &written.canonical {
                return known.clone().map(|index| (index, many));
            }
        }
        let canonical = fs::canonicalize(dir)
            .and_then(|d| match fs::metadata(&d)?.is_dir() {
                true => Ok(d),
                false => Err(io::Error::from(io::ErrorKind::NotADirectory)),
            })
            .map(|d| self.intern(d))
            .map_err(|e| Unreachable::new(&e));
        let written = self.written_dirs.entry(dir.to_path_buf()).or_default();
        written.canonical = Some(canonical.clone());
        let many = written.paths >= LIST_FROM;
        canonical.map(|index| (index, many))
    }

    /// Resolves `path` against the working directory: its canonical directory (which
    /// must exist) and name. One `lstat` per path, or one listing per crowded
    /// directory; only a link needs more.
    pub(super) fn resolve(&mut self, path: &str) -> Result<Resolved, Unresolved> {
        let joined = self.cwd.join(path);
        let name = joined
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !matches!(*n, "." | ".."))
            .ok_or(Unresolved::NoFileName)?
            .to_owned();
        let parent = joined.parent().ok_or(Unresolved::NoFileName)?;
        let (index, many) = self
            .canonical_dir(parent)
            .map_err(Unresolved::NoDirectory)?;
        let entry_type = self.entry_type(index, &name, many);
        let mut keys = vec![self.entry_key(index, &name)];
        if entry_type.is_some_and(|t| t.is_symlink()) {
            let link = self.dirs[index].path.join(&name);
            keys.extend(self.link_target_key(&link));
        }
        Ok(Resolved {
            dir: index,
            name,
            keys,
            entry_type,
        })
    }
}
