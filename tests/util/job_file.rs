//! Job files as lld writes them.

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
