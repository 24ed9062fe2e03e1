#!/usr/bin/env bash
# The second test stage: the targets this x86_64 Linux machine does not run natively.
# - arm64 Linux: the runner's own tests and its sandbox, mock-mode and fault tests,
#   run as arm64 programs under qemu-user;
# - macOS (x86_64 and arm64): linked with zig, no Apple SDK, then inspected, not run;
# - every target's release file (tools/release.sh), checked against SHA256SUMS, each
#   for its CPU, each with the guest precompiled for it.
# .ci/run runs it after tests/all.sh; it is apart so that the test command's warm
# rerun stays short (docs/testing.md, "How long it takes").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
apply() { while IFS= read -r assignment; do export "${assignment?}"; done <<< "$1"; }

echo "== set-up"
rustup target add wasm32-wasip1 >/dev/null
DTLTO_LLVM_BIN="$(bash tools/install-llvm.sh)"
export DTLTO_LLVM_BIN
apply "$(bash tools/setup-cross.sh)"

echo "== release files: every target, dtlto-mock.wasm, SHA256SUMS"
dist="$(mktemp -d "${TMPDIR:-/tmp}/dtlto-mock-release.XXXXXX")"
bash tools/release.sh "$dist"

echo "== arm64 Linux: the runner's tests as arm64 programs, under qemu-user"
(
  # cargo runs the test executables with qemu (…_RUNNER); the tests run the runner
  # through DTLTO_TARGET_RUNNER, since the kernel here cannot exec arm64 programs.
  export DTLTO_TARGET_RUNNER="$CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER"
  target=(--release --locked --target aarch64-unknown-linux-gnu --features dtlto-runner/cross-precompile)
  # Remote mode's toolchain tests compare the closure of a binary with this host's
  # ldd, which describes x86_64 programs only: an arm64 one under qemu has none here.
  cargo test "${target[@]}" -p dtlto-runner --lib --bins -- \
    --skip remote::toolchain::tests::closure_of_this_test_binary_matches_ldd \
    --skip remote::toolchain::tests::closure_of_real_clang_matches_ldd
  cargo test "${target[@]}" -p dtlto-runner --test tests -- \
    cli:: sandbox:: mock_mode:: faults:: read_scope::
)

echo "== the release files inspected"
DTLTO_RELEASE_DIR="$dist" cargo test --release --locked -p dtlto-runner --test tests -- \
  --include-ignored release_files::
rm -rf "$dist"
