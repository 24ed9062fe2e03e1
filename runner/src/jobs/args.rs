//! Pointing a job's output arguments at staged paths.
//!
//! A job's compile command names each of its outputs (`-o main.1.native.o`); the
//! runner replaces exactly those arguments, in the forms clang accepts for an output
//! (`-o X`, `-oX`, `--output X`, `--output=X`), by the staged path. Nothing else is
//! rewritten: `-fthinlto-index=main.1.native.o.thinlto.bc` holds an output's name,
//! but is an input.

use dtlto_mock::message::quoted;

/// Replaces, in `args`, every output argument naming `output` by `staged`; returns
/// how many it replaced. `args[0]` is the program, never an output.
pub fn point_output(args: &mut [String], output: &str, staged: &str) -> usize {
    let mut replaced = 0;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        if (arg == "-o" || arg == "--output") && args.get(i + 1).is_some_and(|v| v == output) {
            args[i + 1] = staged.to_owned();
            replaced += 1;
            i += 2;
            continue;
        }
        for prefix in ["--output=", "-o"] {
            if arg.strip_prefix(prefix) == Some(output) {
                args[i] = format!("{prefix}{staged}");
                replaced += 1;
                break;
            }
        }
        i += 1;
    }
    replaced
}

/// A path of the runner's as a job is given it (a staged output, its TMPDIR). On
/// Windows the runner's directories are canonical, so verbatim (`\\?\C:\...`), a form
/// that many programs cannot take apart or extend (one that appends `/name` names
/// another file): a job gets the plain form (`C:\...`, `\\server\share\...`)
/// wherever that names the same file, and the verbatim one only where it does not.
pub fn for_job(path: &std::path::Path) -> String {
    let path = path.to_string_lossy();
    match cfg!(windows).then(|| plain_windows(&path)).flatten() {
        Some(plain) => plain,
        None => path.into_owned(),
    }
}

/// The plain form of a verbatim Windows path, if Win32 reads it back as the same
/// path: shorter than MAX_PATH, and no component it would rewrite (`.`, `..`, a
/// trailing dot or space, `/`) or take for a device (`NUL`, `COM1.txt`).
fn plain_windows(path: &str) -> Option<String> {
    let plain = if let Some(share) = path.strip_prefix(r"\\?\UNC\") {
        format!(r"\\{share}")
    } else {
        let rest = path.strip_prefix(r"\\?\")?;
        let drive = rest.as_bytes();
        if !(drive.len() >= 3 && drive[0].is_ascii_alphabetic() && &drive[1..3] == b":\\") {
            return None;
        }
        rest.to_owned()
    };
    const DEVICES: &[&str] = &["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"];
    let rewritten = |c: &str| {
        let stem = c
            .split('.')
            .next()
            .unwrap_or(c)
            .trim_end()
            .to_ascii_uppercase();
        // COM1 to COM9, and since Windows 10 also COM¹, COM² and COM³ (LPT alike).
        let numbered = (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.chars().count() == 4
            && stem
                .chars()
                .nth(3)
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '¹' | '²' | '³'));
        c.is_empty()
            || c == "."
            || c == ".."
            || c.ends_with(['.', ' '])
            || c.contains('/')
            || numbered
            || DEVICES.contains(&stem.as_str())
    };
    let mut components = plain.trim_start_matches('\\').split('\\').skip(1);
    // MAX_PATH counts UTF-16 units, the terminating one included.
    (plain.encode_utf16().count() < 260 && !components.any(rewritten)).then_some(plain)
}

/// Whether a clang command asks for its temporaries in the working directory
/// (`-save-temps`, `--save-temps`, `=cwd`), where it writes files the job file does
/// not declare.
pub fn asks_for_temporaries_in_cwd(args: &[String]) -> bool {
    args.iter().skip(1).any(|arg| {
        matches!(
            arg.as_str(),
            "-save-temps" | "--save-temps" | "-save-temps=cwd" | "--save-temps=cwd"
        )
    })
}

/// What clang's `-save-temps` adds to the name of the assembly file it keeps
/// (`<input stem>.s`), for each temporary of a ThinLTO backend compile: the module at
/// each stage of LTO's pipeline, and the symbol resolutions.
const SAVE_TEMPS_SUFFIXES: &[&str] = &[
    "",
    ".0.preopt.bc",
    ".1.promote.bc",
    ".2.internalize.bc",
    ".3.import.bc",
    ".4.opt.bc",
    ".5.precodegen.bc",
    ".resolution.txt",
];

/// The names (in the working directory) of the temporaries a compile that
/// [`asks_for_temporaries_in_cwd`] may write: clang names them after each input it
/// compiles (an argument that is one of the job's `inputs`), by the input's file
/// name without its extension: `dtlto.obj` gives `dtlto.s`, `dtlto.s.0.preopt.bc`...
/// Empty for a compile that does not ask.
pub fn temporaries_in_cwd(args: &[String], inputs: &[String]) -> Vec<String> {
    if !asks_for_temporaries_in_cwd(args) {
        return Vec::new();
    }
    let mut names = Vec::new();
    let after_output = |i: usize| i >= 2 && matches!(args[i - 1].as_str(), "-o" | "--output");
    let compiled = (1..args.len()).filter(|&i| !after_output(i) && inputs.contains(&args[i]));
    for arg in compiled.map(|i| &args[i]) {
        let Some(stem) = std::path::Path::new(arg)
            .file_stem()
            .and_then(|s| s.to_str())
        else {
            continue;
        };
        for suffix in SAVE_TEMPS_SUFFIXES {
            let name = format!("{stem}.s{suffix}");
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// At most this many bytes of a command are shown in a message.
pub const SHOWN_COMMAND_BYTES: usize = 4096;

/// A command for messages: as a POSIX shell would read it back, except that a word
/// holding a control character (an escape, a newline) is shown as the rest of the
/// runner shows text, double-quoted with those escaped (`"\u{1b}[31m"`), so that a
/// job file cannot rewrite the terminal; and past [`SHOWN_COMMAND_BYTES`] bytes cut,
/// saying how many more there were (an argument list too long for the system).
pub fn shell_words(args: &[String]) -> String {
    let words = args
        .iter()
        .map(|arg| {
            let plain = !arg.is_empty()
                && arg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=,+:@%".contains(&b));
            if plain {
                return arg.clone();
            }
            let escaped = quoted(arg);
            if escaped.len() != arg.len() + 2 + arg.matches('"').count() {
                escaped
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    bounded(words, SHOWN_COMMAND_BYTES)
}

/// `text`, cut to at most `limit` bytes (at a character's boundary) with how many
/// more there were.
fn bounded(mut text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let more = text.len() - cut;
    text.truncate(cut);
    text.push_str(&format!("\u{2026} ({more} more bytes)"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn every_form_of_an_output_argument_is_pointed_at_staging() {
        for (before, after) in [
            (&["clang", "-o", "a.o"][..], &["clang", "-o", "/s/a.o"][..]),
            (&["clang", "-oa.o"], &["clang", "-o/s/a.o"]),
            (
                &["clang", "--output", "a.o"],
                &["clang", "--output", "/s/a.o"],
            ),
            (&["clang", "--output=a.o"], &["clang", "--output=/s/a.o"]),
        ] {
            let mut args = strings(before);
            assert_eq!(point_output(&mut args, "a.o", "/s/a.o"), 1, "{before:?}");
            assert_eq!(args, strings(after));
        }
    }

    #[test]
    fn only_exact_output_arguments_change() {
        let before = [
            "a.o",
            "x.o",
            "-fthinlto-index=a.o.thinlto.bc",
            "-o",
            "a.o.thinlto.bc",
            "-oa.o2",
            "--output=./a.o",
            "-o",
        ];
        let mut args = strings(&before);
        assert_eq!(point_output(&mut args, "a.o", "/s/a.o"), 0);
        assert_eq!(args, strings(&before));
    }

    #[test]
    fn an_output_named_like_an_option_is_still_found() {
        let mut args = strings(&["clang", "-o", "-o", "x.bc"]);
        assert_eq!(point_output(&mut args, "-o", "/s/-o"), 1);
        assert_eq!(args, strings(&["clang", "-o", "/s/-o", "x.bc"]));
    }

    #[test]
    fn save_temps_in_the_working_directory_is_seen() {
        for arg in ["-save-temps", "--save-temps", "-save-temps=cwd"] {
            assert!(asks_for_temporaries_in_cwd(&strings(&["clang", "-c", arg])));
        }
        for args in [&["clang", "-save-temps=obj"][..], &["-save-temps", "-c"]] {
            assert!(!asks_for_temporaries_in_cwd(&strings(args)));
        }
    }

    #[test]
    fn temporaries_are_named_after_each_compiled_input() {
        let inputs = strings(&["/tmp/ld-dtlto-1a2b.o", "dtlto.obj", "x.thinlto.bc"]);
        let args = strings(&[
            "clang",
            "-c",
            "-x",
            "ir",
            "/tmp/ld-dtlto-1a2b.o",
            "-fthinlto-index=x.thinlto.bc",
            "-o",
            "dtlto.obj",
            "--save-temps",
        ]);
        // Only an argument that is an input, whole: not -o's value, not an index.
        let names = temporaries_in_cwd(&args, &inputs);
        assert_eq!(names.len(), 8);
        assert_eq!(names[0], "ld-dtlto-1a2b.s");
        assert!(names.contains(&"ld-dtlto-1a2b.s.3.import.bc".to_string()));
        assert!(names.contains(&"ld-dtlto-1a2b.s.resolution.txt".to_string()));
        assert!(names.iter().all(|n| n.starts_with("ld-dtlto-1a2b.s")));
        // No -save-temps, no temporaries.
        assert!(temporaries_in_cwd(&args[..8], &inputs).is_empty());
    }

    #[test]
    fn jobs_get_plain_windows_paths_where_they_name_the_same_file() {
        for (verbatim, plain) in [
            (
                r"\\?\C:\b\.dtlto-staging-1\out\a.o",
                Some(r"C:\b\.dtlto-staging-1\out\a.o"),
            ),
            (r"\\?\UNC\server\share\b\a.o", Some(r"\\server\share\b\a.o")),
            (r"C:\b\a.o", None),
            (r"\\?\Volume{1234}\b", None),
            (r"\\?\C:\b\a.o.", None),
            (r"\\?\C:\b\nul.o\a.o", None),
            (r"\\?\C:\com1\a.o", None),
            (r"\\?\C:\COM².txt\a.o", None),
            (r"\\?\C:\lpt³\a.o", None),
            (r"\\?\C:\b\..\a.o", None),
            (r"\\?\C:\b/c\a.o", None),
        ] {
            assert_eq!(plain_windows(verbatim).as_deref(), plain, "{verbatim}");
        }
        let long = format!(r"\\?\C:\{}", "d\\".repeat(130));
        assert_eq!(plain_windows(&long), None);
        // 128 characters outside the BMP: 256 UTF-16 units, past MAX_PATH with the drive.
        let wide = format!(r"\\?\C:\{}\a.o", "\u{1F600}".repeat(128));
        assert_eq!(plain_windows(&wide), None);
        assert_eq!(
            plain_windows(r"\\?\C:\combined\lpt.o").as_deref(),
            Some(r"C:\combined\lpt.o")
        );
    }

    #[test]
    fn commands_are_shown_as_a_shell_reads_them() {
        assert_eq!(
            shell_words(&strings(&["clang", "-c", "a b.o", "it's", ""])),
            r"clang -c 'a b.o' 'it'\''s' ''"
        );
    }

    #[test]
    fn commands_in_messages_escape_control_characters_and_are_bounded() {
        assert_eq!(
            shell_words(&strings(&["clang", "-D\u{1b}[2J", "a\nb", "say \"hi\""])),
            r#"clang "-D\u{1b}[2J" "a\nb" 'say "hi"'"#
        );
        let long = "x".repeat(3 << 20);
        let shown = shell_words(&strings(&["clang", &long]));
        assert!(shown.len() < SHOWN_COMMAND_BYTES + 64, "{}", shown.len());
        assert!(shown.ends_with(&format!(
            "\u{2026} ({} more bytes)",
            "clang ".len() + long.len() - SHOWN_COMMAND_BYTES
        )));
        // Cut at a character's boundary.
        let greek = "λ".repeat(SHOWN_COMMAND_BYTES);
        assert!(shell_words(&strings(&[&greek])).starts_with("'λλ"));
    }
}
