#!/usr/bin/env bash
# Builds the release files into DIR (default: dist/): dtlto-runner for every target
# in the README's support matrix, dtlto-mock.wasm, and SHA256SUMS over them all.
# Needs the set-up of tools/setup-windows.sh and tools/setup-cross.sh, whose printed
# environment it applies itself. The runner of each target embeds the same guest.
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${1:-dist}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TARGET_DIR="$target_dir"
apply() { while IFS= read -r assignment; do export "${assignment?}"; done <<< "$1"; }
apply "$(bash tools/setup-windows.sh)"
apply "$(bash tools/setup-cross.sh)"

mkdir -p "$dist"
build=(--release --locked -p dtlto-runner)
host="$(rustc -vV | sed -n 's/^host: //p')"
if [ "$host" != x86_64-unknown-linux-gnu ]; then
  echo "error: the release files are built on x86_64 Linux (this is $host)" >&2
  exit 1
fi

# target; who links it; whether its CPU differs from this (x86_64) machine's, so that
# the build script needs Cranelift's other back ends; the executable's suffix.
while read -r target linker other_cpu suffix; do
  echo "== $target" >&2
  # This machine's own target is built as a plain build, whose outputs the test
  # command has already made.
  args=("${build[@]}") out="$target_dir/release"
  if [ "$target" != "$host" ]; then args+=(--target "$target") out="$target_dir/$target/release"; fi
  if [ "$other_cpu" = yes ]; then args+=(--features dtlto-runner/cross-precompile); fi
  case "$linker" in
    native) cargo build "${args[@]}" ;;
    # macOS: linked by zig against its own libSystem stubs, no Apple SDK needed.
    zig) PATH="$DTLTO_ZIG_PATH:$PATH" "$DTLTO_CARGO_ZIGBUILD" zigbuild "${args[@]}" ;;
  esac
  cp "$out/dtlto-runner${suffix:-}" "$dist/dtlto-runner-$target${suffix:-}"
done <<'TARGETS'
x86_64-unknown-linux-gnu native no
x86_64-pc-windows-gnu native no .exe
aarch64-unknown-linux-gnu native yes
x86_64-apple-darwin zig no
aarch64-apple-darwin zig yes
TARGETS

# The guest every runner embeds, as the native runner writes it out.
"$dist/dtlto-runner-x86_64-unknown-linux-gnu" --guest-wasm "$dist/dtlto-mock.wasm" >/dev/null
(cd "$dist" && rm -f SHA256SUMS && sha256sum -- * > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS)
cat "$dist/SHA256SUMS"
