//! One job as a REAPI Action whose digest depends only on what the compile depends on.
//!
//! - The linker's process id is in the names of a job's outputs and index
//!   (`main.1.2449.native.o`, `main.1.2449.native.o.thinlto.bc`): each output gets a
//!   stable name (`_dtlto/out0.o`), its index `<stable>.thinlto.bc`, any other
//!   `.thinlto.bc` input `_dtlto/index<k>.thinlto.bc`, and the arguments that name
//!   them are rewritten (`-o X`, `X`, `-opt=X`).
//! - The directory the link runs in is not sent: the command runs in a fixed
//!   directory of the input root (`dtlto-work`, deeper when inputs climb out with
//!   `..`), and absolute inputs under the link's directory become relative.
//! - Only the declared inputs go in (with their executable bits), and the toolchain.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bazel_remote_apis::build::bazel::remote::execution::v2::{
    command::EnvironmentVariable, platform::Property, Action, Command, Digest, Platform,
};
use prost::Message;

use super::digest::{self, DigestCache};
use super::error::RemoteError;
use super::toolchain::{Entry, Toolchain};
use super::tree::{InputTree, Source};
use super::RemoteJob;

/// The fixed working directory's first name in the input root.
const WORK_DIR: &str = "dtlto-work";
/// Where stable output and index names live, under the working directory.
const STABLE_DIR: &str = "_dtlto";

/// An action ready to upload and run, and how to map its results back.
#[derive(Debug)]
pub(crate) struct PreparedAction {
    pub action_digest: Digest,
    /// Every blob the action names (files, directories, command, action), by digest.
    pub blobs: Vec<(Digest, Source)>,
    /// For each declared output: its path in the ActionResult (relative to the
    /// working directory), the declared path, where to write it.
    pub outputs: Vec<(String, String, PathBuf)>,
    /// The temporaries asked for as optional outputs, by their names in the
    /// working directory (those that no input or output of the job's takes).
    pub temporaries: Vec<String>,
    /// Bytes read to hash files the digest cache did not know.
    pub hashed_bytes: u64,
}

/// How the declared names are sent.
#[derive(Debug, Default)]
pub(crate) struct NameMap {
    /// (declared, sent) pairs: outputs, indexes, absolute inputs made relative.
    renames: Vec<(String, String)>,
}

impl NameMap {
    /// The stable names of a job's outputs and index files, and the relative form of
    /// absolute inputs under `cwd`.
    pub(crate) fn for_job(inputs: &[String], outputs: &[String], cwd: &Path) -> NameMap {
        let mut renames = Vec::new();
        for (k, declared) in outputs.iter().enumerate() {
            let ext = if declared.ends_with(".o") { ".o" } else { "" };
            renames.push((declared.clone(), format!("{STABLE_DIR}/out{k}{ext}")));
        }
        let mut index = 0;
        for input in inputs {
            if !input.ends_with(".thinlto.bc") || renames.iter().any(|(d, _)| d == input) {
                continue;
            }
            let sent = match outputs
                .iter()
                .position(|o| format!("{o}.thinlto.bc") == *input)
            {
                Some(k) => format!("{}.thinlto.bc", renames[k].1),
                None => {
                    index += 1;
                    format!("{STABLE_DIR}/index{}.thinlto.bc", index - 1)
                }
            };
            renames.push((input.clone(), sent));
        }
        for input in inputs {
            let p = Path::new(input);
            if renames.iter().any(|(d, _)| d == input) || !p.is_absolute() {
                continue;
            }
            if let Ok(rel) = p.strip_prefix(cwd) {
                if let Some(rel) = rel.to_str().filter(|r| !r.is_empty()) {
                    renames.push((input.clone(), rel.replace('\\', "/")));
                }
            }
        }
        NameMap { renames }
    }

    /// The name a declared path is sent as (itself if not renamed).
    pub(crate) fn sent<'a>(&'a self, declared: &'a str) -> &'a str {
        self.renames
            .iter()
            .find(|(d, _)| d == declared)
            .map_or(declared, |(_, s)| s.as_str())
    }

    /// An argument with a declared name in it rewritten: the whole argument, the
    /// value after the first `=` (`-fthinlto-index=X`), or after `-o` (`-oX`).
    pub(crate) fn rewrite_arg(&self, arg: &str) -> String {
        let sent = self.sent(arg);
        if sent != arg {
            return sent.to_string();
        }
        if let Some((opt, value)) = arg.split_once('=') {
            let sent = self.sent(value);
            if sent != value {
                return format!("{opt}={sent}");
            }
        }
        if let Some(value) = arg.strip_prefix("-o").filter(|v| !v.is_empty()) {
            let sent = self.sent(value);
            if sent != value {
                return format!("-o{sent}");
            }
        }
        arg.to_string()
    }
}

/// A relative path's names after `.` and `..` are applied, and how many levels it
/// climbs above its start; `None` for an absolute path.
fn normalize_relative(path: &str) -> Result<(usize, Vec<String>), String> {
    let mut names: Vec<String> = Vec::new();
    let mut climbs = 0;
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => {
                names.push(n.to_str().ok_or("a path that is not UTF-8")?.to_string())
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if names.pop().is_none() {
                    climbs += 1;
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err("an absolute path".into()),
        }
    }
    Ok((climbs, names))
}

/// The directories a path leaves through `..` on its way, from `start` (the root's
/// names): each must exist for the path to be followed.
fn dirs_climbed_out_of(start: Vec<String>, path: &str) -> Vec<Vec<String>> {
    let mut at = start;
    let mut left = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => at.push(n.to_string_lossy().into_owned()),
            Component::ParentDir => {
                if !at.is_empty() {
                    left.push(at.clone());
                }
                at.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    left
}

/// An absolute path's names from the root.
fn absolute_names(path: &Path) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => {
                names.push(n.to_str().ok_or("a path that is not UTF-8")?.to_string())
            }
            Component::ParentDir => {
                names.pop();
            }
            Component::Prefix(_) => {
                return Err(
                    "a Windows drive path cannot be sent to a REAPI worker; declare it relative"
                        .into(),
                );
            }
            Component::RootDir | Component::CurDir => {}
        }
    }
    Ok(names)
}

/// What `prepare` needs of the session.
pub(crate) struct Context<'a> {
    pub digests: &'a DigestCache,
    pub platform: &'a [(String, String)],
    /// `Action.salt`: a cache namespace of the user's choosing (empty: none).
    pub salt: &'a [u8],
    /// REAPI 2.1+: `output_paths`; before: `output_files`.
    pub output_paths: bool,
}

/// Builds the job's action: the input root, the command, the action, their blobs.
pub(crate) fn prepare(
    job: &RemoteJob,
    toolchain: &Toolchain,
    cx: &Context<'_>,
) -> Result<PreparedAction, RemoteError> {
    let fail = |what: String| RemoteError::Action {
        job: job.index,
        what,
    };
    let declared_outputs: Vec<String> = job.outputs.iter().map(|(d, _)| d.clone()).collect();
    let names = NameMap::for_job(&job.inputs, &declared_outputs, &job.cwd);

    // Where each input goes, relative to the working directory or absolute.
    enum Place {
        Relative(usize, Vec<String>),
        Absolute(Vec<String>),
    }
    let mut places = Vec::new();
    let mut depth = 0;
    for declared in job.inputs.iter().chain(&declared_outputs) {
        let sent = names.sent(declared);
        let place = if Path::new(sent).is_absolute() || sent.starts_with('/') {
            Place::Absolute(
                absolute_names(Path::new(sent)).map_err(|e| fail(format!("{declared}: {e}")))?,
            )
        } else {
            let (climbs, names) =
                normalize_relative(sent).map_err(|e| fail(format!("{declared}: {e}")))?;
            depth = depth.max(climbs);
            Place::Relative(climbs, names)
        };
        places.push(place);
    }
    let work: Vec<String> = std::iter::once(WORK_DIR.to_string())
        .chain(std::iter::repeat_n("w".to_string(), depth))
        .collect();
    let in_root = |place: &Place| -> Vec<String> {
        match place {
            Place::Absolute(n) => n.clone(),
            Place::Relative(climbs, n) => work[..work.len() - climbs]
                .iter()
                .chain(n)
                .cloned()
                .collect(),
        }
    };

    let mut tree = InputTree::default();
    let mut blobs: Vec<(Digest, Source)> = Vec::new();
    let mut hashed_bytes = 0;
    tree.add_dir(&work).map_err(fail)?;
    // A path that climbs out of a directory (`lib/../dog.o`) needs that directory
    // in the root too, as the host has it, for the worker to follow it.
    for declared in job.inputs.iter().chain(&declared_outputs) {
        let sent = names.sent(declared);
        let start: Vec<String> = if Path::new(sent).is_absolute() || sent.starts_with('/') {
            Vec::new()
        } else {
            work.clone()
        };
        for dir in dirs_climbed_out_of(start, sent) {
            tree.add_dir(&dir)
                .map_err(|e| fail(format!("{declared}: {e}")))?;
        }
    }
    for (declared, place) in job.inputs.iter().zip(&places) {
        let host = job.cwd.join(declared);
        let input_err = |source| RemoteError::Input {
            job: job.index,
            declared: declared.clone(),
            source,
        };
        let (d, hashed) = cx.digests.file(&host).map_err(input_err)?;
        hashed_bytes += hashed;
        let executable = is_executable(&host).map_err(input_err)?;
        let path = in_root(place);
        tree.add_file(&path, d.clone(), executable)
            .map_err(|e| fail(format!("input {declared}: {e}")))?;
        blobs.push((d, Source::File(host)));
    }
    for entry in &toolchain.entries {
        let (path, result) = match entry {
            Entry::File { path, executable } => {
                let (d, hashed) = cx.digests.file(path).map_err(|source| RemoteError::Input {
                    job: job.index,
                    declared: path.display().to_string(),
                    source,
                })?;
                hashed_bytes += hashed;
                let names =
                    absolute_names(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
                blobs.push((d.clone(), Source::File(path.clone())));
                (path, tree.add_file(&names, d, *executable))
            }
            Entry::Symlink { path, target } => {
                let names =
                    absolute_names(path).map_err(|e| fail(format!("{}: {e}", path.display())))?;
                (path, tree.add_symlink(&names, target.clone()))
            }
        };
        result.map_err(|e| fail(format!("the toolchain's {}: {e}", path.display())))?;
    }

    // Outputs: relative to the working directory, as REAPI wants them.
    let mut outputs = Vec::new();
    for ((declared, dest), place) in job.outputs.iter().zip(&places[job.inputs.len()..]) {
        let Place::Relative(0, rel) = place else {
            return Err(fail(format!(
                "output {declared}: cannot be named relative to the working directory"
            )));
        };
        if let Some((_, parents)) = rel.split_last() {
            let dir: Vec<String> = work.iter().chain(parents).cloned().collect();
            tree.add_dir(&dir)
                .map_err(|e| fail(format!("output {declared}: {e}")))?;
        }
        outputs.push((rel.join("/"), declared.clone(), dest.clone()));
    }

    let built = tree.build();
    for (d, bytes) in &built.directories {
        blobs.push((d.clone(), Source::Bytes(bytes.clone())));
    }

    if job.argv.is_empty() {
        return Err(fail("an empty command".into()));
    }
    let mut arguments = vec![toolchain.compiler.clone()];
    arguments.extend(job.argv[1..].iter().map(|a| names.rewrite_arg(a)));
    // A temporary is asked for only where nothing the job sends or expects is.
    let taken: Vec<&str> = places
        .iter()
        .filter_map(|place| match place {
            Place::Relative(0, names) => names.first().map(String::as_str),
            _ => None,
        })
        .collect();
    let temporaries: Vec<String> = job
        .temporaries
        .iter()
        .flat_map(|t| &t.names)
        .filter(|name| !taken.contains(&name.as_str()))
        .cloned()
        .collect();
    let mut output_list: Vec<String> = outputs.iter().map(|(p, _, _)| p.clone()).collect();
    output_list.extend(temporaries.iter().cloned());
    output_list.sort();
    output_list.dedup();
    let platform = platform(cx.platform);
    // output_files and Command.platform are deprecated, and still what servers
    // before REAPI 2.1 (and 2.2, for the platform) read.
    #[allow(deprecated)]
    let command = Command {
        arguments,
        environment_variables: toolchain
            .env
            .iter()
            .map(|(name, value)| EnvironmentVariable {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        output_files: if cx.output_paths {
            Vec::new()
        } else {
            output_list.clone()
        },
        output_paths: if cx.output_paths {
            output_list
        } else {
            Vec::new()
        },
        // Older servers read the platform from the command; newer from the action.
        platform: platform.clone(),
        working_directory: work.join("/"),
        ..Default::default()
    };
    let command_bytes = command.encode_to_vec();
    let command_digest = digest::of_bytes(&command_bytes);
    let action = Action {
        command_digest: Some(command_digest.clone()),
        input_root_digest: Some(built.root.clone()),
        platform,
        salt: cx.salt.to_vec(),
        ..Default::default()
    };
    let action_bytes = action.encode_to_vec();
    let action_digest = digest::of_bytes(&action_bytes);
    blobs.push((command_digest, Source::Bytes(Arc::new(command_bytes))));
    blobs.push((action_digest.clone(), Source::Bytes(Arc::new(action_bytes))));
    blobs.sort_by(|a, b| (&a.0.hash, a.0.size_bytes).cmp(&(&b.0.hash, b.0.size_bytes)));
    blobs.dedup_by(|a, b| a.0 == b.0);
    Ok(PreparedAction {
        action_digest,
        blobs,
        outputs,
        temporaries,
        hashed_bytes,
    })
}

/// The platform properties sorted by name, then value (REAPI's canonical order).
fn platform(props: &[(String, String)]) -> Option<Platform> {
    if props.is_empty() {
        return None;
    }
    let mut properties: Vec<Property> = props
        .iter()
        .map(|(name, value)| Property {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    properties.sort_by(|a, b| (&a.name, &a.value).cmp(&(&b.name, &b.value)));
    Some(Platform { properties })
}

#[cfg(unix)]
fn is_executable(p: &Path) -> std::io::Result<bool> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(p)?.permissions().mode() & 0o100 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> std::io::Result<bool> {
    std::fs::metadata(p).map(|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pid_carrying_names_get_stable_ones() {
        let inputs = strings(&["main.o", "main.1.2449.native.o.thinlto.bc", "helper.o"]);
        let outputs = strings(&["main.1.2449.native.o"]);
        let m = NameMap::for_job(&inputs, &outputs, Path::new("/home/u/p"));
        assert_eq!(m.sent("main.1.2449.native.o"), "_dtlto/out0.o");
        assert_eq!(
            m.sent("main.1.2449.native.o.thinlto.bc"),
            "_dtlto/out0.o.thinlto.bc"
        );
        assert_eq!(m.sent("main.o"), "main.o");
        let args = [
            "main.o",
            "-fthinlto-index=main.1.2449.native.o.thinlto.bc",
            "-o",
            "main.1.2449.native.o",
            "-omain.1.2449.native.o",
        ];
        let sent: Vec<String> = args.iter().map(|a| m.rewrite_arg(a)).collect();
        assert_eq!(
            sent,
            [
                "main.o",
                "-fthinlto-index=_dtlto/out0.o.thinlto.bc",
                "-o",
                "_dtlto/out0.o",
                "-o_dtlto/out0.o"
            ]
        );

        // Another link (another pid, another directory): the same names are sent.
        let inputs2 = strings(&["main.o", "main.1.777.native.o.thinlto.bc", "helper.o"]);
        let m2 = NameMap::for_job(
            &inputs2,
            &strings(&["main.1.777.native.o"]),
            Path::new("/tmp/x"),
        );
        assert_eq!(
            m2.rewrite_arg("-fthinlto-index=main.1.777.native.o.thinlto.bc"),
            sent[1]
        );

        // An index named another way (`main.4.31377.thinlto.bc`), and an archive member.
        let inputs3 = strings(&["t.a(t1.o at 12).o", "main.4.31377.thinlto.bc"]);
        let m3 = NameMap::for_job(
            &inputs3,
            &strings(&["t.a(t1.o at 12).1.31377.o"]),
            Path::new("/p"),
        );
        assert_eq!(
            m3.sent("main.4.31377.thinlto.bc"),
            "_dtlto/index0.thinlto.bc"
        );
        assert_eq!(m3.sent("t.a(t1.o at 12).1.31377.o"), "_dtlto/out0.o");
        assert_eq!(m3.sent("t.a(t1.o at 12).o"), "t.a(t1.o at 12).o");
    }

    /// Unix paths: on Windows an absolute path has a drive, which is refused.
    #[cfg(unix)]
    #[test]
    fn absolute_inputs_under_the_link_directory_become_relative() {
        let inputs = strings(&["/home/u/p/obj/a.o", "/opt/lib/b.o"]);
        let m = NameMap::for_job(
            &inputs,
            &strings(&["/home/u/p/a.1.5.native.o"]),
            Path::new("/home/u/p"),
        );
        assert_eq!(m.sent("/home/u/p/obj/a.o"), "obj/a.o");
        assert_eq!(m.sent("/opt/lib/b.o"), "/opt/lib/b.o");
        assert_eq!(m.sent("/home/u/p/a.1.5.native.o"), "_dtlto/out0.o");
    }

    #[test]
    fn directories_a_path_climbs_out_of_are_kept() {
        let work = vec!["w".to_string()];
        assert_eq!(
            dirs_climbed_out_of(work.clone(), "lib/../dog.o"),
            vec![strings(&["w", "lib"])]
        );
        assert_eq!(
            dirs_climbed_out_of(Vec::new(), "/t/a/b/../../c.o"),
            vec![strings(&["t", "a", "b"]), strings(&["t", "a"])]
        );
        assert!(dirs_climbed_out_of(work, "x/y.o").is_empty());
    }

    #[test]
    fn relative_paths_normalize_and_count_climbs() {
        assert_eq!(
            normalize_relative("./a/../b.o").unwrap(),
            (0, strings(&["b.o"]))
        );
        assert_eq!(
            normalize_relative("../../x/y.o").unwrap(),
            (2, strings(&["x", "y.o"]))
        );
        assert!(normalize_relative("/abs").is_err());
    }

    fn job_in(dir: &Path, pid: u32, cwd_name: &str) -> RemoteJob {
        let cwd = dir.join(cwd_name);
        std::fs::create_dir_all(cwd.join("sub")).unwrap();
        std::fs::create_dir_all(dir.join("lib")).unwrap();
        std::fs::write(cwd.join("main.o"), b"module").unwrap();
        std::fs::write(
            cwd.join(format!("main.1.{pid}.native.o.thinlto.bc")),
            b"index",
        )
        .unwrap();
        std::fs::write(dir.join("lib/h.o"), b"imported").unwrap();
        std::fs::write(cwd.join("undeclared.o"), b"secret").unwrap();
        RemoteJob {
            index: 0,
            argv: strings(&[
                "cc",
                "-c",
                "-O2",
                "main.o",
                &format!("-fthinlto-index=main.1.{pid}.native.o.thinlto.bc"),
                "-o",
                &format!("main.1.{pid}.native.o"),
            ]),
            inputs: vec![
                "main.o".into(),
                format!("main.1.{pid}.native.o.thinlto.bc"),
                "../lib/h.o".into(),
            ],
            outputs: vec![(format!("main.1.{pid}.native.o"), cwd.join("staged.o"))],
            cwd,
            temporaries: None,
        }
    }

    fn no_toolchain() -> Toolchain {
        Toolchain {
            compiler: "/usr/bin/cc".into(),
            entries: Vec::new(),
            env: Vec::new(),
        }
    }

    #[test]
    fn the_action_digest_ignores_the_pid_and_the_directory_and_carries_only_declared_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DigestCache::load(None);
        let cx = Context {
            digests: &cache,
            platform: &[],
            salt: b"",
            output_paths: true,
        };
        let a = prepare(&job_in(dir.path(), 2449, "one"), &no_toolchain(), &cx).unwrap();
        let b = prepare(&job_in(dir.path(), 31377, "two"), &no_toolchain(), &cx).unwrap();
        assert_eq!(a.action_digest, b.action_digest);
        assert_eq!(a.outputs[0].0, "_dtlto/out0.o");
        assert_eq!(a.outputs[0].1, "main.1.2449.native.o");
        // The undeclared file is no blob of the action.
        let secret = digest::of_bytes(b"secret");
        assert!(a.blobs.iter().all(|(d, _)| *d != secret));
        // The command: stable names, a working directory one level deep for `../lib`.
        let bytes = |d: &Digest| match &a.blobs.iter().find(|(b, _)| b == d).unwrap().1 {
            Source::Bytes(b) => b.clone(),
            Source::File(_) => unreachable!("a message is in memory"),
        };
        let action = Action::decode(bytes(&a.action_digest).as_slice()).unwrap();
        let command =
            Command::decode(bytes(action.command_digest.as_ref().unwrap()).as_slice()).unwrap();
        assert_eq!(command.working_directory, "dtlto-work/w");
        assert_eq!(
            command.arguments,
            [
                "/usr/bin/cc",
                "-c",
                "-O2",
                "main.o",
                "-fthinlto-index=_dtlto/out0.o.thinlto.bc",
                "-o",
                "_dtlto/out0.o"
            ]
        );
        assert_eq!(command.output_paths, ["_dtlto/out0.o"]);
        // A changed input changes it.
        let job = job_in(dir.path(), 2449, "one");
        std::fs::write(dir.path().join("lib/h.o"), b"imported, changed").unwrap();
        let c = prepare(&job, &no_toolchain(), &cx).unwrap();
        assert_ne!(a.action_digest, c.action_digest);
        // A salt changes it, and only the action: the command and the inputs are
        // the same blobs.
        let salted = Context {
            salt: b"ci-7",
            ..cx
        };
        let d = prepare(&job, &no_toolchain(), &salted).unwrap();
        assert_ne!(c.action_digest, d.action_digest);
        let others = |p: &PreparedAction| -> Vec<Digest> {
            let action = p.action_digest.clone();
            p.blobs
                .iter()
                .map(|(b, _)| b.clone())
                .filter(|b| *b != action)
                .collect()
        };
        assert_eq!(others(&c), others(&d));
    }

    #[test]
    fn a_missing_input_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut job = job_in(dir.path(), 1, "one");
        job.inputs.push("gone.o".into());
        let cache = DigestCache::load(None);
        let cx = Context {
            digests: &cache,
            platform: &[],
            salt: b"",
            output_paths: true,
        };
        let err = prepare(&job, &no_toolchain(), &cx).unwrap_err().to_string();
        assert!(err.starts_with("jobs[0]: input gone.o: "), "{err}");
    }
}
