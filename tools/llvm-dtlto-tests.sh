#!/bin/bash
# LLVM's own cross-project DTLTO tests that use local.py, run twice with lit: as
# LLVM wrote them (python3 local.py), and with local.py replaced by
# `dtlto-runner local`. Every test that passes the first way must pass the second.
#
#   RUNNER=target/release/dtlto-runner \
#   LLVM_SRC=/path/to/llvm-project-22.1.8 LLVM_BIN=/path/to/llvm-22/bin \
#   [LLVM_LIB=dirs:for:LD_LIBRARY_PATH] [LIT=lit] [HERMETIC=1] bash tools/llvm-dtlto-tests.sh
#
# With HERMETIC=1 the runner runs `local --hermetic`: every job may read only what
# its job file declares (and its compiler and system libraries).
#
# LLVM_SRC needs cross-project-tests/dtlto/ and llvm/utils/dtlto/local.py (read
# from there, never copied into this repository); LLVM_BIN the same release's clang,
# lld, llvm-ar, llvm-lto2, opt, FileCheck, count, not and split-file. The rewrite is
# textual: `distributor=%python` and `-thinlto-distributor:%python` become the
# runner, and the argument `%llvm_src_root/utils/dtlto/local.py` becomes `local`.
set -euo pipefail
: "${RUNNER:?the dtlto-runner to test}" "${LLVM_SRC:?an LLVM source tree}" "${LLVM_BIN:?its tools}"
RUNNER=$(realpath "$RUNNER")
LIT=${LIT:-lit}
tests_dir=$LLVM_SRC/cross-project-tests/dtlto
[ -f "$LLVM_SRC/llvm/utils/dtlto/local.py" ] || { echo "no local.py in $LLVM_SRC" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/llvm-dtlto-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
distributor=$RUNNER
if [ "${HERMETIC:-}" = 1 ]; then
  distributor=$work/dtlto-hermetic
  printf '#!/bin/sh\nmode=$1; shift\nexec "%s" "$mode" --hermetic "$@"\n' "$RUNNER" >"$distributor"
  chmod +x "$distributor"
fi
mapfile -t tests < <(cd "$tests_dir" && grep -l "utils/dtlto/local.py" -- * | sort)
echo "${#tests[@]} tests use local.py in $tests_dir"
declare -A result
for variant in local.py dtlto-runner; do
  dir=$work/$variant
  mkdir -p "$dir"
  cp -r "$tests_dir" "$dir/dtlto"
  if [ "$variant" = dtlto-runner ]; then
    for t in "${tests[@]}"; do
      sed -i -e 's#distributor=%python#distributor=%dtlto#g' \
        -e 's#-thinlto-distributor:%python#-thinlto-distributor:%dtlto#g' \
        -e 's#%llvm_src_root/utils/dtlto/local.py#local#g' "$dir/dtlto/$t"
    done
  fi
  cat >"$dir/lit.cfg.py" <<PY
import os, sys, lit.formats
config.name = "dtlto-$variant"
config.test_format = lit.formats.ShTest(False)
config.suffixes = [".c", ".test", ".ll", ".cpp"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = "$dir-out"
config.environment["PATH"] = "$LLVM_BIN" + os.pathsep + os.environ["PATH"]
if "${LLVM_LIB:-}":
    config.environment["LD_LIBRARY_PATH"] = "${LLVM_LIB:-}"
config.substitutions.append(("%clang", "$LLVM_BIN/clang"))
config.substitutions.append(("%python", sys.executable))
config.substitutions.append(("%llvm_src_root", "$LLVM_SRC/llvm"))
config.substitutions.append(("%dtlto", "$distributor"))
config.available_features.update(["clang", "llvm-ar", "llvm-lto2", "opt", "ld.lld",
                                  "lld-link", "x86-registered-target", "system-linux"])
PY
  echo "== $variant"
  (cd "$dir" && "$LIT" -v "${tests[@]/#/dtlto/}" >"$dir.log" 2>&1) || true
  grep -E "^(PASS|FAIL|UNSUPPORTED|XFAIL|XPASS|UNRESOLVED): " "$dir.log" | sed 's/ ([0-9]* of [0-9]*)//' | sort
  while read -r status name; do
    result[$variant/${name##*:: }]=${status%:}
  done < <(grep -E "^(PASS|FAIL|UNSUPPORTED|XFAIL|XPASS|UNRESOLVED): " "$dir.log" | sed 's/ ([0-9]* of [0-9]*)//' | awk '{print $1, $NF}')
done
regressions=0
for t in "${tests[@]}"; do
  if [ "${result[local.py/dtlto/$t]:-}" = PASS ] && [ "${result[dtlto-runner/dtlto/$t]:-}" != PASS ]; then
    echo "REGRESSION: dtlto/$t passes with local.py but not with dtlto-runner local"
    grep -A40 "TEST 'dtlto-dtlto-runner :: dtlto/$t' FAILED" "$work/dtlto-runner.log" | head -60
    regressions=$((regressions + 1))
  fi
done
echo "$regressions regression(s) among ${#tests[@]} tests"
[ "$regressions" -eq 0 ]
