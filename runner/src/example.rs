//! The built-in example: what `dtlto-runner` does with no job file of the user's.
//! It builds a two-job link's job file in a temporary directory, runs the embedded
//! mock on it in the sandbox, checks the outputs and reports each step.

use crate::error::RunError;
use crate::exit_status::ExitStatus;
use crate::sandboxed_run::{self, Program, Request};
use dtlto_mock::job_file::{Common, Job, JobFile};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Runs the example and returns the exit status.
pub fn run() -> Result<ExitStatus, RunError> {
    let dir = tempfile::Builder::new()
        .prefix("dtlto-runner-example-")
        .tempdir()
        .map_err(|error| ExampleError::TempDir {
            path: std::env::temp_dir(),
            error,
        })?;
    // Canonical, so the report shows the directory the sandbox actually used.
    let root = &fs::canonicalize(dir.path()).unwrap_or_else(|_| dir.path().to_owned());
    let pid = std::process::id();
    let job = |module: &str, task: u32| {
        let object = format!("{module}.{task}.{pid}.native.o");
        Job {
            args: vec![
                format!("{module}.o"),
                format!("-fthinlto-index={object}.thinlto.bc"),
                "-o".to_owned(),
                object.clone(),
            ],
            inputs: vec![format!("{module}.o"), format!("{object}.thinlto.bc")],
            outputs: vec![object],
        }
    };
    let job_file = JobFile {
        common: Common {
            linker_output: "app".to_owned(),
            args: ["clang", "-c", "--target=x86_64-unknown-linux-gnu", "-O2"]
                .map(str::to_owned)
                .to_vec(),
            inputs: Vec::new(),
        },
        jobs: vec![job("main", 1), job("helper", 2)],
    };
    let job_path = format!("app.{pid}.dist-file.json");
    let sources = ["main.native.o", "helper.native.o"];
    write(
        root,
        &job_path,
        serde_json::to_string(&job_file)
            .map_err(ExampleError::JobFile)?
            .as_bytes(),
    )?;
    for source in sources {
        write(
            root,
            source,
            format!("native code for {source}\n").as_bytes(),
        )?;
    }

    println!("dtlto-runner example, in {}:", root.display());
    println!(
        "  wrote {job_path}: {} jobs, as a linker would",
        job_file.jobs.len()
    );
    let mut args: Vec<String> = sources.map(str::to_owned).to_vec();
    args.push(job_path.clone());
    println!(
        "  running the embedded dtlto-mock.wasm in the sandbox: dtlto-runner {}",
        args.join(" ")
    );
    let status = sandboxed_run::run(
        &Request {
            program: Program::Embedded,
            program_name: "dtlto-mock".to_owned(),
            args,
            verbose: false,
            max_output_bytes: None,
            max_entries: None,
            read_trees: Vec::new(),
        },
        root,
    )?;
    if status != ExitStatus::Success {
        return Err(ExampleError::Mock(status).into());
    }
    for (i, (job, source)) in job_file.jobs.iter().zip(sources).enumerate() {
        let output = fs::read(root.join(job.native_object()))
            .map_err(|error| ExampleError::NotWritten { job: i, error })?;
        let expected = fs::read(root.join(source)).map_err(ExampleError::Read)?;
        if output != expected {
            return Err(ExampleError::Differs {
                job: i,
                source_file: source.to_owned(),
            }
            .into());
        }
        println!(
            "  jobs[{i}].outputs[0] {} = copy of {source} ({} bytes, identical)",
            job.native_object(),
            output.len()
        );
    }
    let mut left: Vec<String> = fs::read_dir(root)
        .map_err(ExampleError::Read)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    println!("  the directory now holds: {}", left.join(", "));
    println!("  nothing else was written; removing {}", root.display());
    Ok(ExitStatus::Success)
}

fn write(root: &Path, name: &str, bytes: &[u8]) -> Result<(), ExampleError> {
    fs::write(root.join(name), bytes).map_err(|error| ExampleError::Write {
        name: name.to_owned(),
        error,
    })
}

/// The built-in example went wrong.
#[derive(Debug, thiserror::Error)]
pub enum ExampleError {
    /// Its temporary directory could not be made.
    #[error("cannot create {}: {error}", .path.display())]
    TempDir {
        /// Where it was to be made.
        path: PathBuf,
        /// Why not.
        error: io::Error,
    },
    /// Its job file could not be written as JSON.
    #[error("{0}")]
    JobFile(serde_json::Error),
    /// One of its files could not be written.
    #[error("cannot write {name}: {error}")]
    Write {
        /// The file's name in the example's directory.
        name: String,
        /// Why not.
        error: io::Error,
    },
    /// The mock did not succeed.
    #[error("the mock exited with status {}", .0.code())]
    Mock(ExitStatus),
    /// A job's output is missing after the run.
    #[error("jobs[{job}].outputs[0] was not written: {error}")]
    NotWritten {
        /// The job's index.
        job: usize,
        /// Why its output cannot be read.
        error: io::Error,
    },
    /// A source could not be read back to compare.
    #[error("{0}")]
    Read(io::Error),
    /// A job's output is not a copy of its source.
    #[error("jobs[{job}].outputs[0] differs from {source_file}")]
    Differs {
        /// The job's index.
        job: usize,
        /// The source it should be a copy of.
        source_file: String,
    },
}

impl From<ExampleError> for RunError {
    fn from(error: ExampleError) -> RunError {
        RunError::Mode(Box::new(error))
    }
}
