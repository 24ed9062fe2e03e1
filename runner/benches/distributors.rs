//! Benchmarks: dtlto-runner in mock and validate mode, side by side with a Python mock
//! of the same contract (benches/mock_contract.py) and the copy floor (a native loop of
//! std::fs::copy in one process, in-kernel copies). Prints median and spread of several
//! runs, ratios against Python and the floor, and each process's peak memory. A tool
//! whose runs take a few milliseconds is run until it has had a second as well, so that
//! the median of a one-job run is not one noisy sample among five. (Longer runs are not
//! repeated more: back-to-back runs that write gigabytes measure the disk's writeback.)
//!
//!     cargo bench -p dtlto-runner                 # every shape, 5 runs each
//!     cargo bench -p dtlto-runner -- --runs 9 --only 10k --dir /dev/shm
//!     cargo bench -p dtlto-runner -- --compare /path/to/older/dtlto-runner
//!
//! The tools of a shape run in turn, round after round, so that a machine whose speed
//! drifts slows them all alike. `--compare` also measures another build of the runner
//! on the same workloads, in turn with this one, and prints each row's ratio against it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A generated workload: `jobs` jobs, each with a source of `bytes` bytes.
struct Shape {
    name: &'static str,
    jobs: usize,
    bytes: usize,
    /// Validate-only shapes have no sources to copy.
    copies: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "1 x 1 KiB",
        jobs: 1,
        bytes: 1 << 10,
        copies: true,
    },
    Shape {
        name: "200 x 1 MiB",
        jobs: 200,
        bytes: 1 << 20,
        copies: true,
    },
    Shape {
        name: "20 x 50 MiB",
        jobs: 20,
        bytes: 50 << 20,
        copies: true,
    },
    Shape {
        name: "10,000 x 4 KiB",
        jobs: 10_000,
        bytes: 4 << 10,
        copies: true,
    },
    Shape {
        name: "1k jobs, validate",
        jobs: 1_000,
        bytes: 0,
        copies: false,
    },
    Shape {
        name: "10k jobs, validate",
        jobs: 10_000,
        bytes: 0,
        copies: false,
    },
    Shape {
        name: "100k jobs, validate",
        jobs: 100_000,
        bytes: 0,
        copies: false,
    },
];

/// One measured tool: wall times and the peak resident memory of its process.
struct Measurement {
    times: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

impl Measurement {
    fn median(&self) -> Duration {
        let mut sorted = self.times.clone();
        sorted.sort();
        sorted[sorted.len() / 2]
    }

    fn spread(&self) -> (Duration, Duration) {
        let min = self.times.iter().min().copied().unwrap_or_default();
        let max = self.times.iter().max().copied().unwrap_or_default();
        (min, max)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = option("--runs").and_then(|n| n.parse().ok()).unwrap_or(5);
    let only = option("--only");
    let compared = option("--compare").map(PathBuf::from);
    let runner = PathBuf::from(env!("CARGO_BIN_EXE_dtlto-runner"));
    let benches = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    let oracle = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/oracle/cpython_validate.py");
    // Where the workloads live (--dir): the file system is part of what is measured.
    let base = option("--dir")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let root = tempfile::Builder::new()
        .prefix("dtlto-bench-")
        .tempdir_in(&base)
        .unwrap_or_else(|e| panic!("create a directory in {}: {e}", base.display()));

    println!(
        "dtlto-runner benchmarks: {runs} runs each (runs under {} ms: as many as fill {} s); \
         median [min..max]; peak RSS of the process",
        SHORT_RUN.as_millis(),
        MIN_MEASURED.as_secs()
    );
    println!(
        "machine: {}; workloads in {}",
        machine_description(),
        base.display()
    );
    for shape in SHAPES {
        if only.as_deref().is_some_and(|o| !shape.name.contains(o)) {
            continue;
        }
        let dir = root.path().join(shape.name.replace([' ', ','], "_"));
        let (sources, job_file) = generate(&dir, shape);
        let job_size = fs::metadata(dir.join(&job_file))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "\n== {} (job file {:.1} MiB)",
            shape.name,
            job_size as f64 / (1 << 20) as f64
        );
        let mut mock_args = sources.clone();
        mock_args.push(job_file.clone());
        let clean = || fresh_output_dir(&dir);

        let mut python_mock_args = vec![benches
            .join("mock_contract.py")
            .to_string_lossy()
            .into_owned()];
        python_mock_args.extend(mock_args.iter().cloned());
        let validate_args = vec!["validate".to_owned(), job_file.clone()];
        let python_validate_args = vec![oracle.to_string_lossy().into_owned(), job_file.clone()];
        let python = Path::new("python3");

        // Each group's tools run in turn, round after round: a machine whose speed
        // drifts (a shared one drifts by 20% in minutes) slows them all alike, and
        // the ratios between them hold.
        let mut groups: Vec<Vec<(&str, Tool)>> = Vec::new();
        if shape.copies {
            let mut mock = vec![(
                "runner mock",
                Tool::Command(Box::new(|| command(&runner, &mock_args, &dir))),
            )];
            if let Some(compared) = &compared {
                mock.push((
                    "compared mock",
                    Tool::Command(Box::new(|| command(compared, &mock_args, &dir))),
                ));
            }
            mock.push((
                "python3 mock",
                Tool::Command(Box::new(|| command(python, &python_mock_args, &dir))),
            ));
            mock.push(("floor: fs::copy loop", Tool::Floor(&dir, &sources)));
            groups.push(mock);
        }
        let mut validate = vec![(
            "runner validate",
            Tool::Command(Box::new(|| command(&runner, &validate_args, &dir))),
        )];
        if let Some(compared) = &compared {
            validate.push((
                "compared validate",
                Tool::Command(Box::new(|| command(compared, &validate_args, &dir))),
            ));
        }
        if !shape.copies {
            validate.push((
                "python3 validate",
                Tool::Command(Box::new(|| command(python, &python_validate_args, &dir))),
            ));
        }
        groups.push(validate);
        let mut rows: Vec<(&str, Measurement)> = Vec::new();
        for group in &groups {
            let tools: Vec<&Tool> = group.iter().map(|(_, tool)| tool).collect();
            let measured = measure_in_turn(runs, &clean, &tools);
            rows.extend(group.iter().map(|(name, _)| *name).zip(measured));
        }
        report(&rows, shape, job_size);
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Writes the sources and a compact job file like lld's; returns their names. Both are
/// streamed: a child process inherits this process's peak memory as its own starting
/// peak (Linux keeps the high-water mark across fork and exec), so we keep it small.
fn generate(dir: &Path, shape: &Shape) -> (Vec<String>, String) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("create the bench directory");
    let mut sources = Vec::new();
    if shape.copies {
        let block: Vec<u8> = (0..shape.bytes.min(1 << 20))
            .map(|i| (i as u8).wrapping_mul(167))
            .collect();
        for i in 0..shape.jobs {
            let name = format!("s{i}.native.o");
            let mut file = fs::File::create(dir.join(&name)).expect("create a source");
            let mut left = shape.bytes;
            while left > 0 {
                let n = left.min(block.len());
                // Vary the content per block and per file, so no two blocks are alike.
                let mut chunk = block[..n].to_vec();
                chunk[0] = (left >> 20) as u8;
                chunk[n - 1] = i as u8;
                file.write_all(&chunk).expect("write a source");
                left -= n;
            }
            sources.push(name);
        }
    }
    let job_file = "app.4242.dist-file.json".to_owned();
    let mut out = std::io::BufWriter::new(
        fs::File::create(dir.join(&job_file)).expect("create the job file"),
    );
    write!(
        out,
        r#"{{"common":{{"linker_output":"app","args":["/usr/bin/clang-23","-c","--target=x86_64-unknown-linux-gnu","-O2","-faddrsig","-ffunction-sections","-fdata-sections","-fpic"],"inputs":[]}},"jobs":["#
    )
    .expect("write the job file");
    for i in 0..shape.jobs {
        let import = (i + 1) % shape.jobs.max(1);
        write!(
            out,
            r#"{}{{"args":["m{i}.o","-fthinlto-index=m{i}.{i}.4242.native.o.thinlto.bc","-o","out/o{i}.native.o"],"inputs":["m{i}.o","m{i}.{i}.4242.native.o.thinlto.bc","m{import}.o"],"outputs":["out/o{i}.native.o"]}}"#,
            if i == 0 { "" } else { "," }
        )
        .expect("write the job file");
    }
    write!(out, "]}}").expect("write the job file");
    out.flush().expect("write the job file");
    (sources, job_file)
}

/// Gives the next run an empty `out/`. The previous outputs are moved aside, not
/// deleted: deleting thousands of files queues discards (ext4 with `discard` here)
/// that slow the next run's file creation. Once more than 1 GiB has piled up, it is
/// deleted and synced, outside the timing, before dirty pages throttle the next run.
fn fresh_output_dir(dir: &Path) {
    let out = dir.join("out");
    let trash = dir.join("trash");
    if out.exists() {
        fs::create_dir_all(&trash).expect("create trash");
        let n = fs::read_dir(&trash).map(|d| d.count()).unwrap_or(0);
        fs::rename(&out, trash.join(n.to_string())).expect("move outputs aside");
    }
    if tree_size(&trash) > 1 << 30 {
        let _ = fs::remove_dir_all(&trash);
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
    }
    fs::create_dir(&out).expect("create the output directory");
}

fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}

fn command(program: &Path, args: &[String], dir: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    command
}

/// Runs shorter than this on average...
const SHORT_RUN: Duration = Duration::from_millis(20);
/// ...go on past `runs` runs until they add up to this much...
const MIN_MEASURED: Duration = Duration::from_secs(1);
/// ...or there are this many.
const MAX_RUNS: usize = 1000;

fn enough(times: &[Duration], runs: usize) -> bool {
    let total: Duration = times.iter().sum();
    let short = total < SHORT_RUN * times.len() as u32;
    times.len() >= runs && (!short || total >= MIN_MEASURED || times.len() >= MAX_RUNS)
}

/// What a row measures: a fresh process, or the floor's loop in this one.
enum Tool<'a> {
    Command(Box<dyn Fn() -> Command + 'a>),
    /// The same copies as one native loop of std::fs::copy (copy_file_range).
    Floor(&'a Path, &'a [String]),
}

/// Runs each of `tools` at least `runs` times (after one warm-up each), in turn: one
/// run of every tool that still needs runs per round, outputs cleaned before each.
fn measure_in_turn(runs: usize, clean: &dyn Fn(), tools: &[&Tool]) -> Vec<Measurement> {
    let mut measured: Vec<Measurement> = tools
        .iter()
        .map(|tool| Measurement {
            times: Vec::new(),
            peak_rss_kib: matches!(tool, Tool::Command(_)).then_some(0),
        })
        .collect();
    let mut warm = vec![false; tools.len()];
    loop {
        let mut ran = false;
        for (i, tool) in tools.iter().enumerate() {
            if warm[i] && enough(&measured[i].times, runs) {
                continue;
            }
            ran = true;
            clean();
            let (elapsed, rss) = run_once(tool);
            if warm[i] {
                measured[i].times.push(elapsed);
                if let (Some(peak), Some(rss)) = (&mut measured[i].peak_rss_kib, rss) {
                    *peak = (*peak).max(rss);
                }
            }
            warm[i] = true;
        }
        if !ran {
            return measured;
        }
    }
}

/// One run of `tool`: its wall time and, for a process, its peak RSS in KiB.
fn run_once(tool: &Tool) -> (Duration, Option<u64>) {
    let start = Instant::now();
    match tool {
        Tool::Command(make) => {
            // Reaped by wait4 below, which also reports the child's own peak memory.
            #[allow(clippy::zombie_processes)]
            let child = make().spawn().expect("start the benchmarked command");
            let (status, rss) = wait_with_peak_rss(child.id());
            let elapsed = start.elapsed();
            assert_eq!(status, 0, "a benchmarked command failed");
            (elapsed, Some(rss))
        }
        Tool::Floor(dir, sources) => {
            for (i, source) in sources.iter().enumerate() {
                fs::copy(dir.join(source), dir.join(format!("out/o{i}.native.o"))).expect("copy");
            }
            (start.elapsed(), None)
        }
    }
}

/// Waits for one child and returns its exit status and peak RSS in KiB.
fn wait_with_peak_rss(pid: u32) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage (plain integers) is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: plain wait4 on our own child; both out-parameters are valid for writes.
    let waited = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid as libc::pid_t, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

fn report(rows: &[(&str, Measurement)], shape: &Shape, job_size: u64) {
    let median_of = |name: &str| {
        rows.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m.median())
    };
    let python = median_of("python3 mock").or(median_of("python3 validate"));
    let floor = median_of("floor: fs::copy loop");
    for (name, m) in rows {
        let (min, max) = m.spread();
        let mut line = format!(
            "  {name:<22} {:>9.1} ms [{:.1}..{:.1}]",
            ms(m.median()),
            ms(min),
            ms(max)
        );
        if let Some(kib) = m.peak_rss_kib {
            line.push_str(&format!("  rss {:>7.1} MiB", kib as f64 / 1024.0));
            if !shape.copies && job_size > 0 {
                line.push_str(&format!(
                    " ({:.2}x job file)",
                    (kib * 1024) as f64 / job_size as f64
                ));
            }
        }
        if let Some(python) = python {
            line.push_str(&format!(
                "  {:>6.2}x python",
                m.median().as_secs_f64() / python.as_secs_f64()
            ));
        }
        if let Some(floor) = floor {
            line.push_str(&format!(
                "  {:>6.2}x floor",
                m.median().as_secs_f64() / floor.as_secs_f64()
            ));
        }
        let same_mode = name.replace("runner", "compared");
        if let (true, Some(compared)) = (name.starts_with("runner"), median_of(&same_mode)) {
            line.push_str(&format!(
                "  {:>6.2}x compared",
                m.median().as_secs_f64() / compared.as_secs_f64()
            ));
        }
        if !shape.copies {
            line.push_str(&format!(
                "  {:.2} us/job",
                m.median().as_secs_f64() * 1e6 / shape.jobs as f64
            ));
        }
        println!("{line}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn machine_description() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}
