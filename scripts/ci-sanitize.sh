#!/usr/bin/env bash
# The sanitizer job of scripts/run-tests.sh: a clang ASan + UBSan build (CPU only, any UB
# report fatal) of the unit tests that read hostile input - formats, tokenizers, chat
# templates, grammars and JSON Schema, the C API's error paths, the fuzz regressions - then
# each libFuzzer harness of tests/fuzz/ for XENT_FUZZ_SECONDS (default 15) from the seeds.
# A sanitizer report, a failing test or a fuzzer finding fails the job; scripts/fuzz.sh
# prints the reproducer (the bytes, and the command that replays it).
# Environment: XENT_SANITIZE_BUILD_DIR (default build-sanitize), XENT_FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
export XENT_FUZZ_BUILD_DIR="${XENT_SANITIZE_BUILD_DIR:-build-sanitize}"
seconds="${XENT_FUZZ_SECONDS:-15}"
tests=(test-gguf test-quants test-fuzz-formats test-tokenizer test-chat-template test-grammar test-json-schema
       test-fuzz-sampling test-sampler test-api-errors)
fuzzers=()
for f in tests/fuzz/fuzz-*.cpp; do fuzzers+=("$(basename "$f" .cpp)"); done
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

t0=$(date +%s)
scripts/fuzz.sh --configure
cmake --build "$XENT_FUZZ_BUILD_DIR" -j"$(nproc)" --target "${tests[@]}" "${fuzzers[@]}" xent-fuzz-seeds >/dev/null
t1=$(date +%s)
regex="^($(IFS='|'; echo "${tests[*]}")):"
ctest --test-dir "$XENT_FUZZ_BUILD_DIR" --output-on-failure -j2 --no-tests=error -R "$regex"
t2=$(date +%s)
scripts/fuzz-seeds.sh "$XENT_FUZZ_BUILD_DIR" >/dev/null
failed=()
for f in "${fuzzers[@]}"; do
  echo "ci-sanitize: $f for $seconds s"
  set +e
  scripts/fuzz.sh "$f" "$seconds" | grep -E "DONE|fuzz.sh|FINDING|ERROR|SUMMARY|runtime error|^---|^[0-9]{7} "
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || failed+=("$f")
done
t3=$(date +%s)
echo "ci-sanitize: build $((t1 - t0)) s, unit tests $((t2 - t1)) s, fuzzers $((t3 - t2)) s (${#fuzzers[@]} x $seconds s)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "ci-sanitize: findings in ${failed[*]} (reproducers in $XENT_FUZZ_BUILD_DIR/crashes/)" >&2
  exit 1
fi
