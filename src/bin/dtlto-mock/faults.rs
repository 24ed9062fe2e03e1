//! Fault injection for mock mode: the failures real distributors have, on demand,
//! for testing linkers. `--fault=KIND[=VALUE][@JOBS]`, given among the distributor
//! arguments; JOBS is `1,3` (job indexes) or `name:GLOB` (on outputs[0]'s file name);
//! without it a fault applies to every job. Each injected fault says so on stderr.
//!
//! The options become a `Plan` once, as data: for each job, the lines to print, the
//! wait and the writes; and how the run ends. mock.rs carries the plan out.

use crate::failure::Failure;
use dtlto_mock::message::quoted;

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

/// The first `exit-before` fault, if any, with the status it asks for.
pub fn exit_before(faults: &[Fault]) -> Option<(&Fault, u8)> {
    faults.iter().find_map(|f| match f.kind {
        Kind::ExitBefore(status) => Some((f, status)),
        _ => None,
    })
}

/// What mock mode writes for one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The job's source, whole.
    Source,
    /// The first half of the job's source.
    HalfOfSource,
    /// These bytes.
    Bytes(Vec<u8>),
}

/// One thing mock mode does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Say that a fault was injected: `--fault=SPEC at PLACE`.
    Announce { spec: String, place: String },
    /// Wait this many milliseconds.
    Wait(u64),
    /// Write the output at `path` (a path from the job file) with `suffix` added.
    Write {
        /// `jobs[i].outputs[k]`, for messages.
        location: String,
        path: String,
        suffix: &'static str,
        content: Content,
    },
}

/// A job's steps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobPlan {
    pub steps: Vec<Step>,
}

/// Everything the faults ask of a run over `jobs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub jobs: Vec<JobPlan>,
    /// An `exit-after` fault: its spec and the status to exit with after the work.
    pub exit_after: Option<(String, u8)>,
}

/// Plans mock mode's work on `jobs` under `faults`. Without faults each job has one
/// step: writing its source to `outputs[0]`.
pub fn plan(faults: &[Fault], jobs: &[dtlto_mock::job_file::Job]) -> Plan {
    let announce = |fault: &Fault, place: String| Step::Announce {
        spec: fault.spec.clone(),
        place,
    };
    let plans = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            let output = job.native_object();
            let applying: Vec<&Fault> = faults.iter().filter(|f| f.applies_to(i, output)).collect();
            // Formatted only for a fault that applies: most jobs of a link have none.
            let place = || format!("jobs[{i}].outputs[0] {}", quoted(output));
            let mut steps = Vec::new();
            for fault in &applying {
                if let Kind::Delay(ms) = fault.kind {
                    steps.push(announce(fault, place()));
                    steps.push(Step::Wait(ms));
                }
            }
            // The last content fault that applies wins.
            let content_fault = applying.iter().rev().find(|f| {
                matches!(
                    f.kind,
                    Kind::Skip | Kind::Truncate | Kind::Garbage | Kind::Empty
                )
            });
            if let Some(fault) = content_fault {
                steps.push(announce(fault, place()));
            }
            let content = match content_fault.map(|f| &f.kind) {
                None => Some(Content::Source),
                Some(Kind::Truncate) => Some(Content::HalfOfSource),
                Some(Kind::Garbage) => Some(Content::Bytes(GARBAGE.to_vec())),
                Some(Kind::Empty) => Some(Content::Bytes(Vec::new())),
                _ => None,
            };
            if let Some(content) = content {
                steps.push(Step::Write {
                    location: format!("jobs[{i}].outputs[0]"),
                    path: output.to_owned(),
                    suffix: "",
                    content,
                });
            }
            for fault in applying.iter().filter(|f| f.kind == Kind::ExtraOutput) {
                if job.outputs.len() < 2 {
                    let place =
                        format!("jobs[{i}], which declares no extra output: nothing written");
                    steps.push(announce(fault, place));
                }
                for (k, extra) in job.outputs.iter().enumerate().skip(1) {
                    let location = format!("jobs[{i}].outputs[{k}]");
                    steps.push(announce(fault, format!("{location} {}", quoted(extra))));
                    let text = format!("dtlto-mock --fault=extra-output: {location}\n");
                    steps.push(Step::Write {
                        location,
                        path: extra.clone(),
                        suffix: "",
                        content: Content::Bytes(text.into_bytes()),
                    });
                }
            }
            for fault in applying.iter().filter(|f| f.kind == Kind::UndeclaredOutput) {
                let neighbour = quoted(&format!("{output}.undeclared"));
                steps.push(announce(fault, format!("{neighbour}, beside {}", place())));
                steps.push(Step::Write {
                    location: "an undeclared output".to_owned(),
                    path: output.to_owned(),
                    suffix: ".undeclared",
                    content: Content::Bytes(b"undeclared\n".to_vec()),
                });
            }
            JobPlan { steps }
        })
        .collect();
    let exit_after = faults.iter().find_map(|f| match f.kind {
        Kind::ExitAfter(status) => Some((f.spec.clone(), status)),
        _ => None,
    });
    Plan {
        jobs: plans,
        exit_after,
    }
}

/// The one stderr line that says what was injected where.
pub fn announce(program: &str, spec: &str, place: &str) {
    dtlto_mock::stderr_line!("{program}: fault injected: --fault={spec} at {place}");
}

/// `*` matches any run of bytes, `?` one byte. Linear in practice: the pattern's
/// pieces between stars are found left to right, each at its first place, which is
/// where a match is if there is one (no backtracking, so `*a*a*a*b` stays cheap).
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let pieces: Vec<&[u8]> = pattern.split(|&b| b == b'*').collect();
    let (first, rest) = pieces
        .split_first()
        .expect("split yields at least one piece");
    let Some((last, middle)) = rest.split_last() else {
        // No star: the whole name.
        return first.len() == text.len() && piece_matches(first, text);
    };
    if first.len() + last.len() > text.len()
        || !piece_matches(first, &text[..first.len()])
        || !piece_matches(last, &text[text.len() - last.len()..])
    {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for piece in middle.iter().filter(|piece| !piece.is_empty()) {
        match rest
            .windows(piece.len())
            .position(|w| piece_matches(piece, w))
        {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A star-free piece against bytes of the same length.
fn piece_matches(piece: &[u8], text: &[u8]) -> bool {
    piece.iter().zip(text).all(|(p, t)| *p == b'?' || p == t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtlto_mock::job_file::Job;

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

    fn jobs(outputs: &[&[&str]]) -> Vec<Job> {
        outputs
            .iter()
            .map(|outputs| Job {
                args: Vec::new(),
                inputs: vec!["a.o".into(), "a.bc".into()],
                outputs: outputs.iter().map(|s| s.to_string()).collect(),
            })
            .collect()
    }

    fn write(location: &str, path: &str, content: Content) -> Step {
        Step::Write {
            location: location.into(),
            path: path.into(),
            suffix: "",
            content,
        }
    }

    fn plan_of(options: &[&str], jobs: &[Job]) -> Plan {
        let (faults, _) = split(&args(options)).unwrap();
        plan(&faults, jobs)
    }

    #[test]
    fn without_faults_each_job_copies_its_source() {
        let plan = plan_of(&[], &jobs(&[&["a.o"], &["b.o"]]));
        assert_eq!(
            plan.jobs[1].steps,
            [write("jobs[1].outputs[0]", "b.o", Content::Source)]
        );
        assert_eq!(plan.exit_after, None);
    }

    #[test]
    fn the_last_content_fault_for_a_job_wins() {
        let plan = plan_of(
            &["--fault=garbage", "--fault=empty@1"],
            &jobs(&[&["a.o"], &["b.o"]]),
        );
        let garbage = Content::Bytes(GARBAGE.to_vec());
        assert_eq!(
            plan.jobs[0].steps[1],
            write("jobs[0].outputs[0]", "a.o", garbage)
        );
        assert_eq!(
            plan.jobs[1].steps,
            [
                Step::Announce {
                    spec: "empty@1".into(),
                    place: "jobs[1].outputs[0] \"b.o\"".into()
                },
                write("jobs[1].outputs[0]", "b.o", Content::Bytes(Vec::new())),
            ]
        );
    }

    #[test]
    fn skip_writes_nothing_and_delay_waits_first() {
        let plan = plan_of(
            &["--fault=skip@name:b.*", "--fault=delay=20@1"],
            &jobs(&[&["a.o"], &["b.o"]]),
        );
        let steps = &plan.jobs[1].steps;
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert_eq!(steps[1], Step::Wait(20));
        assert!(matches!(&steps[2], Step::Announce { spec, .. } if spec == "skip@name:b.*"));
    }

    #[test]
    fn extra_and_undeclared_outputs_are_planned_writes() {
        let plan = plan_of(
            &[
                "--fault=extra-output",
                "--fault=undeclared-output@0",
                "--fault=exit-after=3",
            ],
            &jobs(&[&["a.o", "a.dwo"], &["b.o"]]),
        );
        let writes: Vec<(&str, &str)> = plan.jobs[0]
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Write { path, suffix, .. } => Some((path.as_str(), *suffix)),
                _ => None,
            })
            .collect();
        assert_eq!(writes, [("a.o", ""), ("a.dwo", ""), ("a.o", ".undeclared")]);
        let says_nothing_written = plan.jobs[1].steps.iter().any(|s| {
            matches!(s, Step::Announce { place, .. }
                if place == "jobs[1], which declares no extra output: nothing written")
        });
        assert!(says_nothing_written, "{:?}", plan.jobs[1].steps);
        assert_eq!(plan.exit_after, Some(("exit-after=3".into(), 3)));
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_matches(b"*.native.o", b"main.1.2.native.o"));
        assert!(glob_matches(b"m?in*", b"main.o"));
        assert!(glob_matches(b"*", b""));
        assert!(glob_matches(b"a*b*c", b"abc"));
        assert!(glob_matches(b"a*b*c", b"axxbyybc"));
        assert!(!glob_matches(b"a*b*c", b"axxbyyb"));
        assert!(!glob_matches(b"main", b"main.o"));
        assert!(!glob_matches(b"ab*ba", b"aba"));
    }

    #[test]
    fn many_stars_against_a_long_name_stay_cheap() {
        // With backtracking, this would not end in the lifetime of the machine.
        let name = vec![b'a'; 100_000];
        assert!(!glob_matches(b"*a*a*a*a*a*a*a*a*b", &name));
    }
}
