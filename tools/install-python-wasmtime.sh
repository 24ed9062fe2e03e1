#!/usr/bin/env bash
# Installs PyPI's wasmtime (the Python embedding of the same engine) into a cached
# virtualenv and prints its python. The cross-host tests run dtlto-mock.wasm under it.
set -euo pipefail
version="50.0.1"
venv="${DTLTO_PY_WASMTIME_VENV:-$HOME/.cache/dtlto-mock/py-wasmtime-$version}"
if ! "$venv/bin/python" -c "import wasmtime" >/dev/null 2>&1; then
  echo "installing wasmtime==$version from PyPI into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "wasmtime==$version" >&2
fi
echo "$venv/bin/python"
