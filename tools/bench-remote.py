#!/usr/bin/env python3
"""Benchmark: `dtlto-runner remote` against `dtlto-runner local`, both with --jobs 2,
on the ThinLTO link of tools/bench-local.py (N modules, 20 by default, so 20 backend
jobs), with LLVM 23 from PyPI and a real REAPI engine on this machine
(tools/reapi-engine.sh: buildbox-casd executing through bubblewrap), on the same
cores as the compiles.

Measured, the median of --runs whole links each:
  - local --jobs 2;
  - a first remote link: a fresh engine with an empty cache, and an empty digest
    cache (the compiler and its libraries are hashed and uploaded);
  - a cold remote link: every action executed (--no-cache-lookup), with the
    toolchain already on the service, as on a farm that has seen the compiler; with
    the engine as the tests start it (run by root, it runs actions as nobody and
    hard-links each input root out of its cache; run by anyone else, actions run as
    that user and each input root is copied, the shipped compiler's 180 MB
    included), with FUSE staging (the input root mounted from the cache), and with
    the worker's own toolchain (--worker-toolchain; the engine's sandbox binds the
    host's compiler and system read-only, as a farm's worker image has them);
  - a warm relink: the same link again, every job an action-cache hit.
Each run links locally first and then remotely each way, so the machine's speed
drifts little within a run: a ratio is taken run by run, against that run's local
link, and its median printed (as farm-bench --vs pairs its two commands). Printed:
each median time, the median of its ratios to local's (and their range), and the
bytes hashed and uploaded by the second link of a cold engine (from --verbose).

    python3 tools/bench-remote.py [--runs 3] [--modules 20] [--runner PATH]
"""

import argparse
import importlib.util
import os
import pwd
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("bench_local", ROOT / "tools/bench-local.py")
bench_local = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_local)


def engine(action, directory, options=(), casd_args=()):
    """tools/reapi-engine.sh ACTION [OPTIONS] DIRECTORY [-- CASD_ARGS]; its output."""
    command = ["bash", str(ROOT / "tools/reapi-engine.sh"), action, *options, str(directory)]
    if casd_args:
        command += ["--", *casd_args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--runner")
    options = parser.parse_args()
    runner = bench_local.find_runner(options.runner)
    clang = bench_local.llvm_bin() / "clang"
    work = Path(tempfile.mkdtemp(prefix="dtlto-bench-remote-"))
    # Searchable by others: an engine started by root runs its actions as nobody,
    # who must reach the engine's directory inside this one.
    os.chmod(work, 0o711)
    names = ["main"] + [f"m{i}" for i in range(options.modules - 1)]
    (work / "main.c").write_text(bench_local.main_source(options.modules - 1))
    for i in range(options.modules - 1):
        (work / f"m{i}.c").write_text(bench_local.module_source(i, options.modules - 1))
    for name in names:
        subprocess.run([clang, "-flto=thin", "-O2", "-c", f"{name}.c"], cwd=work, check=True)
    objects = [f"{name}.o" for name in names]

    def link(args, env=None):
        command = (
            [clang, "-flto=thin", "-fuse-ld=lld", "-O2", *objects, "-o", "app"]
            + [f"-fthinlto-distributor={runner}"]
            + [f"-Xthinlto-distributor={a}" for a in args]
        )
        started = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env, check=True, capture_output=True, text=True)
        return time.perf_counter() - started, done.stderr

    llvm_prefix = bench_local.llvm_bin().resolve().parent
    # A farm's worker image: the host's system and compiler, read-only.
    host_toolchain = [
        *(f"--runner-arg=--ro-bind-mount={h}:{c}" for h, c in [
            ("/usr", "/usr"), ("/usr/lib", "/lib"), ("/usr/lib64", "/lib64"), ("/usr/bin", "/bin"),
            (llvm_prefix, llvm_prefix),
        ]),
    ]
    local, first, cold, cold_fuse, cold_worker, warm = [], [], [], [], [], []
    second = None
    for run in range(options.runs):
        local.append(link(["local", "--jobs", "2"])[0])
        for kind, options, casd_args, client_args in [
            ("shipped", [], [], []),
            ("fuse", ["--fuse-staging"], [], []),
            # The host's toolchain is bound in from where it is installed, which may
            # be a home that only its owner enters: actions run as that user.
            ("worker", ["--actions-as", pwd.getpwuid(os.geteuid()).pw_name], host_toolchain, ["--worker-toolchain"]),
        ]:
            scratch = work / f"engine-{run}-{kind}"
            endpoint = engine("start", scratch, options, casd_args)
            env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "home-cache"))
            remote = ["--verbose", "remote", f"--endpoint={endpoint}", "--jobs", "2", *client_args]
            try:
                seconds = link(remote, env)[0]
                if kind == "shipped":
                    first.append(seconds)
                seconds = link(remote + ["--no-cache-lookup"], env)[0]
                {"shipped": cold, "fuse": cold_fuse, "worker": cold_worker}[kind].append(seconds)
                if kind == "shipped":
                    seconds, stderr = link(remote, env)
                    warm.append(seconds)
                    if second is None:
                        second = stderr
            finally:
                engine("stop", scratch)
    hits = len(re.findall(r"cache hit", second))
    uploaded = sum(int(n) for n in re.findall(r"(\d+) bytes uploaded", second))
    hashed = sum(int(n) for n in re.findall(r"(\d+) hashed", second))
    base = statistics.median(local)

    def line(label, times):
        ratios = [t / l for t, l in zip(times, local)]
        print(
            f"{label:<42} {statistics.median(times):.2f} s  {statistics.median(ratios):.2f}x local"
            f"  (runs: {min(ratios):.2f}x to {max(ratios):.2f}x)"
        )

    print(f"{len(names)} backend jobs; {os.cpu_count()} CPUs; {runner}")
    print(f"{'local --jobs 2:':<42} {base:.2f} s")
    line("remote --jobs 2, first link:", first)
    line("remote --jobs 2, cold:", cold)
    line("remote --jobs 2, cold, FUSE staging:", cold_fuse)
    line("remote --jobs 2, cold, worker's toolchain:", cold_worker)
    line("remote --jobs 2, relink:", warm)
    print(f"the relink: {hits} of {len(names)} jobs cache hits, {uploaded} bytes uploaded, {hashed} bytes hashed")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
