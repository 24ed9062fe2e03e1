# The lit suite: dtlto-runner in LLVM's own test idiom. LLVM's lld DTLTO tests run
#   --thinlto-distributor=%python --thinlto-distributor-arg=%llvm_src_root/utils/dtlto/mock.py
# and here the same RUN lines say
#   --thinlto-distributor=%dtlto
# with the mode as a word (`validate`) where they would name validate.py.
# tests/all.sh runs it: lit -sv tests/lit, with the tools' directories in the environment.
import os
import tempfile

import lit.formats

config.name = "dtlto-mock"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".test"]
config.test_source_root = os.path.dirname(__file__)
# Scratch files (%t) go outside the repository.
config.test_exec_root = os.environ.get(
    "DTLTO_LIT_OUT", os.path.join(tempfile.gettempdir(), "dtlto-mock-lit")
)


def required(variable, what):
    value = os.environ.get(variable)
    if not value or not os.path.exists(value):
        lit_config.fatal(f"{variable} must name {what} (tests/all.sh sets it)")
    return value


runner = required("DTLTO_RUNNER", "the dtlto-runner binary")
llvm_bin = required("DTLTO_LLVM_BIN", "LLVM 23's bin directory (clang, ld.lld, lld-link, opt, llc)")
testing_bin = required("DTLTO_TESTING_TOOLS_BIN", "the directory of FileCheck and split-file")

config.substitutions.append(("%dtlto", runner))
config.environment["PATH"] = os.pathsep.join([llvm_bin, testing_bin, os.environ.get("PATH", "")])
for variable in ["HOME", "TMPDIR"]:
    if variable in os.environ:
        config.environment[variable] = os.environ[variable]
