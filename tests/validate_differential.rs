//! validate mode against CPython: for every document of a corpus that covers what
//! linkers write and what Python's json accepts or refuses, our stdout and exit
//! status equal those of CPython running validate.py's contract, byte for byte.

use crate::util::oracle::cpython_validate;
use crate::util::{job_file_json, run_runner, wasmtime_run, TestDir};

/// The job file a real `clang -flto=thin -fuse-ld=lld -fthinlto-distributor=...`
/// link of `a.o b.o -o app` wrote (LLVM 23.1.4).
const LLD_JOB_FILE: &str = r#"{"common":{"linker_output":"app","args":["/path/clang-23","-c","--target=x86_64-unknown-linux-gnu","-O2","-faddrsig","-ffunction-sections","-fdata-sections","-floop-interchange","-fpic","-Wno-unused-command-line-argument"],"inputs":[]},"jobs":[{"args":["a.o","-fthinlto-index=a.1.2449.native.o.thinlto.bc","-o","a.1.2449.native.o"],"inputs":["a.o","a.1.2449.native.o.thinlto.bc","b.o"],"outputs":["a.1.2449.native.o"]},{"args":["b.o","-fthinlto-index=b.2.2449.native.o.thinlto.bc","-o","b.2.2449.native.o"],"inputs":["b.o","b.2.2449.native.o.thinlto.bc"],"outputs":["b.2.2449.native.o"]}]}"#;

/// A valid document whose one job's strings are `args`, `inputs` and `output`.
fn with_job(args: &str, inputs: &str, output: &str) -> String {
    format!(
        r#"{{"common":{{"linker_output":"app","args":["clang"],"inputs":[]}},"jobs":[{{"args":[{args}],"inputs":[{inputs}],"outputs":[{output}]}}]}}"#
    )
}

/// `[[...]]`, `depth` levels, the top level counted.
fn nested_arrays(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `{"a": {"a": ... {}}}`, `depth` levels, the top level counted.
fn nested_objects(depth: usize) -> String {
    format!(
        "{}{{}}{}",
        r#"{"a": "#.repeat(depth - 1),
        "}".repeat(depth - 1)
    )
}

fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let valid_job = r#"{"args":[],"inputs":["a.o","a.bc"],"outputs":["a.native.o"]}"#;
    let doc = |common: &str, jobs: &str| format!(r#"{{"common":{common},"jobs":{jobs}}}"#);
    let common = r#"{"linker_output":"app","args":["clang"],"inputs":[]}"#;
    let mut cases: Vec<(&'static str, String)> = vec![
        ("lld job file", LLD_JOB_FILE.to_owned()),
        ("no jobs", doc(common, "[]")),
        ("unicode names", with_job(r#""Ωμέγα.o""#, r#""😀.o", "日本.bc", "é.o""#, r#""ñ😀.native.o""#)),
        ("escaped unicode upper and lower hex", with_job(r#""\u00E9\u00e9""#, r#""\uD83D\uDE00", "b""#, r#""\ud83d\ude00""#)),
        ("unpaired surrogates", with_job(r#""\ud800""#, r#""\udc00x", "\ud800\u0041""#, r#""o\udbff""#)),
        ("control characters", with_job(r#""\u0001\n\t\r\b\f\u001f\u007f\u0085""#, r#""a", "b""#, r#""\u2028o""#)),
        ("backslashes and windows paths", with_job(r#""C:\\build\\a.o", "\\\\server\\share\\x""#, r#""C:\\Users\\Me\\a.o", "d:/x/b.bc""#, r#""C:\\out dir\\a.native.o""#)),
        ("archive members", with_job(r#""-fthinlto-index=t.a(t1.o at 1234).1.1A2B.1.5678.native.o.thinlto.bc""#, r#""t.a(t1.o at 1234)", "t.a(t1.o at 1234).1.1A2B.1.5678.native.o.thinlto.bc""#, r#""t.a(t1.o at 1234).1.1A2B.1.5678.native.o""#)),
        ("solidus and quotes", with_job(r#""a\/b", "say \"hi\"", "it's""#, r#""a", "b""#, r#""o""#)),
        ("empty strings", with_job(r#""""#, r#""", """#, r#""""#)),
        ("extra top-level key", doc(common, &format!("[{valid_job}], \"x\": 1"))),
        ("extra common key", doc(r#"{"linker_output":"app","args":["clang"],"inputs":[],"extra":[]}"#, "[]")),
        ("extra job key", doc(common, r#"[{"args":[],"inputs":["a","b"],"outputs":["o"],"primary_output":["o"]}]"#)),
        ("missing jobs", format!(r#"{{"common":{common}}}"#)),
        ("missing common key", doc(r#"{"linker_output":"app","args":["clang"]}"#, "[]")),
        ("missing job key", doc(common, r#"[{"args":[],"inputs":["a","b"]}]"#)),
        ("empty common args", doc(r#"{"linker_output":"app","args":[],"inputs":[]}"#, "[]")),
        ("one input", doc(common, r#"[{"args":[],"inputs":["a"],"outputs":["o"]}]"#)),
        ("no outputs", doc(common, r#"[{"args":[],"inputs":["a","b"],"outputs":[]}]"#)),
        ("string instead of list", doc(common, r#"[{"args":"-O2","inputs":["a","b"],"outputs":["o"]}]"#)),
        ("number in a list", doc(common, r#"[{"args":[1],"inputs":["a","b"],"outputs":["o"]}]"#)),
        ("null, bool and object", doc(r#"{"linker_output":null,"args":[true],"inputs":{}}"#, "[false]")),
        ("job is a list", doc(common, r#"[["a"]]"#)),
        ("jobs is an object", doc(common, r#"{"a":1}"#)),
        ("floats", doc(common, "[1.5, 1e16, 1E-7, -0.0, 0.1, 1e400, -1e400, 123456789.123456789, 1e15, 0.0001, 2.5e-5, 5e-324, 1.7976931348623157e308]")),
        ("integers", doc(common, "[0, -0, 7, -12, 123456789012345678901234567890123456789012345678901234567890]")),
        ("integer of 4300 digits", doc(common, &format!("[{}]", "9".repeat(4300)))),
        ("integer of 4301 digits", doc(common, &format!("[{}]", "9".repeat(4301)))),
        ("NaN and infinities", doc(common, "[NaN, Infinity, -Infinity]")),
        ("duplicate top-level keys", format!(r#"{{"common":1,"jobs":[],"common":{common}}}"#)),
        ("duplicate job keys", doc(common, r#"[{"args":[],"inputs":["a","b"],"outputs":[],"outputs":["o"],"args":["x"]}]"#)),
        ("escaped key names", format!(r#"{{"comm\u006fn":{common},"\u006aobs":[]}}"#)),
        ("top level array", "[1, 2]".to_owned()),
        ("top level string", "\"common\"".to_owned()),
        ("top level null", "null".to_owned()),
        ("nested 100 deep", format!("{}{}", "[".repeat(100), "]".repeat(100))),
        // CPython's edge: 994 levels print (then fail the schema), 995 do not.
        ("arrays nested 994 deep", nested_arrays(994)),
        ("arrays nested 995 deep", nested_arrays(995)),
        ("objects nested 994 deep", nested_objects(994)),
        ("objects nested 995 deep", nested_objects(995)),
        ("whitespace everywhere", format!(" \t\r\n{} \r\n\t", doc(common, "[ ]").replace(',', " ,\r\n\t "))),
        ("trailing comma", doc(common, "[1,]")),
        ("leading zero", doc(common, "[01]")),
        ("bad escape", with_job(r#""\x41""#, r#""a","b""#, r#""o""#)),
        ("raw control character", with_job("\"a\tb\"", r#""a","b""#, r#""o""#)),
        ("single quotes", "{'common': 1}".to_owned()),
        ("truncated", LLD_JOB_FILE[..LLD_JOB_FILE.len() / 2].to_owned()),
        ("extra data", format!("{} {{}}", doc(common, "[]"))),
        ("empty file", String::new()),
        ("byte-order mark", format!("\u{feff}{}", doc(common, "[]"))),
        ("10,000 jobs", job_file_json(10_000)),
    ];
    let mut corpus: Vec<(&'static str, Vec<u8>)> = cases
        .drain(..)
        .map(|(name, text)| (name, text.into_bytes()))
        .collect();
    corpus.push(("not UTF-8", b"{\"common\": \"\xff\xfe\"}".to_vec()));
    corpus
}

/// Distributor arguments that exercise Python's repr.
const ODD_ARGS: &[&str] = &[
    "--da1=10",
    "it's",
    "say \"hi\"",
    "both ' and \"",
    "C:\\path\\x",
    "tab\there\nline",
    "\u{a0}nbsp",
    "é😀Ωμέγα",
    "\u{200b}\u{7f}\u{85}\u{e0001}",
    "",
];

#[test]
fn validate_mode_matches_cpython_on_every_document() {
    let dir = TestDir::new("differential");
    let mut mismatches = Vec::new();
    for (i, (name, bytes)) in corpus().iter().enumerate() {
        let job_file = format!("case{i}.json");
        dir.write(&job_file, bytes);
        let args = ["--da1=10", "--da2=10"];
        let oracle = cpython_validate(&dir, &args, &job_file);
        let mut guest_args = vec!["validate"];
        guest_args.extend_from_slice(&args);
        guest_args.push(&job_file);
        let ours = wasmtime_run(&dir, &guest_args);
        if ours.stdout != oracle.stdout || ours.status != oracle.status {
            mismatches.push(format!(
                "case {name:?} ({job_file}): status ours {} / CPython {}\n{}\n--- CPython stdout ---\n{}\n--- CPython stderr ---\n{}",
                ours.status,
                oracle.status,
                ours.report(),
                oracle.stdout(),
                oracle.stderr()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn distributor_args_repr_matches_cpython() {
    let dir = TestDir::new("differential-args");
    dir.write("job.json", LLD_JOB_FILE);
    let oracle = cpython_validate(&dir, ODD_ARGS, "job.json");
    oracle.expect_status(0);
    let mut args = vec!["validate"];
    args.extend_from_slice(ODD_ARGS);
    args.push("job.json");
    let ours = wasmtime_run(&dir, &args);
    assert_eq!(ours.stdout(), oracle.stdout(), "{}", ours.report());
    assert_eq!(ours.status, 0);
}

#[test]
fn the_runner_prints_what_cpython_prints() {
    let dir = TestDir::new("differential-runner");
    for (name, text) in [
        ("lld job file", LLD_JOB_FILE.to_owned()),
        ("invalid", with_job("1", r#""a""#, "")),
        ("objects nested 994 deep", nested_objects(994)),
        ("objects nested 995 deep", nested_objects(995)),
    ] {
        dir.write("job.json", &text);
        let oracle = cpython_validate(&dir, &["--da1=10"], "job.json");
        let ours = run_runner(&dir, &["validate", "--da1=10", "job.json"]);
        assert_eq!(ours.stdout(), oracle.stdout(), "{name}\n{}", ours.report());
        assert_eq!(ours.status, oracle.status, "{name}\n{}", ours.report());
    }
}

#[test]
fn the_nesting_edge_is_where_cpython_has_it() {
    let dir = TestDir::new("differential-depth");
    for (depth, prints_the_document) in [(994, true), (995, false)] {
        dir.write("job.json", nested_objects(depth));
        let oracle = cpython_validate(&dir, &[], "job.json");
        let ours = wasmtime_run(&dir, &["validate", "job.json"]);
        assert_eq!(
            ours.stdout(),
            oracle.stdout(),
            "depth {depth}\n{}",
            ours.report()
        );
        assert_eq!(
            (ours.status, oracle.status),
            (1, 1),
            "depth {depth}\n{}\n{}",
            ours.report(),
            oracle.report()
        );
        let printed = ours.stdout().lines().count() > 1;
        assert_eq!(
            printed,
            prints_the_document,
            "depth {depth}\n{}",
            ours.report()
        );
    }
}
