//! Explains a path the sandbox cannot reach: which directories are preopened, and the
//! `wasmtime run --dir` that would make the path reachable.

/// The guest names of the directories the host preopened for us.
pub fn preopened_dirs() -> Vec<String> {
    #[cfg(target_os = "wasi")]
    {
        wasi_preopens()
    }
    #[cfg(not(target_os = "wasi"))]
    {
        Vec::new()
    }
}

/// WASI numbers preopens from fd 3 upward, without gaps; the first fd that is not a
/// preopened directory ends the list.
#[cfg(target_os = "wasi")]
fn wasi_preopens() -> Vec<String> {
    let mut dirs = Vec::new();
    for fd in 3.. {
        // SAFETY: fd_prestat_get writes a Prestat or fails; we read the name into a
        // buffer of exactly the length the host reported.
        let name = unsafe {
            let Ok(prestat) = wasi::fd_prestat_get(fd) else {
                break;
            };
            if prestat.tag != wasi::PREOPENTYPE_DIR.raw() {
                break;
            }
            let mut buf = vec![0u8; prestat.u.dir.pr_name_len];
            if wasi::fd_prestat_dir_name(fd, buf.as_mut_ptr(), buf.len()).is_err() {
                break;
            }
            buf
        };
        // Some hosts count a trailing NUL in the name's length.
        let name = String::from_utf8_lossy(&name);
        dirs.push(name.trim_end_matches('\0').to_owned());
    }
    dirs
}

/// Whether some preopened directory can resolve `guest_path`, following wasi-libc:
/// a relative path needs a preopen named `.`; an absolute path a preopen that is a
/// component-wise prefix of it.
pub fn is_reachable(guest_path: &str, preopens: &[String]) -> bool {
    if is_windows_path(guest_path) {
        return false;
    }
    preopens.iter().any(|preopen| {
        let dir = preopen.trim_end_matches('/');
        if guest_path.starts_with('/') {
            preopen.starts_with('/')
                && (dir.is_empty()
                    || guest_path == dir
                    || guest_path
                        .strip_prefix(dir)
                        .is_some_and(|rest| rest.starts_with('/')))
        } else {
            matches!(dir, "." | "")
                || guest_path == dir
                || guest_path
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    })
}

/// `C:\x`, `C:/x` or `\\server\share`: a host path that WASI, whose paths are
/// `/`-separated names under preopened directories, cannot express.
fn is_windows_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 3
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && matches!(bytes[2], b'\\' | b'/');
    drive || path.starts_with("\\\\")
}

/// The message for a path that no preopened directory holds.
pub fn unreachable_message(what: &str, path: &str, preopens: &[String]) -> String {
    if is_windows_path(path) {
        return format!(
            "cannot open {what} {}: a Windows path, which a WASI guest cannot name by \
             itself (its paths are '/'-separated, under preopened directories). Give a path \
             relative to a `--dir`, or run it through dtlto-runner, which maps host paths \
             into the sandbox.",
            quote(path)
        );
    }
    let listed = if preopens.is_empty() {
        "none".to_owned()
    } else {
        preopens
            .iter()
            .map(|d| quote(d))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let dir = match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((parent, _)) => parent,
        None => ".",
    };
    format!(
        "cannot open {what} {}: no preopened directory holds it \
         (preopened: {listed}).\n  \
         Give the sandbox that directory, e.g. `wasmtime run --dir {dir} dtlto-mock.wasm ...`, \
         or run through dtlto-runner, which preopens what the job needs.",
        quote(path)
    )
}

/// The message for a symbolic link whose target no preopened directory holds: WASI
/// follows a link only within the preopen it starts in, so the link itself can never
/// be opened; its target can, given its directory. `target` is `None` where the host
/// would not say (an absolute target).
pub fn link_out_of_reach_message(
    what: &str,
    path: &str,
    target: Option<&str>,
    preopens: &[String],
) -> String {
    let listed: Vec<String> = preopens.iter().map(|d| quote(d)).collect();
    let listed = if listed.is_empty() {
        "none".to_owned()
    } else {
        listed.join(", ")
    };
    let Some(target) = target else {
        return format!(
            "cannot open {what} {}: it is a symbolic link that leads out of the directories \
             the sandbox was given (preopened: {listed}), to an absolute path the WASI host \
             does not disclose.\n  Name its target instead and give the sandbox the target's \
             directory with another `--dir`, or run through dtlto-runner, which follows links \
             itself.",
            quote(path)
        );
    };
    let link_dir = match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((parent, _)) => parent,
        None => ".",
    };
    let resolved = if target.starts_with('/') {
        target.to_owned()
    } else {
        lexically_joined(link_dir, target)
    };
    let target_dir = match resolved.rsplit_once('/') {
        Some(("", _)) => "/".to_owned(),
        Some((parent, _)) => parent.to_owned(),
        None => ".".to_owned(),
    };
    format!(
        "cannot open {what} {}: it is a symbolic link to {}, and a WASI host follows a link \
         only within the directory it was given (preopened: {listed}).\n  \
         Name the target itself and give the sandbox its directory, e.g. \
         `wasmtime run --dir . --dir {target_dir} dtlto-mock.wasm ... {resolved} ...`, \
         or run through dtlto-runner, which follows links itself.",
        quote(path),
        quote(target),
    )
}

/// `dir/target` with `.` and `..` resolved as far as the text allows.
fn lexically_joined(dir: &str, target: &str) -> String {
    let absolute = dir.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/').chain(target.split('/')) {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

fn quote(text: &str) -> String {
    dtlto_mock::message::quoted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn relative_paths_need_a_dot_preopen() {
        assert!(is_reachable("a/b.o", &dirs(&["."])));
        assert!(!is_reachable("a/b.o", &dirs(&["/tmp"])));
        assert!(is_reachable("a/b.o", &dirs(&["a"])));
    }

    #[test]
    fn absolute_paths_need_a_component_prefix() {
        assert!(is_reachable("/tmp/x/a.o", &dirs(&["/tmp/x"])));
        assert!(is_reachable("/tmp/x/a.o", &dirs(&["/"])));
        assert!(!is_reachable("/tmp/xy/a.o", &dirs(&["/tmp/x"])));
        assert!(!is_reachable("/tmp/x/a.o", &dirs(&["."])));
    }

    #[test]
    fn windows_paths_are_never_reachable_and_say_why() {
        assert!(!is_reachable(r"C:\b\a.o", &dirs(&[".", "/"])));
        assert!(!is_reachable(r"\\?\Z:\b\a.o", &dirs(&["."])));
        assert!(!is_reachable("d:/b/a.o", &dirs(&["."])));
        assert!(is_reachable("a:b.o", &dirs(&["."])));
        let message = unreachable_message("source", r"C:\b\a.o", &dirs(&["."]));
        assert!(message.contains("a Windows path"), "{message}");
        assert!(message.contains("run it through dtlto-runner"), "{message}");
    }

    #[test]
    fn a_link_out_of_reach_names_its_target_and_the_dir_that_reaches_it() {
        let message = link_out_of_reach_message(
            "source 1",
            "in/a.o",
            Some("../../store/x/a.o"),
            &dirs(&["."]),
        );
        assert!(
            message.contains("\"in/a.o\": it is a symbolic link to \"../../store/x/a.o\""),
            "{message}"
        );
        assert!(
            message.contains("--dir . --dir ../store/x dtlto-mock.wasm ... ../store/x/a.o"),
            "{message}"
        );
        let message =
            link_out_of_reach_message("source 1", "a.o", Some("/nix/store/x/a.o"), &dirs(&["."]));
        assert!(message.contains("--dir /nix/store/x "), "{message}");
        let message = link_out_of_reach_message("source 1", "a.o", None, &dirs(&["."]));
        assert!(
            message.contains("\"a.o\": it is a symbolic link that leads out"),
            "{message}"
        );
    }

    #[test]
    fn the_message_lists_preopens_and_the_fix() {
        let message = unreachable_message("source", "/data/a.o", &dirs(&["."]));
        assert!(message.contains("(preopened: \".\")"), "{message}");
        assert!(
            message.contains("wasmtime run --dir /data dtlto-mock.wasm"),
            "{message}"
        );
    }
}
