#!/usr/bin/env python3
"""Benchmark: `dtlto-runner local` against LLVM's local.py on a ThinLTO link of
N modules (20 by default, so 20 backend jobs), with LLVM 23 from PyPI.

The baseline runs exactly local.py's logic (llvm/utils/dtlto/local.py, which is not
part of this repository): read the job file named by the last argument, then for
each job in order `subprocess.check_call(common.args + job.args)`. It is written to
the benchmark's scratch directory as `local_logic.py` and run as `python3
local_logic.py`, as the distributor a linker calls.

Measured, median of --runs runs each, taken in turn (and the ratio of the fastest
runs, which on a shared machine are the least disturbed ones; CPU time is user +
system of the distributor and everything it starts):
  - the distributor alone on the job file a --save-temps link kept;
  - the whole link (clang -flto=thin -fuse-ld=lld -fthinlto-distributor=...).

    python3 tools/bench-local.py [--runs 5] [--modules 20] [--runner PATH]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOCAL_PY = """
import json, subprocess, sys
from pathlib import Path
with Path(sys.argv[-1]).open() as f:
    data = json.load(f)
for job in data["jobs"]:
    subprocess.check_call(data["common"]["args"] + job["args"])
"""

ROOT = Path(__file__).resolve().parent.parent


def module_source(i, n):
    """Module i: a few dozen functions with loops and switches, some calling into
    module i+1 (so jobs import modules)."""
    nxt = (i + 1) % n
    lines = [f"int m{nxt}_f0(int);"]
    for k in range(40):
        lines.append(
            f"""int m{i}_f{k}(int x) {{
  int acc = {k};
  for (int j = 0; j < (x & 63); ++j) {{
    switch ((j * {k + 3}) % 7) {{
    case 0: acc += j * {k + 1}; break;
    case 1: acc ^= acc << 3; break;
    case 2: acc -= j / {k % 5 + 1}; break;
    case 3: acc = acc * 31 + j; break;
    case 4: acc += (acc >> 2) | j; break;
    default: acc += {i};
    }}
  }}
  return acc{f' + m{nxt}_f0(x - 1)' if k == 39 and i != n - 1 else ''};
}}"""
        )
    lines.append(
        f"int m{i}_all(int x) {{ int s = 0; "
        + " ".join(f"s += m{i}_f{k}(x + {k});" for k in range(40))
        + " return s; }"
    )
    return "\n".join(lines) + "\n"


def main_source(n):
    decls = "\n".join(f"int m{i}_all(int);" for i in range(n))
    calls = " ".join(f"s += m{i}_all(x);" for i in range(n))
    return f"""#include <stdio.h>
{decls}
int main(int argc, char **argv) {{ (void)argv; int x = argc + 40; int s = 0; {calls}
  printf("sum=%d\\n", s); return 0; }}
"""


def find_runner(given):
    if given:
        return Path(given).resolve()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    runner = target / "release" / "dtlto-runner"
    if not runner.exists():
        sys.exit(f"no {runner}: build it first (cargo build --release -p dtlto-runner)")
    return runner


def llvm_bin():
    """LLVM 23's bin directory: DTLTO_LLVM_BIN, or tools/install-llvm.sh's answer."""
    return Path(
        os.environ.get("DTLTO_LLVM_BIN")
        or subprocess.check_output(["bash", str(ROOT / "tools/install-llvm.sh")], text=True)
        .strip()
        .splitlines()[-1]
    )


def timed(command, cwd):
    """Wall time, and CPU time (user + system) of the command and its children."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--runner")
    options = parser.parse_args()
    if options.modules < 16:
        sys.exit("--modules: at least 16")
    runner = find_runner(options.runner)
    clang = llvm_bin() / "clang"
    work = Path(tempfile.mkdtemp(prefix="dtlto-bench-local-"))
    try:
        names = ["main"] + [f"m{i}" for i in range(options.modules - 1)]
        (work / "main.c").write_text(main_source(options.modules - 1))
        for i in range(options.modules - 1):
            (work / f"m{i}.c").write_text(module_source(i, options.modules - 1))
        for name in names:
            subprocess.run(
                [clang, "-flto=thin", "-O2", "-c", f"{name}.c"], cwd=work, check=True
            )
        objects = [f"{name}.o" for name in names]

        def link_command(distributor, args, extra=()):
            return (
                [clang, "-flto=thin", "-fuse-ld=lld", "-O2", *objects, "-o", "app"]
                + [f"-fthinlto-distributor={distributor}"]
                + [f"-Xthinlto-distributor={a}" for a in args]
                + list(extra)
            )

        subprocess.run(
            link_command(runner, ["local"], ["-Wl,--save-temps"]), cwd=work, check=True
        )
        expected = subprocess.run(
            [work / "app"], cwd=work, check=True, capture_output=True, text=True
        ).stdout
        job_file = next(work.glob("app.*.dist-file.json")).name
        jobs = json.loads((work / job_file).read_text())["jobs"]
        print(f"{len(jobs)} backend jobs; {os.cpu_count()} CPUs; {runner}")
        print("load average before: %.2f %.2f %.2f" % os.getloadavg())

        python = shutil.which("python3")
        (work / "local_logic.py").write_text(LOCAL_PY)
        variants = [
            ("python3 local.py (its logic)", python, [str(work / "local_logic.py")]),
            ("dtlto-runner local --jobs 1", runner, ["local", "--jobs", "1"]),
            ("dtlto-runner local --jobs 2", runner, ["local", "--jobs", "2"]),
        ]
        results = {}
        for what in ("distributor alone", "whole link"):
            times = {name: [] for name, _, _ in variants}
            cpus = {name: [] for name, _, _ in variants}
            for _ in range(options.runs):
                for name, program, args in variants:
                    if what == "distributor alone":
                        command = [program, *args, job_file]
                    else:
                        command = link_command(program, args)
                    wall, cpu = timed(command, work)
                    times[name].append(wall)
                    cpus[name].append(cpu)
                    if what == "whole link":
                        got = subprocess.run(
                            [work / "app"], cwd=work, check=True, capture_output=True, text=True
                        ).stdout
                        assert got == expected, f"{name}: the program printed {got!r}"
            results[what] = (times, cpus)
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        for what, (times, cpus) in results.items():
            base = statistics.median(times[variants[0][0]])
            base_cpu = statistics.median(cpus[variants[0][0]])
            base_min = min(times[variants[0][0]])
            print(f"\n{what} (median of {options.runs}, min-max):")
            for name, _, _ in variants:
                median = statistics.median(times[name])
                print(
                    f"  {name:30} {median:7.3f} s  ({min(times[name]):.3f}-{max(times[name]):.3f})"
                    f"  {median / base:5.2f}x (min {min(times[name]) / base_min:4.2f}x)"
                    f"   CPU {statistics.median(cpus[name]):7.3f} s"
                    f" {statistics.median(cpus[name]) / base_cpu:5.2f}x"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
