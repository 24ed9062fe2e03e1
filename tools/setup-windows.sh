#!/usr/bin/env bash
# Prepares this Linux machine to build dtlto-runner for Windows and run it under
# wine: mingw-w64 and wine from Debian, the Rust target, the ProcessPrng stand-in DLL
# that wine 8 lacks (tools/windows/), the stand-in compiler of local mode's Windows
# tests (tests/windows/), and a wine prefix under the project's cache.
# Idempotent. Prints the environment the Windows test run needs, as KEY=VALUE lines.
set -euo pipefail
cache="$HOME/.cache/dtlto-mock"
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || ! command -v wine >/dev/null 2>&1; then
  echo "installing mingw-w64 and wine from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      gcc-mingw-w64-x86-64 wine64; } >&2
fi
rustup target add x86_64-pc-windows-gnu >/dev/null 2>&1

# Rust's std imports ProcessPrng from bcryptprimitives.dll; wine 8 has none.
dll_dir="$cache/win-dll"
src="$(cd "$(dirname "$0")/windows" && pwd)"
mkdir -p "$dll_dir"
if [ ! -f "$dll_dir/bcryptprimitives.dll" ] || [ "$src/bcryptprimitives.c" -nt "$dll_dir/bcryptprimitives.dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$dll_dir/bcryptprimitives.dll" \
    "$src/bcryptprimitives.c" "$src/bcryptprimitives.def" -ladvapi32
fi

# local mode's Windows tests run it as their compiler (tests/local_mode_windows.rs).
bin_dir="$cache/win-bin"
stand_in="$(cd "$(dirname "$0")/../tests/windows" && pwd)/stand-in-compiler.c"
mkdir -p "$bin_dir"
if [ ! -f "$bin_dir/stand-in-compiler.exe" ] || [ "$stand_in" -nt "$bin_dir/stand-in-compiler.exe" ]; then
  x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -Werror -o "$bin_dir/stand-in-compiler.exe" "$stand_in"
fi

export WINEPREFIX="$cache/wine" WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "creating the wine prefix $WINEPREFIX" >&2
  wineboot -i >/dev/null 2>&1 || true
fi
echo "WINEPREFIX=$WINEPREFIX"
echo "WINEDEBUG=-all"
# Wine sees / as Z:; WINEPATH lets every test executable find the DLL.
echo "WINEPATH=Z:${dll_dir//\//\\}"
echo "DTLTO_STAND_IN_COMPILER=Z:${bin_dir//\//\\}\\stand-in-compiler.exe"
echo "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine"
