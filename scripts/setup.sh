#!/usr/bin/env bash
# Installs the Debian bookworm packages xent needs (only those missing; as root, or
# through sudo), then configures and builds everything into build/.
# Environment: XENT_BUILD_DIR (default build), XENT_CMAKE_ARGS (extra cmake options).
# With --tests it also installs what the whole test suite needs: the aarch64 cross compiler
# and qemu-user (scripts/ci-aarch64.sh), clang 14 with its sanitizer and libFuzzer runtimes
# (scripts/ci-sanitize.sh), Chromium and playwright-core (the browser test).
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1

packages=(
  g++ cmake make pkg-config git            # toolchain
  catch2 libcli11-dev libstb-dev           # tests, command line, PNG plots
  nlohmann-json3-dev libcpp-httplib-dev    # JSON everywhere, the HTTP server
  libvulkan-dev glslc mesa-vulkan-drivers  # Vulkan backend; lavapipe runs it on the CPU in tests
)
if [ $with_tests = 1 ]; then
  packages+=(g++-aarch64-linux-gnu qemu-user)  # ARM64 kernels and references under emulation
  packages+=(clang-14 libclang-rt-14-dev)       # scripts/ci-sanitize.sh: ASan, UBSan, libFuzzer
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir="${XENT_BUILD_DIR:-build}"
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release ${XENT_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
if [ $with_tests = 1 ]; then
  scripts/setup-browser-tests.sh
  scripts/setup-client-tests.sh
fi
