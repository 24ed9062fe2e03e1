"""LLVM's own DTLTO tests: rewrite their RUN lines for dtlto-runner, report results.

Used by tests/llvm_upstream.sh; the files it works on are LLVM's, in a scratch
directory, never in this repository.

    upstream.py rewrite DIR...
        In every test file under each DIR, make the distributor dtlto-runner (%dtlto)
        and turn each script path into its mode word:
            --thinlto-distributor=%python        -> --thinlto-distributor=%dtlto
            -dtlto-distributor=%python           -> -dtlto-distributor=%dtlto
            /thinlto-distributor:"%python"       -> /thinlto-distributor:"%dtlto"
            %llvm_src_root/utils/dtlto/mock.py   -> mock
            %llvm_src_root/utils/dtlto/validate.py -> validate
            %llvm_src_root/utils/dtlto/local.py    -> local
        Then read every RUN/DEFINE line again: a script name (mock.py, validate.py,
        local.py), a path into utils/dtlto or %python as a distributor left behind
        is an error, and so is a directory with nothing rewritten.

    upstream.py report SCRIPTS.json RUNNER.json [OUT_OF_SCOPE...]
        lit's JSON results (lit -o) of the same tests run with LLVM's scripts and with
        the runner: one line per test with both results, the reason of every result
        that is not a pass, then "runner N/M, scripts K/M". Exit status 1 if a test
        that passes with the scripts does not pass with the runner, or if there are
        no tests. Tests named in OUT_OF_SCOPE (file names: those that bring their own
        distributor script) are listed, labelled, and left out of the counts.
"""

import json
import os
import re
import sys

DISTRIBUTOR = re.compile(r"""((?:-|--|/)f?(?:thinlto|dtlto)-distributor[=:])(\\?"?)%python\b""")
SCRIPT = re.compile(r"%llvm_src_root/utils/dtlto/(mock|validate|local)\.py\b")
LEFT_OVER = [
    (re.compile(r"\b(?:mock|validate|local)\.py\b"), "a distributor script"),
    (re.compile(r"utils/dtlto\b"), "a path into llvm/utils/dtlto"),
    (re.compile(r"distributor[=:]\\?\"?%python\b"), "%python as the distributor"),
]
DIRECTIVE = re.compile(r"\b(?:RUN|DEFINE|REDEFINE):")
PASSING = {"PASS", "XFAIL"}


def rewrite(dirs, local_as="local"):
    failures = []
    total = 0
    for top in dirs:
        rewritten_here = 0
        for root, _, names in os.walk(top):
            for name in sorted(names):
                if name.startswith("lit.") and name.endswith(".py") or name.startswith("lit.local"):
                    continue
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", newline="") as f:
                    text = f.read()
                # Only tests that call one of LLVM's scripts: others (those with a
                # distributor script of their own) stay as they are.
                if not SCRIPT.search(text):
                    continue
                new, n_dist = DISTRIBUTOR.subn(r"\1\2%dtlto", text)
                # local.py becomes the runner's `local` mode, or `remote` for the
                # run against a REAPI engine.
                new, n_script = SCRIPT.subn(
                    lambda m: local_as if m.group(1) == "local" else m.group(1), new)
                if new != text:
                    with open(path, "w", encoding="utf-8", newline="") as f:
                        f.write(new)
                    print(f"rewrote {os.path.relpath(path, top)}: "
                          f"{n_dist} distributor(s), {n_script} script path(s)")
                    rewritten_here += 1
                for number, line in enumerate(new.splitlines(), 1):
                    if not DIRECTIVE.search(line):
                        continue
                    for pattern, what in LEFT_OVER:
                        if pattern.search(line):
                            failures.append(f"{path}:{number}: {what} is left: {line.strip()}")
        if rewritten_here == 0:
            failures.append(f"{top}: no test calls a distributor script; nothing was rewritten")
        total += rewritten_here
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    if failures:
        print("error: the rewrite for dtlto-runner is incomplete (see above)", file=sys.stderr)
        return 1
    print(f"rewrote {total} test file(s) for dtlto-runner")
    return 0


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    results = {}
    for test in doc.get("tests", []):
        # "suite :: lld/test/ELF/dtlto/files.test"
        name = test["name"].split(" :: ", 1)[-1]
        results[name] = test
    return results


def reason(test):
    """The line of lit's output that says why a test did not pass."""
    if test is None:
        return "not run"
    output = test.get("output", "") or ""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if test["code"] == "UNSUPPORTED":
        for line in lines:
            if "unavailable features" in line or "unsupported" in line.lower():
                return line
        return "unsupported (no reason given by lit)"
    for marker in ("error:", "Assertion", "exit code"):
        for line in lines:
            if marker in line:
                return line
    return lines[-1] if lines else "(no output)"


def report(scripts_json, runner_json, out_of_scope=None):
    out_of_scope = out_of_scope or {}
    scripts = load(scripts_json)
    runner = load(runner_json)
    names = sorted(set(scripts) | set(runner))
    print(f"{'scripts':<12} {'runner':<12} test")
    regressions = []
    notes = []
    counted = []
    for name in names:
        s = scripts.get(name)
        r = runner.get(name)
        s_code = s["code"] if s else "MISSING"
        r_code = r["code"] if r else "MISSING"
        base = os.path.basename(name)
        if base in out_of_scope:
            why = out_of_scope[base] or "its own distributor script"
            print(f"{s_code:<12} {r_code:<12} {name} (out of scope: {why})")
            continue
        counted.append(name)
        print(f"{s_code:<12} {r_code:<12} {name}")
        if s_code in PASSING and r_code not in PASSING:
            regressions.append(f"{name}: passes with the scripts, {r_code} with the runner: {reason(r)}")
        if s_code not in PASSING:
            notes.append(f"{name}: {s_code} with the scripts: {reason(s)}")
        if r_code not in PASSING and s_code not in PASSING:
            notes.append(f"{name}: {r_code} with the runner: {reason(r)}")
    m = len(counted)
    n = sum(1 for name in counted if name in runner and runner[name]["code"] in PASSING)
    k = sum(1 for name in counted if name in scripts and scripts[name]["code"] in PASSING)
    for note in notes:
        print(f"note: {note}")
    for regression in regressions:
        print(f"error: {regression}", file=sys.stderr)
    print(f"runner {n}/{m}, scripts {k}/{m}")
    if m == 0:
        print("error: no tests were found", file=sys.stderr)
        return 1
    return 1 if regressions else 0


def main(argv):
    if len(argv) >= 4 and argv[:2] == ["rewrite", "--local-as"]:
        return rewrite(argv[3:], argv[2])
    if len(argv) >= 2 and argv[0] == "rewrite":
        return rewrite(argv[1:])
    if len(argv) >= 3 and argv[0] == "report":
        # Each out-of-scope test as NAME, or NAME=REASON.
        out_of_scope = dict((a.split("=", 1) + [""])[:2] for a in argv[3:])
        return report(argv[1], argv[2], out_of_scope)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
