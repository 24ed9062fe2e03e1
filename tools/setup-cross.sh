#!/usr/bin/env bash
# Prepares this x86_64 Linux machine to build dtlto-runner for arm64 Linux (run under
# qemu-user) and for macOS on x86_64 and arm64 (linked with zig, no Apple SDK):
# qemu-user and the arm64 cross linker from Debian, ziglang and cargo-zigbuild from
# PyPI, and the Rust targets. Idempotent. Prints the environment the cross builds
# need, as KEY=VALUE lines.
set -euo pipefail
ziglang_version="0.17.1"
zigbuild_version="0.24.1"
venv="${DTLTO_ZIG_VENV:-$HOME/.cache/dtlto-mock/zig-$ziglang_version-zigbuild-$zigbuild_version}"

if ! command -v qemu-aarch64 >/dev/null 2>&1 || ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
  echo "installing qemu-user and the arm64 cross linker from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross; } >&2
fi
if [ ! -x "$venv/bin/cargo-zigbuild" ] || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  {
    echo "installing zig and cargo-zigbuild from PyPI into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "ziglang==$ziglang_version" "cargo-zigbuild==$zigbuild_version"
  } >&2
fi
rustup target add aarch64-unknown-linux-gnu x86_64-apple-darwin aarch64-apple-darwin >/dev/null 2>&1

# The arm64 Linux libraries of Debian's cross toolchain, for qemu's loader.
sysroot=/usr/aarch64-linux-gnu
echo "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc"
echo "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64 -L $sysroot"
echo "DTLTO_CARGO_ZIGBUILD=$venv/bin/cargo-zigbuild"
# cargo-zigbuild runs `python3 -m ziglang` when no zig is on PATH: the venv's.
echo "DTLTO_ZIG_PATH=$venv/bin"
