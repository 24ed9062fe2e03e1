# lit configuration for LLVM's own DTLTO tests, run by tests/llvm_upstream.sh.
#
# LLVM's tests expect LLVM's build-tree lit configuration (lit.site.cfg.py, written
# by CMake). This stands in for it with only what the DTLTO tests use: the
# substitutions %python, %llvm_src_root, %clang (and %dtlto for the runner), the
# tools of one LLVM installation on PATH, and the features that are true of that
# installation on this host, each found by asking the tools, never assumed.
#
# tests/llvm_upstream.sh copies this file to the root of a tree that holds LLVM's
# test directories at their places in LLVM's source (llvm/test/ThinLTO/X86/dtlto/,
# lld/test/ELF/dtlto/, ...) with their own lit.local.cfg files, and sets:
#   DTLTO_UPSTREAM_LLVM_BIN   the LLVM 22 bin directory (clang, ld.lld, llvm-lto2, ...)
#   DTLTO_UPSTREAM_LLVM_LIB   the directory of libLLVM.so and libclang-cpp.so
#   DTLTO_UPSTREAM_SRC_ROOT   LLVM's llvm/ source directory (utils/dtlto/*.py)
#   DTLTO_UPSTREAM_RUNNER     dtlto-runner, for %dtlto
#   DTLTO_UPSTREAM_OUT        where the tests' scratch files (%t) go
#   DTLTO_UPSTREAM_NAME       the suite's name in lit's output
import os
import platform
import subprocess
import sys

import lit.formats
import lit.util


def required(variable):
    value = os.environ.get(variable)
    if not value or not os.path.exists(value):
        lit_config.fatal(f"{variable} must name an existing path (tests/llvm_upstream.sh sets it)")
    return value


llvm_bin = required("DTLTO_UPSTREAM_LLVM_BIN")
llvm_lib = required("DTLTO_UPSTREAM_LLVM_LIB")
llvm_src_root = required("DTLTO_UPSTREAM_SRC_ROOT")

config.name = os.environ.get("DTLTO_UPSTREAM_NAME", "llvm")
# The lit internal shell, as LLVM 22's llvm, lld and cross-project-tests suites use.
config.test_format = lit.formats.ShTest(execute_external=False)
# The union of the suffixes of the suites the tests come from (lit.local.cfg files
# narrow them, as upstream).
config.suffixes = [".ll", ".test", ".c"]
config.excludes = ["Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = required("DTLTO_UPSTREAM_OUT")

config.environment["PATH"] = os.pathsep.join([llvm_bin, os.environ.get("PATH", "")])
config.environment["LD_LIBRARY_PATH"] = os.pathsep.join(
    p for p in [llvm_lib, os.environ.get("LD_LIBRARY_PATH", "")] if p
)
for variable in ["HOME", "TMPDIR", "TEMP", "TMP"]:
    if variable in os.environ:
        config.environment[variable] = os.environ[variable]
# As lld/test/lit.cfg.py: run lld's main once per process (COFF's lit.local.cfg
# sets 2), and a fixed version string.
config.environment["LLD_IN_TEST"] = "1"
config.environment["LLD_VERSION"] = "LLD 1.0"


def tool_output(*command):
    env = dict(os.environ, LD_LIBRARY_PATH=config.environment["LD_LIBRARY_PATH"])
    try:
        return subprocess.run(
            [os.path.join(llvm_bin, command[0]), *command[1:]],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        lit_config.fatal(f"cannot run {command[0]} from {llvm_bin}: {error}")


# The host triple and the targets that this LLVM registers, from the tools.
config.host_triple = tool_output("llvm-config", "--host-target").strip()
config.target_triple = config.host_triple
config.targets = frozenset(tool_output("llvm-config", "--targets-built").split())
# lld's short names for its features (lld/test/lit.cfg.py), and LLVM's
# <arch>-registered-target (llvm/test, cross-project-tests).
lld_names = {
    "AArch64": "aarch64", "AMDGPU": "amdgpu", "ARM": "arm", "AVR": "avr",
    "Hexagon": "hexagon", "LoongArch": "loongarch", "Mips": "mips",
    "MSP430": "msp430", "PowerPC": "ppc", "RISCV": "riscv", "Sparc": "sparc",
    "SystemZ": "systemz", "WebAssembly": "wasm", "X86": "x86",
}
for target in config.targets:
    config.available_features.add(target.lower() + "-registered-target")
    if target in lld_names:
        config.available_features.add(lld_names[target])

# A feature for each tool that is there (lit.llvm's use_lld, use_clang and
# use_llvm_tool add these when they find the tool).
for tool in ["clang", "ld.lld", "lld-link", "llvm-ar"]:
    if lit.util.which(tool, llvm_bin):
        config.available_features.add(tool)
if platform.system() == "Linux":
    config.available_features.add("system-linux")
# Deliberately absent, as false here: system-windows, tempshortpaths (Windows short
# names, cross-project-tests/dtlto/path.test), asserts (Debian builds without).

config.substitutions.append(("%python", '"%s"' % sys.executable))
config.substitutions.append(("%llvm_src_root", llvm_src_root))
if "clang" in config.available_features:
    config.substitutions.append(("%clang", os.path.join(llvm_bin, "clang")))
runner = os.environ.get("DTLTO_UPSTREAM_RUNNER")
if runner:
    config.substitutions.append(("%dtlto", '"%s"' % runner))
    # A runner that hangs fails its test (exit 124) instead of stalling CI.
    config.environment["DTLTO_RUNNER_TIMEOUT"] = "300"
# The run with `dtlto-runner remote`: the engine tests/llvm_upstream.sh started.
if os.environ.get("DTLTO_REMOTE_ENDPOINT"):
    config.environment["DTLTO_REMOTE_ENDPOINT"] = os.environ["DTLTO_REMOTE_ENDPOINT"]

# Into lit's log, which tests/llvm_upstream.sh shows.
lit_config.note("features: " + " ".join(sorted(config.available_features)))
