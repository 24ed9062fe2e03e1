//! Fault injection for mock mode: the failures real distributors have, on demand,
//! for testing linkers. `--fault=KIND[=VALUE][@JOBS]`, given among the distributor
//! arguments; JOBS is `1,3` (job indexes) or `name:GLOB` (on outputs[0]'s file name);
//! without it a fault applies to every job. Each injected fault says so on stderr.

use crate::failure::Failure;

pub use dtlto_mock::mode::FAULT_OPTION as OPTION;

pub const HELP: &str = "\
Faults (mock mode), for testing what a linker does when distribution fails:
  --fault=KIND[=VALUE][@JOBS]   JOBS: job indexes (@1,3) or a glob on the output's
                                file name (@name:helper.*); default: every job
  exit-before=STATUS   exit with STATUS (1-125) before doing anything
  exit-after=STATUS    do the work, then exit with STATUS
  skip                 write no output for the job
  truncate             write the first half of the source
  garbage              write text that is not an object file
  empty                write an empty output
  delay=MS             wait MS milliseconds before the job
  extra-output         also write the job's declared extra outputs (outputs[1..])
  undeclared-output    also write OUTPUT.undeclared beside outputs[0] (refused by
                       dtlto-runner's sandbox, which then commits nothing)
Each injected fault prints one line on stderr.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    ExitBefore(u8),
    ExitAfter(u8),
    Skip,
    Truncate,
    Garbage,
    Empty,
    Delay(u64),
    ExtraOutput,
    UndeclaredOutput,
}

/// Which jobs a fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Jobs {
    All,
    Indexes(Vec<usize>),
    /// A glob (`*`, `?`) on the file name of `outputs[0]`.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: Kind,
    pub jobs: Jobs,
    /// As given, for messages.
    pub spec: String,
}

/// What a job's output should be, after the faults that apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Copy,
    Skip,
    Truncate,
    Garbage,
    Empty,
}

/// Text that no linker takes for an object file.
pub const GARBAGE: &[u8] = b"dtlto-mock --fault=garbage: this is not an object file\n";

/// Splits `--fault=` options from the other arguments (sources), keeping order.
pub fn split(args: &[String]) -> Result<(Vec<Fault>, Vec<String>), Failure> {
    let mut faults = Vec::new();
    let mut rest = Vec::new();
    for arg in args {
        match arg.strip_prefix(OPTION) {
            Some(spec) => faults.push(parse(spec)?),
            None => rest.push(arg.clone()),
        }
    }
    Ok((faults, rest))
}

fn parse(spec: &str) -> Result<Fault, Failure> {
    let usage = |why: &str| Failure::Usage(format!("{OPTION}{spec}: {why}\n\n{HELP}"));
    let (body, jobs) = match spec.split_once('@') {
        None => (spec, Jobs::All),
        Some((body, selector)) => {
            let jobs = match selector.strip_prefix("name:") {
                Some(glob) if !glob.is_empty() => Jobs::Named(glob.to_owned()),
                Some(_) => return Err(usage("an empty name pattern")),
                None => Jobs::Indexes(
                    selector
                        .split(',')
                        .map(|n| n.trim().parse::<usize>())
                        .collect::<Result<_, _>>()
                        .map_err(|_| usage("JOBS must be job indexes (@0,2) or @name:GLOB"))?,
                ),
            };
            (body, jobs)
        }
    };
    let (name, value) = match body.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (body, None),
    };
    let status = |value: Option<&str>| {
        value
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|s| (1..=125).contains(s))
            .ok_or_else(|| usage("needs an exit status from 1 to 125"))
    };
    let kind = match (name, value) {
        ("exit-before", v) => Kind::ExitBefore(status(v)?),
        ("exit-after", v) => Kind::ExitAfter(status(v)?),
        ("delay", Some(ms)) => Kind::Delay(
            ms.parse()
                .map_err(|_| usage("needs a delay in milliseconds"))?,
        ),
        ("skip", None) => Kind::Skip,
        ("truncate", None) => Kind::Truncate,
        ("garbage", None) => Kind::Garbage,
        ("empty", None) => Kind::Empty,
        ("extra-output", None) => Kind::ExtraOutput,
        ("undeclared-output", None) => Kind::UndeclaredOutput,
        _ => return Err(usage("unknown fault")),
    };
    Ok(Fault {
        kind,
        jobs,
        spec: spec.to_owned(),
    })
}

impl Fault {
    /// Whether this fault applies to job `index`, whose native object is `output`.
    pub fn applies_to(&self, index: usize, output: &str) -> bool {
        match &self.jobs {
            Jobs::All => true,
            Jobs::Indexes(indexes) => indexes.contains(&index),
            Jobs::Named(glob) => {
                let name = output.rsplit(['/', '\\']).next().unwrap_or(output);
                glob_matches(glob.as_bytes(), name.as_bytes())
            }
        }
    }
}

/// The status of the first `exit-before` fault, if any.
pub fn exit_before(faults: &[Fault]) -> Option<&Fault> {
    faults
        .iter()
        .find(|f| matches!(f.kind, Kind::ExitBefore(_)))
}

/// The first `exit-after` fault, if any.
pub fn exit_after(faults: &[Fault]) -> Option<&Fault> {
    faults.iter().find(|f| matches!(f.kind, Kind::ExitAfter(_)))
}

/// What to write for job `index`; the last content fault that applies wins.
pub fn content_for<'f>(
    faults: &'f [Fault],
    index: usize,
    output: &str,
) -> (Content, Option<&'f Fault>) {
    let mut chosen = (Content::Copy, None);
    for fault in faults.iter().filter(|f| f.applies_to(index, output)) {
        let content = match fault.kind {
            Kind::Skip => Content::Skip,
            Kind::Truncate => Content::Truncate,
            Kind::Garbage => Content::Garbage,
            Kind::Empty => Content::Empty,
            _ => continue,
        };
        chosen = (content, Some(fault));
    }
    chosen
}

/// The faults of `kind`'s sort (compared by variant) that apply to job `index`.
pub fn applying<'f>(
    faults: &'f [Fault],
    index: usize,
    output: &'f str,
    wanted: fn(&Kind) -> bool,
) -> impl Iterator<Item = &'f Fault> + 'f {
    faults
        .iter()
        .filter(move |f| wanted(&f.kind) && f.applies_to(index, output))
}

/// The one stderr line that says what was injected where.
pub fn announce(program: &str, fault: &Fault, place: &str) {
    eprintln!(
        "{program}: fault injected: --fault={} at {place}",
        fault.spec
    );
}

/// `*` matches any run of bytes, `?` one byte.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, None) => true,
        (Some((b'*', rest)), _) => {
            glob_matches(rest, text) || (!text.is_empty() && glob_matches(pattern, &text[1..]))
        }
        (Some((b'?', rest)), Some((_, text_rest))) => glob_matches(rest, text_rest),
        (Some((p, rest)), Some((t, text_rest))) if p == t => glob_matches(rest, text_rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn faults_are_taken_out_of_the_sources_in_order() {
        let (faults, rest) = split(&args(&[
            "a.o",
            "--fault=skip@1",
            "b.o",
            "--fault=delay=20@name:b.*",
        ]))
        .unwrap();
        assert_eq!(rest, ["a.o", "b.o"]);
        assert_eq!(faults[0].kind, Kind::Skip);
        assert_eq!(faults[0].jobs, Jobs::Indexes(vec![1]));
        assert_eq!(faults[1].kind, Kind::Delay(20));
        assert!(faults[1].applies_to(7, "out/b.7.native.o"));
        assert!(!faults[1].applies_to(7, "out/ab.7.native.o"));
    }

    #[test]
    fn bad_specs_are_usage_errors_that_show_the_syntax() {
        for spec in [
            "--fault=nope",
            "--fault=exit-after=0",
            "--fault=exit-before=300",
            "--fault=skip@x",
            "--fault=delay",
        ] {
            match split(&args(&[spec])) {
                Err(Failure::Usage(message)) => {
                    assert!(message.contains("KIND[=VALUE][@JOBS]"), "{message}")
                }
                other => panic!("{spec}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_last_content_fault_for_a_job_wins() {
        let (faults, _) = split(&args(&["--fault=garbage", "--fault=empty@2"])).unwrap();
        assert_eq!(content_for(&faults, 1, "x").0, Content::Garbage);
        assert_eq!(content_for(&faults, 2, "x").0, Content::Empty);
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches(b"*.native.o", b"main.1.2.native.o"));
        assert!(glob_matches(b"m?in*", b"main.o"));
        assert!(!glob_matches(b"main", b"main.o"));
    }
}
