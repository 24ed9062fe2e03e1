#!/usr/bin/env bash
# LLVM's own DTLTO tests, from LLVM's own source, with LLVM's own tools of the same
# version (22.1.8, from Debian), run twice: with LLVM's distributor scripts
# (llvm/utils/dtlto/mock.py and validate.py, the oracle) and with dtlto-runner in
# their place. Every test that passes with the scripts must pass with the runner.
# The tests that call local.py (cross-project-tests/dtlto) run with local.py, with
# `dtlto-runner local`, and with `dtlto-runner remote` against a REAPI engine this
# script starts (tools/reapi-engine.sh), the same way.
#
#   bash tests/llvm_upstream.sh [path/to/dtlto-runner]
#
# (default: $CARGO_TARGET_DIR/release/dtlto-runner, as tests/all.sh builds it).
#
# What it fetches, through apt and from Debian only, into ~/.cache/dtlto-mock/llvm-22.1.8
# (a warm run downloads nothing):
# - the binaries: llvm-22, llvm-22-tools, lld-22, clang-22 and their LLVM libraries
#   from bookworm-security, downloaded with apt-get download and unpacked with
#   dpkg-deb -x (nothing is installed; LD_LIBRARY_PATH points at the libraries);
# - the source: llvm-toolchain-22's orig tarball, whose size and SHA-256 are checked
#   here; only the DTLTO test directories, llvm/utils/dtlto and lit are extracted,
#   and the tarball is not kept.
# apt runs with a private configuration under the cache (its own source list, made
# from the Debian mirrors this machine's apt already uses, with the deb-src entries
# the source needs), so the system's apt configuration is left as it is.
#
# The RUN lines of LLVM's files are rewritten at run time in a scratch copy
# (tests/llvm-upstream/upstream.py rewrite); a script reference left in a RUN line
# fails the stage. Nothing of LLVM's goes into this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
here="$PWD/tests/llvm-upstream"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
runner="$(realpath "${1:-$target_dir/release/dtlto-runner}")"
[ -x "$runner" ] || { echo "error: no dtlto-runner at $runner (build it first: cargo build --release -p dtlto-runner)" >&2; exit 1; }

llvm_version="22.1.8"
# The bookworm-security build of the binaries (this machine is bookworm).
deb_version="1:22.1.8-1~deb12u1"
packages=(llvm-22 llvm-22-tools lld-22 clang-22 libllvm22 libclang-cpp22 libclang-common-22-dev)
# The source: bookworm-security's package first; trixie's lists the very same orig
# tarball (some mirrors answer 404 for the bookworm-security pool file).
source_versions=("1:22.1.8-1~deb12u1" "1:22.1.8-1~deb13u5")
orig_name="llvm-toolchain-22_22.1.8.orig.tar.xz"
orig_size=196630560
orig_sha256="b49b9277aef97616320b2da259e1f8174c65b0ce2fbe2e8629644a97693402fe"
top="llvm-toolchain-22_22.1.8"
# What is extracted from the tarball: the test directories whose tests call a
# distributor script, the lit.local.cfg files above them, the scripts, and lit.
members=(
  "$top/llvm/utils/lit/lit.py" "$top/llvm/utils/lit/lit/*"
  "$top/llvm/utils/dtlto/*"
  "$top/llvm/test/ThinLTO/X86/lit.local.cfg" "$top/llvm/test/ThinLTO/X86/dtlto/*"
  "$top/lld/test/ELF/lit.local.cfg" "$top/lld/test/ELF/dtlto/*"
  "$top/lld/test/COFF/lit.local.cfg" "$top/lld/test/COFF/dtlto/*"
  "$top/cross-project-tests/dtlto/*"
)
# The directories of the mock.py/validate.py tests (run with both), and of the
# local.py tests (run with local.py only).
mock_validate_dirs=(llvm/test/ThinLTO/X86/dtlto lld/test/ELF/dtlto lld/test/COFF/dtlto)
local_dirs=(cross-project-tests/dtlto)

cache="$HOME/.cache/dtlto-mock/llvm-$llvm_version"
mkdir -p "$cache"
start=$SECONDS

# --- apt, privately -----------------------------------------------------------------
apt_dir="$cache/apt"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
  -o "Dir::Etc::Preferences=$apt_dir/preferences" -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
  -o "APT::Sandbox::User=root" -q
)
# Made afresh by the first fetch of a run that needs one, and removed once the
# fetches are done: a warm run does not touch apt at all.
apt_ready=""
private_apt() {
  if [ -z "$apt_ready" ]; then
    # The mirrors come from this machine's apt: the one that serves bookworm, and the
    # one that serves bookworm-security.
    local targets debian security
    # shellcheck disable=SC2016 # apt's own $(FIELD) syntax, not the shell's
    targets="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null | sort -u)"
    debian="$(awk '$2 == "bookworm" { print $1; exit }' <<< "$targets")"
    security="$(awk '$2 == "bookworm-security" { print $1; exit }' <<< "$targets")"
    if [ -z "$debian" ] || [ -z "$security" ]; then
      echo "error: this machine's apt has no source for Debian bookworm and bookworm-security;" \
        "LLVM $llvm_version comes from there" >&2
      exit 1
    fi
    rm -rf "$apt_dir"
    mkdir -p "$apt_dir/sources.list.d" "$apt_dir/preferences.d" "$apt_dir/lists/partial" \
      "$apt_dir/cache/archives/partial"
    touch "$apt_dir/preferences"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    cat > "$apt_dir/sources.list" <<EOF
deb [signed-by=$keyring] $security bookworm-security main
deb-src [signed-by=$keyring] $security bookworm-security main
deb-src [signed-by=$keyring] $debian trixie main
EOF
    echo "apt: private source list (bookworm-security, and deb-src for bookworm-security and trixie)"
    apt-get "${apt_opts[@]}" update >/dev/null
    apt_ready=1
  fi
}

# --- the binaries ---------------------------------------------------------------------
root="$cache/root"
bin="$root/usr/lib/llvm-22/bin"
if [ "$(cat "$root/.version" 2>/dev/null)" != "$deb_version" ]; then
  private_apt
  echo "downloading ${packages[*]} $deb_version from Debian"
  rm -rf "$root" "$root.tmp" "$cache/debs"
  mkdir -p "$cache/debs" "$root.tmp"
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "${packages[@]/%/=$deb_version}" >/dev/null)
  for deb in "$cache/debs"/*.deb; do dpkg-deb -x "$deb" "$root.tmp"; done
  echo "$deb_version" > "$root.tmp/.version"
  rm -rf "$cache/debs"
  mv "$root.tmp" "$root"
fi
# libLLVM and libclang-cpp, in the multiarch directory (x86_64-linux-gnu, ...).
lib="$(dirname "$(find "$root/usr/lib" -name 'libLLVM.so.22*' -print -quit)")"
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for tool in clang ld.lld lld-link llvm-lto2 opt llc llvm-ar FileCheck not count split-file; do
  missing="$(ldd "$bin/$tool" | grep 'not found' || true)"
  if [ -n "$missing" ]; then
    echo "error: $bin/$tool lacks libraries:" >&2
    echo "$missing" >&2
    exit 1
  fi
done
lto2_help="$("$bin/llvm-lto2" run --help-hidden)"
grep -q -- '-dtlto-distributor=' <<< "$lto2_help" \
  || { echo "error: $bin/llvm-lto2 has no -dtlto-distributor option" >&2; exit 1; }

# --- the source -----------------------------------------------------------------------
src="$cache/src"
if [ "$(cat "$src/.sha256" 2>/dev/null)" != "$orig_sha256" ]; then
  private_apt
  tarball="$cache/$orig_name"
  got=""
  for version in "${source_versions[@]}"; do
    # apt prints: 'URL' NAME SIZE SHA256:HASH
    line="$(apt-get "${apt_opts[@]}" source --print-uris "llvm-toolchain-22=$version" 2>/dev/null \
      | grep -F " $orig_name " || true)"
    [ -n "$line" ] || { echo "apt: llvm-toolchain-22 $version is not listed"; continue; }
    read -r url _ size hash <<< "$line"
    url="${url//\'/}"
    if [ "$size" != "$orig_size" ] || [ "${hash#SHA256:}" != "$orig_sha256" ]; then
      echo "error: apt lists $orig_name for $version as $size bytes, $hash;" \
        "expected $orig_size bytes, SHA256:$orig_sha256" >&2
      exit 1
    fi
    echo "downloading $orig_name ($orig_size bytes) of llvm-toolchain-22 $version"
    if curl -fsS --retry 2 -o "$tarball.part" "$url"; then
      got="$version"
      break
    fi
    echo "apt's mirror did not serve it for $version; trying the next source"
  done
  [ -n "$got" ] || { echo "error: no Debian source served $orig_name" >&2; exit 1; }
  size="$(stat -c %s "$tarball.part")"
  hash="$(sha256sum "$tarball.part" | cut -d' ' -f1)"
  if [ "$size" != "$orig_size" ] || [ "$hash" != "$orig_sha256" ]; then
    rm -f "$tarball.part"
    echo "error: $orig_name is $size bytes with SHA-256 $hash; expected $orig_size and $orig_sha256" >&2
    exit 1
  fi
  echo "verified: $orig_size bytes, SHA-256 $orig_sha256"
  rm -rf "$src" "$src.tmp"
  mkdir -p "$src.tmp"
  tar -xJf "$tarball.part" -C "$src.tmp" --wildcards "${members[@]}"
  rm -f "$tarball.part"
  echo "$orig_sha256" > "$src.tmp/.sha256"
  mv "$src.tmp" "$src"
fi
llvm_src="$src/$top"
rm -rf "$apt_dir"

# --- the tests, in a scratch copy -------------------------------------------------------
scratch="$(mktemp -d "${TMPDIR:-/tmp}/dtlto-upstream.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
# A tree per distributor, holding LLVM's test directories at their places in LLVM's
# source, with the lit.local.cfg files above them and our lit.cfg.py at the root.
copy_tests() {  # DEST DIR...
  local dest="$1" dir cfg
  shift
  mkdir -p "$dest"
  cp "$here/lit.cfg.py" "$dest/"
  for dir in "$@"; do
    mkdir -p "$dest/$(dirname "$dir")"
    cp -R "$llvm_src/$dir" "$dest/$dir"
    cfg="$llvm_src/$(dirname "$dir")/lit.local.cfg"
    if [ -f "$cfg" ]; then cp "$cfg" "$dest/$(dirname "$dir")/"; fi
  done
}
copy_tests "$scratch/scripts" "${mock_validate_dirs[@]}"
copy_tests "$scratch/runner" "${mock_validate_dirs[@]}"
copy_tests "$scratch/local" "${local_dirs[@]}"
copy_tests "$scratch/local-runner" "${local_dirs[@]}"
copy_tests "$scratch/remote-runner" "${local_dirs[@]}"
(cd "$scratch/runner" && python3 "$here/upstream.py" rewrite "${mock_validate_dirs[@]}")
(cd "$scratch/local-runner" && python3 "$here/upstream.py" rewrite "${local_dirs[@]}")
(cd "$scratch/remote-runner" && python3 "$here/upstream.py" rewrite --local-as remote "${local_dirs[@]}")

run_lit() {  # NAME TREE
  echo "lit: LLVM $llvm_version's tests with $1"
  mkdir -p "$scratch/out-$1"
  DTLTO_UPSTREAM_NAME="$1" DTLTO_UPSTREAM_OUT="$scratch/out-$1" \
    DTLTO_UPSTREAM_LLVM_BIN="$bin" DTLTO_UPSTREAM_LLVM_LIB="$lib" \
    DTLTO_UPSTREAM_SRC_ROOT="$llvm_src/llvm" DTLTO_UPSTREAM_RUNNER="$runner" \
    python3 "$llvm_src/llvm/utils/lit/lit.py" -sv --no-progress-bar -o "$scratch/$1.json" "$2" \
    > "$scratch/$1.log" 2>&1 || true
  [ -s "$scratch/$1.json" ] || { cat "$scratch/$1.log" >&2; echo "error: lit did not run ($1)" >&2; exit 1; }
}
run_lit scripts "$scratch/scripts"
# The features our lit.cfg.py found true (those not listed are false here).
grep -m1 -o 'features: .*' "$scratch/scripts.log" || true
run_lit runner "$scratch/runner"
run_lit local "$scratch/local"
run_lit local-runner "$scratch/local-runner"
# A third time with `dtlto-runner remote`, against a real REAPI engine on this
# machine (buildbox-casd with buildbox-run), found through DTLTO_REMOTE_ENDPOINT.
repo="$(cd "$(dirname "$0")/.." && pwd)"
engine_dir="$scratch/engine"
# Started by root, the engine runs its actions as nobody, who must reach its directory.
chmod 0711 "$scratch"
trap 'bash "$repo/tools/reapi-engine.sh" stop "$engine_dir" >/dev/null 2>&1 || true; rm -rf "$scratch"' EXIT
DTLTO_REMOTE_ENDPOINT="$(bash "$repo/tools/reapi-engine.sh" start "$engine_dir")"
DTLTO_REMOTE_ENDPOINT="$DTLTO_REMOTE_ENDPOINT" run_lit remote-runner "$scratch/remote-runner"

echo "LLVM $llvm_version's mock.py/validate.py tests, with the scripts and with dtlto-runner:"
status=0
python3 "$here/upstream.py" report "$scratch/scripts.json" "$scratch/runner.json" || status=$?
echo
echo "LLVM $llvm_version's local.py tests, with local.py and with dtlto-runner local:"
mapfile -t out_of_scope < <(cd "$scratch/local" && grep -l 'local_codegen_and_wait\.py' -r . \
  --include='*.test' --include='*.c' | xargs -r -n1 basename)
local_status=0
python3 "$here/upstream.py" report "$scratch/local.json" "$scratch/local-runner.json" \
  "${out_of_scope[@]}" || local_status=$?
echo
echo "LLVM $llvm_version's local.py tests, with local.py and with dtlto-runner remote:"
remote_status=0
python3 "$here/upstream.py" report "$scratch/local.json" "$scratch/remote-runner.json" \
  "${out_of_scope[@]}" || remote_status=$?
if [ "$status" != 0 ]; then
  echo "--- lit's output with the runner:" >&2
  cat "$scratch/runner.log" >&2
fi
if [ "$local_status" != 0 ]; then
  echo "--- lit's output with dtlto-runner local:" >&2
  cat "$scratch/local-runner.log" >&2
  status=$local_status
fi
if [ "$remote_status" != 0 ]; then
  echo "--- lit's output with dtlto-runner remote:" >&2
  cat "$scratch/remote-runner.log" >&2
  status=$remote_status
fi
echo "LLVM $llvm_version upstream stage: $((SECONDS - start)) s"
exit "$status"
