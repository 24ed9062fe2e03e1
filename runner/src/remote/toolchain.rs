//! The compiler an action runs, found as a shell would find it, and what it loads,
//! found as the dynamic loader would: its ELF interpreter and the closure of its
//! shared libraries (RPATH/RUNPATH with `$ORIGIN`, `LD_LIBRARY_PATH`, `ld.so.conf`,
//! the system directories). Each file goes into the input root at its real path, and
//! each symbolic link met on the way (`/lib64 -> usr/lib64`, `bin/clang -> clang-23`)
//! as a link, so every path the loader takes on this machine leads to the same file
//! in a worker's sandbox, which has no loader cache and no `PATH`.
//!
//! Linux (glibc) semantics; on other hosts the compiler is shipped alone (macOS and
//! Windows compilers cannot run on Linux workers anyway: use `ship_toolchain = false`).

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Component, Path, PathBuf};

/// One entry of the toolchain's part of the input root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A file at its real, absolute path.
    File { path: PathBuf, executable: bool },
    /// A symbolic link at an absolute path, with a target relative to its directory.
    Symlink { path: PathBuf, target: String },
}

/// The compiler and what it loads.
#[derive(Debug, Clone)]
pub(crate) struct Toolchain {
    /// argv\[0\] to send: the compiler's absolute path, links resolved.
    pub compiler: String,
    /// What goes into the input root (empty when the worker's toolchain is used).
    pub entries: Vec<Entry>,
    /// What the sandbox's environment needs (`LD_LIBRARY_PATH` for libraries found
    /// through the loader cache or `LD_LIBRARY_PATH` here), sorted by name.
    pub env: Vec<(String, String)>,
}

/// Finds the compiler: a name with a slash relative to `cwd`, a bare name on `PATH`
/// (an empty entry meaning `cwd`), as `posix_spawnp` would; links resolved.
pub(crate) fn find_compiler(
    argv0: &str,
    cwd: &Path,
    path_var: Option<OsString>,
) -> Result<PathBuf, String> {
    let has_separator = argv0.contains('/') || (cfg!(windows) && argv0.contains('\\'));
    if argv0.is_empty() {
        return Err("an empty compiler name".to_string());
    }
    if has_separator {
        let p = cwd.join(argv0);
        return p
            .canonicalize()
            .map_err(|e| format!("{}: {e}", p.display()));
    }
    let path_var = path_var.unwrap_or_default();
    for dir in std::env::split_paths(&path_var) {
        let candidate = cwd.join(dir).join(argv0);
        if is_executable_file(&candidate) {
            return candidate
                .canonicalize()
                .map_err(|e| format!("{}: {e}", candidate.display()));
        }
    }
    Err(format!(
        "not found on PATH ({})",
        path_var.to_string_lossy()
    ))
}

#[cfg(unix)]
fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file())
}

/// The compiler at `compiler` (absolute, real) and, on Linux, what it loads.
pub(crate) fn resolve(compiler: &Path) -> Result<Toolchain, String> {
    let mut m = Mirror::default();
    let real = m
        .add(compiler)
        .map_err(|e| format!("{}: {e}", compiler.display()))?;
    let mut env = Vec::new();
    if let Some(elf) = read_elf(&real)? {
        let closure = closure(&real, &elf)?;
        if let Some(interp) = &elf.interp {
            m.add(interp)
                .map_err(|e| format!("its ELF interpreter {}: {e}", interp.display()))?;
        }
        for lib in &closure.libraries {
            m.add(lib).map_err(|e| format!("{}: {e}", lib.display()))?;
        }
        if !closure.env_dirs.is_empty() {
            let dirs: Vec<String> = closure
                .env_dirs
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            env.push(("LD_LIBRARY_PATH".to_string(), dirs.join(":")));
        }
    }
    Ok(Toolchain {
        compiler: real.to_string_lossy().into_owned(),
        entries: m.entries,
        env,
    })
}

/// The entries that make paths resolve in a sandbox as they do here.
#[derive(Debug, Default)]
struct Mirror {
    entries: Vec<Entry>,
    seen: HashSet<PathBuf>,
}

impl Mirror {
    /// Walks an absolute path component by component as the kernel would, recording
    /// each symbolic link met and the file it ends at; returns the file's real path.
    fn add(&mut self, path: &Path) -> io::Result<PathBuf> {
        if !path.is_absolute() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not an absolute path",
            ));
        }
        let mut real = PathBuf::from("/");
        let mut todo: Vec<OsString> = Vec::new();
        push_components(&mut todo, path);
        let mut links = 0;
        while let Some(name) = todo.pop() {
            if name == ".." {
                real.pop();
                continue;
            }
            let candidate = real.join(&name);
            let md = std::fs::symlink_metadata(&candidate)?;
            if md.file_type().is_symlink() {
                links += 1;
                if links > 40 {
                    return Err(io::Error::other("too many levels of symbolic links"));
                }
                let target = std::fs::read_link(&candidate)?;
                if self.seen.insert(candidate.clone()) {
                    self.entries.push(Entry::Symlink {
                        target: relative_target(&candidate, &target)?,
                        path: candidate,
                    });
                }
                if target.is_absolute() {
                    real = PathBuf::from("/");
                }
                push_components(&mut todo, &target);
            } else {
                real = candidate;
            }
        }
        let md = std::fs::metadata(&real)?;
        if !md.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if self.seen.insert(real.clone()) {
            self.entries.push(Entry::File {
                path: real.clone(),
                executable: executable_bit(&md),
            });
        }
        Ok(real)
    }
}

#[cfg(unix)]
fn executable_bit(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    md.permissions().mode() & 0o100 != 0
}

#[cfg(not(unix))]
fn executable_bit(_md: &std::fs::Metadata) -> bool {
    true
}

/// Pushes a path's names in reverse (the next to walk on top); `..` kept, `.` dropped.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    todo.extend(names.into_iter().rev());
}

/// A link's target as a path relative to the link's directory (an input root must
/// not hold absolute links unless the server allows them).
fn relative_target(link: &Path, target: &Path) -> io::Result<String> {
    let text = |p: &Path| {
        p.to_str().map(str::to_string).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "a link target that is not UTF-8",
            )
        })
    };
    if !target.is_absolute() {
        return text(target);
    }
    let depth = link.parent().map_or(0, |p| {
        p.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
    });
    let rest = text(target)?.trim_start_matches('/').to_string();
    let mut out = "../".repeat(depth);
    out.push_str(if rest.is_empty() { "." } else { &rest });
    Ok(out)
}

/// What the loader reads of an ELF file.
#[derive(Debug, Clone)]
struct Elf {
    is_64: bool,
    machine: u16,
    interp: Option<PathBuf>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

/// The ELF headers of a file, read without reading the whole file; `None` if it is not
/// ELF (a script: shipped alone).
fn read_elf(path: &Path) -> Result<Option<Elf>, String> {
    use object::elf::{FileHeader32, FileHeader64, ELFCLASS32, ELFCLASS64, ELFMAG};
    use object::read::ReadCache;
    use object::Endianness;
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let cache = ReadCache::new(file);
    let ident = object::read::ReadRef::read_bytes_at(&cache, 0, 16).ok();
    let Some(ident) = ident.filter(|i| i[..4] == ELFMAG) else {
        return Ok(None);
    };
    let parsed = match ident[4] {
        ELFCLASS64 => parse_elf::<FileHeader64<Endianness>>(&cache, true),
        ELFCLASS32 => parse_elf::<FileHeader32<Endianness>>(&cache, false),
        _ => Err("an unknown ELF class".to_string()),
    };
    parsed
        .map(Some)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_elf<H>(data: &object::read::ReadCache<File>, is_64: bool) -> Result<Elf, String>
where
    H: object::read::elf::FileHeader<Endian = object::Endianness>,
{
    use object::elf::{DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_STRSZ, DT_STRTAB, PT_LOAD};
    use object::read::elf::{Dyn, ProgramHeader};
    use object::read::ReadRef;
    let header = H::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let mut interp = None;
    let mut dynamic = None;
    for ph in phdrs {
        if let Some(i) = ph.interpreter(endian, data).map_err(|e| e.to_string())? {
            interp = Some(PathBuf::from(String::from_utf8_lossy(i).into_owned()));
        }
        if let Some(d) = ph.dynamic(endian, data).map_err(|e| e.to_string())? {
            dynamic = Some(d);
        }
    }
    let mut elf = Elf {
        is_64,
        machine: header.e_machine(endian),
        interp,
        needed: Vec::new(),
        rpath: Vec::new(),
        runpath: Vec::new(),
    };
    let Some(dynamic) = dynamic else {
        return Ok(elf);
    };
    let (mut strtab, mut strsz) = (None, 0u64);
    for d in dynamic {
        match d.tag(endian) {
            DT_STRTAB => strtab = Some(d.val(endian)),
            DT_STRSZ => strsz = d.val(endian),
            _ => {}
        }
    }
    let Some(strtab_addr) = strtab else {
        return Err("a dynamic section without a string table".into());
    };
    // DT_STRTAB is an address: the file offset is where a PT_LOAD segment maps it.
    let strtab_off = phdrs
        .iter()
        .filter(|ph| ph.p_type(endian) == PT_LOAD)
        .find_map(|ph| {
            let (vaddr, off, size) = (
                ph.p_vaddr(endian).into(),
                ph.p_offset(endian).into(),
                ph.p_filesz(endian).into(),
            );
            (vaddr <= strtab_addr && strtab_addr < vaddr + size).then(|| strtab_addr - vaddr + off)
        })
        .ok_or("a string table outside every loaded segment")?;
    let string = |offset: u64| -> Result<String, String> {
        let bytes = data
            .read_bytes_at_until(strtab_off + offset..strtab_off + strsz, 0)
            .map_err(|_| "a dynamic string outside the string table".to_string())?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    };
    for d in dynamic {
        let split = |s: String| {
            s.split(':')
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        match d.tag(endian) {
            DT_NULL => break,
            DT_NEEDED => elf.needed.push(string(d.val(endian))?),
            DT_RPATH => elf.rpath.extend(split(string(d.val(endian))?)),
            DT_RUNPATH => elf.runpath.extend(split(string(d.val(endian))?)),
            _ => {}
        }
    }
    Ok(elf)
}

/// The libraries an executable loads, in the loader's breadth-first order, each at
/// the path the loader opens, and the directories the sandbox must be told of.
#[derive(Debug, Default)]
struct Closure {
    libraries: Vec<PathBuf>,
    env_dirs: Vec<PathBuf>,
}

fn closure(exe: &Path, elf: &Elf) -> Result<Closure, String> {
    let ld_library_path: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| p.is_absolute())
                .collect()
        })
        .unwrap_or_default();
    let conf_dirs = ld_so_conf_dirs(Path::new("/etc/ld.so.conf"), 0);
    let system = system_dirs(elf.machine);
    let exe_dir = exe.parent().unwrap_or(Path::new("/")).to_path_buf();
    // The executable's DT_RPATH applies to every library without a DT_RUNPATH.
    let exe_rpath = if elf.runpath.is_empty() {
        expand(&elf.rpath, &exe_dir)
    } else {
        Vec::new()
    };

    let mut out = Closure::default();
    // The interpreter is loaded already: a library that needs it by its name
    // (libc.so.6 needs ld-linux-x86-64.so.2) gets it, not a search.
    let mut done: HashSet<String> = elf
        .interp
        .iter()
        .filter_map(|i| i.file_name()?.to_str().map(str::to_string))
        .collect();
    let mut queue = VecDeque::from([(exe_dir, elf.clone(), true)]);
    while let Some((origin, obj, is_exe)) = queue.pop_front() {
        for name in &obj.needed {
            if !done.insert(name.clone()) {
                continue;
            }
            let mut searched: Vec<(PathBuf, bool)> = Vec::new(); // (dir, needs the env)
            if name.contains('/') {
                let p = PathBuf::from(name);
                let lib = read_elf(&p)?.ok_or_else(|| format!("{name} is not ELF"))?;
                out.libraries.push(p.clone());
                queue.push_back((
                    p.parent().unwrap_or(Path::new("/")).to_path_buf(),
                    lib,
                    false,
                ));
                continue;
            }
            if obj.runpath.is_empty() {
                searched.extend(expand(&obj.rpath, &origin).into_iter().map(|d| (d, false)));
                if !is_exe {
                    searched.extend(exe_rpath.iter().cloned().map(|d| (d, false)));
                }
            }
            searched.extend(ld_library_path.iter().cloned().map(|d| (d, true)));
            searched.extend(
                expand(&obj.runpath, &origin)
                    .into_iter()
                    .map(|d| (d, false)),
            );
            searched.extend(conf_dirs.iter().map(|d| (d.clone(), !system.contains(d))));
            searched.extend(system.iter().cloned().map(|d| (d, false)));
            let found = searched.into_iter().find_map(|(dir, needs_env)| {
                let p = dir.join(name);
                match read_elf(&p) {
                    Ok(Some(lib)) if lib.is_64 == elf.is_64 && lib.machine == elf.machine => {
                        Some((p, dir, lib, needs_env))
                    }
                    _ => None,
                }
            });
            let Some((path, dir, lib, needs_env)) = found else {
                return Err(format!(
                    "cannot find its library {name} as the loader would"
                ));
            };
            if needs_env && !out.env_dirs.contains(&dir) {
                out.env_dirs.push(dir);
            }
            out.libraries.push(path.clone());
            queue.push_back((
                path.parent().unwrap_or(Path::new("/")).to_path_buf(),
                lib,
                false,
            ));
        }
    }
    Ok(out)
}

/// RPATH/RUNPATH entries with `$ORIGIN` replaced; entries relative to the process's
/// working directory, or with other tokens (`$LIB`, `$PLATFORM`), are left out.
fn expand(entries: &[String], origin: &Path) -> Vec<PathBuf> {
    let origin = origin.to_string_lossy();
    entries
        .iter()
        .map(|e| e.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin))
        .filter(|e| e.starts_with('/') && !e.contains('$'))
        .map(PathBuf::from)
        .collect()
}

/// The directories glibc's loader searches by itself, with no cache.
fn system_dirs(machine: u16) -> Vec<PathBuf> {
    let multiarch = match machine {
        object::elf::EM_X86_64 => Some("x86_64-linux-gnu"),
        object::elf::EM_AARCH64 => Some("aarch64-linux-gnu"),
        _ => None,
    };
    let mut dirs = Vec::new();
    if let Some(m) = multiarch {
        dirs.push(PathBuf::from(format!("/lib/{m}")));
        dirs.push(PathBuf::from(format!("/usr/lib/{m}")));
    }
    for d in ["/lib64", "/usr/lib64", "/lib", "/usr/lib"] {
        dirs.push(PathBuf::from(d));
    }
    dirs
}

/// The directories `ld.so.conf` names (what the loader cache holds), `include` lines
/// with a `*` in the file name followed.
fn ld_so_conf_dirs(conf: &Path, depth: u32) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(conf) else {
        return Vec::new();
    };
    let mut dirs = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(pattern) = line
            .strip_prefix("include")
            .filter(|_| depth < 4)
            .map(str::trim)
        {
            let pattern = Path::new(pattern);
            let (Some(dir), Some(glob)) = (
                pattern.parent(),
                pattern.file_name().and_then(|g| g.to_str()),
            ) else {
                continue;
            };
            let (prefix, suffix) = glob.split_once('*').unwrap_or((glob, ""));
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.starts_with(prefix)
                        && n.ends_with(suffix)
                        && n.len() >= prefix.len() + suffix.len()
                })
                .map(|e| e.path())
                .collect();
            files.sort();
            for f in files {
                dirs.extend(ld_so_conf_dirs(&f, depth + 1));
            }
        } else if line.starts_with('/') {
            dirs.push(PathBuf::from(line));
        }
    }
    dirs
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_on_path_and_its_links_resolved() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let real = bin.join("cc-23");
        std::fs::write(&real, b"#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("cc-23", bin.join("cc")).unwrap();
        // Not executable: skipped, as a shell would.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("cc"), b"").unwrap();
        let path = std::env::join_paths([&other, &bin]).unwrap();
        let found = find_compiler("cc", dir.path(), Some(path)).unwrap();
        assert_eq!(found, real.canonicalize().unwrap());
        assert_eq!(find_compiler("bin/cc", dir.path(), None).unwrap(), found);
        assert!(
            find_compiler("nope", dir.path(), Some("/nonexistent".into()))
                .unwrap_err()
                .contains("not found on PATH")
        );
    }

    #[test]
    fn links_on_the_way_are_mirrored_with_relative_targets() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::write(root.join("usr/lib/libx.so.1.0"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::os::unix::fs::symlink("libx.so.1.0", root.join("usr/lib/libx.so.1")).unwrap();
        std::os::unix::fs::symlink(root.join("usr"), root.join("abs")).unwrap();
        let mut m = Mirror::default();
        let real = m.add(&root.join("lib/libx.so.1")).unwrap();
        assert_eq!(real, root.join("usr/lib/libx.so.1.0"));
        let real2 = m.add(&root.join("abs/lib/../lib/libx.so.1.0")).unwrap();
        assert_eq!(real2, real);
        let depth = root.components().count() - 1;
        assert_eq!(
            m.entries,
            vec![
                Entry::Symlink {
                    path: root.join("lib"),
                    target: "usr/lib".into()
                },
                Entry::Symlink {
                    path: root.join("usr/lib/libx.so.1"),
                    target: "libx.so.1.0".into()
                },
                Entry::File {
                    path: real.clone(),
                    executable: false
                },
                Entry::Symlink {
                    path: root.join("abs"),
                    target: format!(
                        "{}{}",
                        "../".repeat(depth),
                        root.join("usr").to_str().unwrap().trim_start_matches('/')
                    ),
                },
            ]
        );
    }

    /// The loader's own answer: `ldd` (the loader in trace mode) on the same binary.
    fn ldd(exe: &Path) -> Option<Vec<PathBuf>> {
        let out = std::process::Command::new("ldd").arg(exe).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut libs: Vec<PathBuf> = text
            .lines()
            .filter_map(|l| l.split_once("=> ")?.1.split(" (").next())
            .filter(|p| p.starts_with('/'))
            .map(|p| Path::new(p).canonicalize().unwrap())
            .collect();
        libs.sort();
        Some(libs)
    }

    fn check_against_ldd(exe: &Path) {
        let exe = exe.canonicalize().unwrap();
        let Some(expected) = ldd(&exe) else {
            eprintln!("no ldd here: skipped");
            return;
        };
        let elf = read_elf(&exe).unwrap().unwrap();
        let mut ours: Vec<PathBuf> = closure(&exe, &elf)
            .unwrap()
            .libraries
            .iter()
            .map(|p| p.canonicalize().unwrap())
            .collect();
        ours.sort();
        assert_eq!(
            ours,
            expected,
            "the closure of {} differs from ldd's",
            exe.display()
        );
        // And the toolchain carries each of them, and the interpreter, at its real path.
        let t = resolve(&exe).unwrap();
        let files: HashSet<PathBuf> = t
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::File { path, .. } => Some(path.clone()),
                _ => None,
            })
            .collect();
        for lib in expected
            .iter()
            .chain([&elf.interp.unwrap().canonicalize().unwrap()])
        {
            assert!(files.contains(lib), "{} is not shipped", lib.display());
        }
    }

    #[test]
    fn closure_of_this_test_binary_matches_ldd() {
        check_against_ldd(&std::env::current_exe().unwrap());
        check_against_ldd(Path::new("/bin/sh"));
    }

    /// Real clang (tools/install-llvm.sh): RUNPATH with `$ORIGIN/../lib`, libc++ in a
    /// subdirectory, libLLVM and libclang-cpp. Set DTLTO_LLVM_BIN to its bin directory.
    #[test]
    fn closure_of_real_clang_matches_ldd() {
        let Some(bin) = std::env::var_os("DTLTO_LLVM_BIN") else {
            eprintln!("DTLTO_LLVM_BIN is not set (tools/install-llvm.sh prints it): skipped");
            return;
        };
        check_against_ldd(&Path::new(&bin).join("clang"));
    }
}
