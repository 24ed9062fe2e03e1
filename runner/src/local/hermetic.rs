//! What `--hermetic` lets a job read besides its declared inputs: its compiler's
//! installation and the system's loader and libraries, each checked never to widen
//! to the job's own tree or to `/`.

use crate::jobs::args;
use crate::jobs::job_file::full_args;
use dtlto_mock::job_file::JobFile;
use dtlto_mock::message::quoted;
use std::path::{Path, PathBuf};

/// What a job may read besides its inputs and its compiler, with `--hermetic`: the
/// dynamic loader, its configuration and the system's shared libraries, and the
/// devices a compiler opens. (`/proc/self` is granted by the child itself, see
/// confine.rs.)
pub(super) const SYSTEM_READS: &[&str] = &[
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/dev/null",
    "/dev/urandom",
];

/// What every job may read under `--hermetic` besides its declared inputs: its
/// compiler's installation, the system's libraries and loader files
/// (`SYSTEM_READS`) and the directories of `LD_LIBRARY_PATH`. `Err` says why
/// `--hermetic` cannot keep its promise: a grant that would hold the job's own
/// files (the working directory, its inputs' and outputs' directories) or the whole
/// of `/`, or a job that asks for its temporaries in the working directory.
pub(super) fn hermetic_reads(job_file: &JobFile, cwd: &Path) -> Result<Vec<PathBuf>, String> {
    for i in 0..job_file.jobs.len() {
        if args::asks_for_temporaries_in_cwd(&full_args(job_file, i)) {
            return Err(format!(
                "jobs[{i}] asks for -save-temps, whose temporaries land in the working \
                 directory {}; Landlock cannot let a job read only the files it created \
                 itself, so writing there would let it read everything there, declared or \
                 not (run it without --hermetic, or without -save-temps)",
                quoted(&cwd.to_string_lossy())
            ));
        }
    }
    let own = own_dirs(job_file, cwd);
    let program = &job_file.common.args[0];
    let mut reads: Vec<(PathBuf, String)> = Vec::new();
    if let Some(tree) = compiler_tree(program, cwd) {
        reads.push((
            tree.clone(),
            format!(
                "the compiler {}'s installation {}",
                quoted(program),
                quoted(&tree.to_string_lossy())
            ),
        ));
    }
    for path in SYSTEM_READS {
        reads.push((
            PathBuf::from(path),
            format!("the system's {}", quoted(path)),
        ));
    }
    // The loader reads the compiler's libraries from there too.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        for dir in std::env::split_paths(&paths).filter(|p| p.is_absolute()) {
            let words = format!("LD_LIBRARY_PATH's {}", quoted(&dir.to_string_lossy()));
            reads.push((dir, words));
        }
    }
    let mut granted = Vec::with_capacity(reads.len());
    for (path, words) in reads {
        // What the grant really is: Landlock follows links when it opens the path.
        let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if real.parent().is_none() {
            return Err(format!(
                "{words} is the root directory: granting it would let every job read \
                 everything"
            ));
        }
        if let Some(held) = own.iter().find(|dir| dir.starts_with(&real)) {
            return Err(format!(
                "{words} holds {}, where the jobs' own files are (the working directory, \
                 their inputs' and outputs' directories): granting it would let a job read \
                 undeclared files there",
                quoted(&held.to_string_lossy())
            ));
        }
        granted.push(path);
    }
    Ok(granted)
}

/// The directories of the jobs' own files: the working directory and the
/// directories of every input and output, canonical where they exist.
pub(super) fn own_dirs(job_file: &JobFile, cwd: &Path) -> Vec<PathBuf> {
    let files = job_file.common.inputs.iter().chain(
        job_file
            .jobs
            .iter()
            .flat_map(|job| job.inputs.iter().chain(&job.outputs)),
    );
    let mut dirs = vec![cwd.to_path_buf()];
    for file in files {
        if let Some(dir) = cwd.join(file).parent() {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
    }
    dirs.into_iter()
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir))
        .collect()
}

/// The compiler's installation: `program` found as the system finds it (on PATH if
/// it has no separator), then its real file (links resolved, so that a link in
/// `~/bin` does not stand for `~`): the tree above the real file's `bin` directory
/// (where clang's resource directory and libraries are), or its own directory
/// otherwise.
pub(super) fn compiler_tree(program: &str, cwd: &Path) -> Option<PathBuf> {
    let found = if program.contains(std::path::MAIN_SEPARATOR) || program.contains('/') {
        Some(cwd.join(program))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| cwd.join(dir).join(program))
                .find(|candidate| candidate.is_file())
        })
    };
    let real = std::fs::canonicalize(found?).ok()?;
    let dir = real.parent()?;
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(root)) if name == "bin" => Some(root.to_path_buf()),
        _ => Some(dir.to_path_buf()),
    }
}
