#!/usr/bin/env bash
# The whole test suite, as CI runs it: every ctest test of the native build (CPU, Vulkan on
# lavapipe, CUDA where a GPU exists, apps, tools, the browser test), then the aarch64 kernel
# and reference tests under qemu-user, then the sanitizer job (scripts/ci-sanitize.sh: clang
# ASan + UBSan unit tests, each libFuzzer harness for 30 s). Expects scripts/setup.sh --tests.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${XENT_BUILD_DIR:-build}"
ctest --test-dir "$build_dir" --output-on-failure -j2 --no-tests=error
scripts/ci-aarch64.sh
# ASan + UBSan build of the hostile-input tests and each fuzzer for a short budget.
scripts/ci-sanitize.sh
