//! Which of the two contracts a command line asks for: by the program's name
//! (`dtlto-mock`, `dtlto-validate`) or a leading mode word (`mock`, `validate`);
//! mock is the default. Shared by the guest and the runner, which plans no writes
//! for validate mode.

/// Mock mode's fault options (`--fault=skip@1`) go among the sources; the runner
/// must not take them for files.
pub const FAULT_OPTION: &str = "--fault=";

/// Mock mode's sources among its arguments (the job file excluded), in order.
pub fn mock_sources<S: AsRef<str>>(args: &[S]) -> impl Iterator<Item = &str> {
    args.iter()
        .map(AsRef::as_ref)
        .filter(|arg| !arg.starts_with(FAULT_OPTION))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `mock.py`: copy `src_i` to `jobs[i].outputs[0]`.
    Mock,
    /// `validate.py`: print the arguments and the job file, then check it.
    Validate,
}

/// The program's name as the user invoked it (`/x/dtlto-mock.wasm` -> `dtlto-mock`).
pub fn program_name(argv0: Option<&str>) -> String {
    let name = argv0
        .map(|a| a.rsplit(['/', '\\']).next().unwrap_or(a))
        .unwrap_or("dtlto-mock");
    let stem = [".wasm", ".exe", ".py"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(name);
    if stem.is_empty() {
        "dtlto-mock".to_owned()
    } else {
        stem.to_owned()
    }
}

/// The mode for a program name and its arguments, and how many leading arguments
/// (0 or 1: the mode word) it took.
pub fn select<S: AsRef<str>>(program: &str, args: &[S]) -> (Mode, usize) {
    match args.first().map(AsRef::as_ref) {
        Some("mock") => (Mode::Mock, 1),
        Some("validate") => (Mode::Validate, 1),
        _ if matches!(program, "dtlto-validate" | "validate") => (Mode::Validate, 0),
        _ => (Mode::Mock, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mode_word_beats_the_program_name() {
        assert_eq!(select("dtlto-validate", &["mock", "a"]), (Mode::Mock, 1));
        assert_eq!(
            select("dtlto-mock", &["validate", "a"]),
            (Mode::Validate, 1)
        );
        assert_eq!(select("dtlto-validate", &["a"]), (Mode::Validate, 0));
        assert_eq!(select("dtlto-mock", &["a"]), (Mode::Mock, 0));
        assert_eq!(select::<&str>("whatever", &[]), (Mode::Mock, 0));
    }

    #[test]
    fn program_names_lose_directories_and_extensions() {
        assert_eq!(
            program_name(Some("/usr/bin/dtlto-validate")),
            "dtlto-validate"
        );
        assert_eq!(program_name(Some(r"C:\bin\dtlto-mock.exe")), "dtlto-mock");
        assert_eq!(program_name(Some("dtlto-mock.wasm")), "dtlto-mock");
        assert_eq!(program_name(None), "dtlto-mock");
    }
}
