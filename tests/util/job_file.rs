//! Job files as lld writes them, and for local mode.

use super::TestDir;

/// A compact job file: job i reads `m{i}.o` and writes `m{i}.native.o`.
pub fn job_file_json(jobs: usize) -> String {
    let jobs: Vec<String> = (0..jobs)
        .map(|i| {
            format!(
                r#"{{"args":["m{i}.o","-fthinlto-index=m{i}.{i}.native.o.thinlto.bc","-o","m{i}.{i}.native.o"],"inputs":["m{i}.o","m{i}.{i}.native.o.thinlto.bc"],"outputs":["m{i}.{i}.native.o"]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"common":{{"linker_output":"app","args":["/usr/bin/clang-23","-c","-O2"],"inputs":[]}},"jobs":[{}]}}"#,
        jobs.join(",")
    )
}

/// A local-mode job file, `job.json` in `dir`, whose compiler is `common_args`: job i's
/// args are `-o out<i>.o` and then `extra[i]` (nothing past `extra`'s end); it reads
/// `in<i>.bc` and `in<i>.thinlto.bc`, written here, and writes `out<i>.o`.
pub fn local_jobs(dir: &TestDir, common_args: &[&str], jobs: usize, extra: &[&[&str]]) -> String {
    let jobs: Vec<serde_json::Value> = (0..jobs)
        .map(|i| {
            let mut args = vec!["-o".to_owned(), format!("out{i}.o")];
            args.extend(
                extra
                    .get(i)
                    .into_iter()
                    .flat_map(|e| e.iter().map(|a| a.to_string())),
            );
            dir.write(&format!("in{i}.bc"), format!("bitcode {i}"));
            dir.write(&format!("in{i}.thinlto.bc"), format!("index {i}"));
            serde_json::json!({
                "args": args,
                "inputs": [format!("in{i}.bc"), format!("in{i}.thinlto.bc")],
                "outputs": [format!("out{i}.o")],
            })
        })
        .collect();
    write_job_file(dir, common_args, jobs)
}

/// Writes `job.json` in `dir`: `common.args` and these `jobs`; returns its name.
pub fn write_job_file(dir: &TestDir, common_args: &[&str], jobs: Vec<serde_json::Value>) -> String {
    let doc = serde_json::json!({
        "common": {"linker_output": "app", "args": common_args, "inputs": []},
        "jobs": jobs,
    });
    dir.write("job.json", doc.to_string());
    "job.json".to_owned()
}
