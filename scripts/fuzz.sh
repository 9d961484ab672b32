#!/usr/bin/env bash
# scripts/fuzz.sh NAME [SECONDS]: runs one libFuzzer harness of tests/fuzz/ (fuzz-gguf,
# fuzz-safetensors, fuzz-tokenizer-bpe, fuzz-tokenizer-spm, fuzz-jinja, fuzz-grammar,
# fuzz-json-schema, fuzz-server-request) for SECONDS (default 300) in one process. Configures and builds the
# clang sanitizer build BUILD_DIR (XENT_FUZZ_BUILD_DIR, default build-fuzz) when needed,
# makes the seeds, keeps the corpus it grows in BUILD_DIR/corpus/NAME, and leaves crash,
# timeout and out-of-memory reproducers in BUILD_DIR/crashes/NAME, printed at the end.
# Exits 1 when there is one. Replay one: BUILD_DIR/tests/fuzz/NAME FILE.
# Environment: XENT_FUZZ_FLAGS (extra libFuzzer flags), XENT_BUILD_LOCK (a file to flock
# around building and fuzzing, so they never overlap other CPU-heavy work).
set -euo pipefail
cd "$(dirname "$0")/.."
configure() {  # the clang sanitizer build, when BUILD_DIR has none yet
  [ -f "$build_dir/CMakeCache.txt" ] && return 0
  # CPU only, no OpenMP (xent's own thread pool), -O1 -g: fast enough and readable reports.
  cmake -S . -B "$build_dir" -DCMAKE_C_COMPILER="${XENT_FUZZ_CC:-clang-14}" -DCMAKE_CXX_COMPILER="${XENT_FUZZ_CXX:-clang++-14}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
    -DXENT_FUZZ=ON -DXENT_VULKAN=OFF -DXENT_CUDA=OFF -DXENT_OPENMP=OFF >/dev/null
}
build_dir="${XENT_FUZZ_BUILD_DIR:-build-fuzz}"
# scripts/fuzz.sh --configure: only that (scripts/ci-sanitize.sh builds its tests in it too).
if [ "${1:-}" = "--configure" ]; then configure; exit 0; fi
if [ $# -lt 1 ]; then
  echo "usage: scripts/fuzz.sh NAME [SECONDS]; NAME is one of:" >&2
  ls tests/fuzz/fuzz-*.cpp | sed 's|.*/||; s|\.cpp$||; s|^|  |' >&2
  exit 2
fi
name="$1"
seconds="${2:-300}"
[ -f "tests/fuzz/$name.cpp" ] || { echo "fuzz.sh: no harness tests/fuzz/$name.cpp" >&2; exit 2; }
locked() { if [ -n "${XENT_BUILD_LOCK:-}" ]; then flock "$XENT_BUILD_LOCK" "$@"; else "$@"; fi; }

configure
locked cmake --build "$build_dir" -j"${XENT_JOBS:-2}" --target "$name" xent-fuzz-seeds >/dev/null
# Two fuzz.sh starting at once (one per core) make the seeds once: the second waits.
[ -d "$build_dir/seeds/$name" ] ||
  flock "$build_dir/.seeds.lock" sh -c '[ -d "$1/seeds/$2" ] || scripts/fuzz-seeds.sh "$1" >/dev/null' sh "$build_dir" "$name"

crashes="$build_dir/crashes/$name"
corpus="$build_dir/corpus/$name"
mkdir -p "$crashes" "$corpus"
dict=()
[ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
before=$(find "$crashes" -type f | wc -l)
# -timeout: one input may take 10 s at most (a hang is a finding); -rss_limit_mb: memory.
# The progress lines are left out; the final stats (executions, coverage) are kept.
set +e
# shellcheck disable=SC2086
locked "$build_dir/tests/fuzz/$name" "$corpus" "$build_dir/seeds/$name" "${dict[@]}" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
  -artifact_prefix="$crashes/" -print_final_stats=1 ${XENT_FUZZ_FLAGS:-} 2>&1 | \
  grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|# Uses: [0-9]+$|^#+ (Recommended dictionary|End of recommended)|^[[:space:]]+NEW_FUNC'
status=${PIPESTATUS[0]}
set -e
after=$(find "$crashes" -type f | wc -l)
if [ "$after" -gt "$before" ] || [ "$status" -ne 0 ]; then
  echo "fuzz.sh: $name found something; reproducers in $crashes:"
  for f in "$crashes"/*; do
    [ -f "$f" ] || continue
    echo "--- $f ($(stat -c %s "$f") bytes), replay: $build_dir/tests/fuzz/$name $f"
    head -c 512 "$f" | od -A d -c | head -n 20
  done
  exit 1
fi
echo "fuzz.sh: $name: no finding in ${seconds} s; corpus $(find "$corpus" -type f | wc -l) files"
