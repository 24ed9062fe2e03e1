//! The real LLVM 23 toolchain (clang, ld.lld, llvm-ar) that tools/install-llvm.sh puts
//! in a cached virtualenv. The tests that need it are #[ignore]d with that reason (so
//! plain `cargo test` lists them as ignored), and fail loudly when run without it.

use super::{Run, TestDir};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const LLVM_VERSION: &str = "23.1.4.post8";

pub struct Llvm {
    bin: PathBuf,
}

/// The toolchain; a test that needs it fails when it is missing.
pub fn llvm() -> Llvm {
    let bin = std::env::var_os("DTLTO_LLVM_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| {
                Path::new(&home)
                    .join(".cache/dtlto-mock")
                    .join(format!("llvm-{LLVM_VERSION}"))
                    .join("bin")
            })
        });
    if let Some(bin) = bin {
        let works = Command::new(bin.join("clang"))
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout).contains("clang version 23")
            });
        if works && bin.join("ld.lld").exists() {
            return Llvm { bin };
        }
    }
    panic!(
        "LLVM 23 (clang, ld.lld with DTLTO) is missing: run `bash tools/install-llvm.sh` \
         (tests/all.sh does), or set DTLTO_LLVM_BIN to its bin directory"
    );
}

impl Llvm {
    pub fn tool(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// Runs a tool in `dir`; panics with the full report unless it succeeds.
    pub fn run_ok(&self, dir: &TestDir, tool: &str, args: &[&str]) -> Run {
        let run = dir.run(Command::new(self.tool(tool)).args(args));
        run.expect_status(0);
        run
    }

    /// Compiles `name.c` twice: ThinLTO bitcode `name.o`, and the native object
    /// `name.native.o` that the mock will hand back for it.
    pub fn compile(&self, dir: &TestDir, name: &str) {
        let source = format!("{name}.c");
        self.run_ok(
            dir,
            "clang",
            &[
                "-flto=thin",
                "-O2",
                "-c",
                &source,
                "-o",
                &format!("{name}.o"),
            ],
        );
        self.run_ok(
            dir,
            "clang",
            &["-O2", "-c", &source, "-o", &format!("{name}.native.o")],
        );
    }

    /// The ld.lld command line the clang driver would run for `args` (`clang -###`),
    /// without the program itself.
    pub fn lld_args_from_driver(&self, dir: &TestDir, args: &[&str]) -> Vec<String> {
        let mut all = vec!["-###"];
        all.extend_from_slice(args);
        let run = self.run_ok(dir, "clang", &all);
        let stderr = run.stderr();
        let line = stderr
            .lines()
            .find(|l| l.contains("ld.lld\""))
            .unwrap_or_else(|| panic!("no ld.lld line in `clang -###`:\n{stderr}"));
        let mut words = split_driver_line(line);
        words.remove(0);
        words
    }
}

/// Splits a `clang -###` line: each word in double quotes, `\\` and `\"` escaped.
fn split_driver_line(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut word = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => word.extend(chars.next()),
                '"' => break,
                c => word.push(c),
            }
        }
        words.push(word);
    }
    words
}

/// main calls helper, helper calls twice: the jobs of main and helper import other
/// modules, so they have more than two inputs.
pub const PROGRAM: &[(&str, &str)] = &[
    (
        "main",
        "#include <stdio.h>\nint helper(int);\nint twice(int);\n\
         int main(void) { printf(\"result=%d\\n\", helper(20) + twice(1)); return 0; }\n",
    ),
    (
        "helper",
        "int twice(int);\nint helper(int x) { return twice(x) + 1; }\n",
    ),
    ("twice", "int twice(int x) { return 2 * x; }\n"),
];
pub const PROGRAM_OUTPUT: &str = "result=43\n";

/// Compiles `PROGRAM` in `dir` to ThinLTO bitcode: main.o, helper.o, twice.o.
pub fn bitcode(llvm: &Llvm, dir: &TestDir) {
    for (name, code) in PROGRAM {
        dir.write(&format!("{name}.c"), code);
        llvm.run_ok(
            dir,
            "clang",
            &["-flto=thin", "-O2", "-c", &format!("{name}.c")],
        );
    }
}

/// Runs the linked `app` in `dir`; its stdout.
pub fn run_app(dir: &TestDir) -> String {
    let run = dir.run(&mut Command::new(dir.join("app")));
    run.expect_status(0);
    run.stdout()
}

/// The job file a link kept (`-Wl,--save-temps`): its name and its JSON.
pub fn job_file(dir: &TestDir) -> (String, serde_json::Value) {
    let name = dir
        .snapshot()
        .into_keys()
        .find(|n| n.ends_with(".dist-file.json"))
        .unwrap_or_else(|| panic!("no job file kept\n{}", dir.listing()));
    let doc = serde_json::from_slice(&dir.read(&name)).unwrap();
    (name, doc)
}

/// A JSON array of strings.
pub fn strings(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// Compiles each job of the job file `doc` again as local.py does (`common.args +
/// jobs[i].args`, in `dir`, no shell) and asserts that each native object is the
/// same bytes as the one `whose` run left.
pub fn assert_objects_as_local_py_makes(dir: &TestDir, doc: &serde_json::Value, whose: &str) {
    let common = strings(&doc["common"]["args"]);
    for job in doc["jobs"].as_array().unwrap() {
        let output = strings(&job["outputs"])[0].clone();
        let theirs = dir.read(&output);
        assert!(!theirs.is_empty(), "{whose} left {output} empty");
        std::fs::remove_file(dir.join(&output)).unwrap();
        dir.run(
            Command::new(&common[0])
                .args(&common[1..])
                .args(strings(&job["args"])),
        )
        .expect_status(0);
        assert!(
            dir.read(&output) == theirs,
            "{output} from {whose} differs from local.py's"
        );
    }
}
