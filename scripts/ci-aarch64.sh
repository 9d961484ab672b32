#!/usr/bin/env bash
# CI for 64-bit ARM: cross-compiles the CPU kernel, thread-pool and reference-logit tests
# with Debian's g++-aarch64-linux-gnu and runs them under qemu-user twice: -cpu max (SDOT,
# the neon-dotprod kernels) and -cpu cortex-a53 (no SDOT: plain NEON; SDOT would SIGILL).
#
#   scripts/ci-aarch64.sh              # both CPU models
#   XENT_QEMU_CPUS=cortex-a53 scripts/ci-aarch64.sh
#
# Built without OpenMP, so the threads are xent's own pool (the embedded configuration).
# Emulation is ~10-30x slower than native, so only a subset of the reference models runs.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${XENT_AARCH64_BUILD:-build-aarch64}
jobs=${XENT_JOBS:-2}
cpus=${XENT_QEMU_CPUS:-"max cortex-a53"}
sysroot=/usr/aarch64-linux-gnu

for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "ci-aarch64: $tool is missing (apt-get install g++-aarch64-linux-gnu qemu-user)" >&2; exit 1; }
done

# The CPU model is not part of the emulator command: qemu-user reads QEMU_CPU from the
# environment, so one build serves both runs.
cmake -S . -B "$build" --toolchain cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CROSSCOMPILING_EMULATOR="qemu-aarch64;-L;$sysroot" \
  -DXENT_VULKAN=OFF -DXENT_CUDA=OFF -DXENT_OPENMP=OFF -DXENT_BUILD_APPS=OFF \
  -DXENT_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$jobs" --target test-quant-kernels test-vec-kernels test-mul-mat test-thread-pool test-reference-logits

# Every shipped model (all weight types, llama/qwen2/gpt2): under qemu on 2 cores the whole
# set takes about two minutes per CPU model. XENT_AARCH64_MODELS='tiny-llama-spm-q4_0|...'
# picks a subset.
models=${XENT_AARCH64_MODELS:-'.*'}
tests="^test-quant-kernels:|^test-vec-kernels:|^test-mul-mat:|^test-thread-pool:|^test-reference-logits: ?reference logits: ($models)\$"

for cpu in $cpus; do
  echo "== qemu-aarch64 -cpu $cpu"
  QEMU_CPU=$cpu ctest --test-dir "$build" --output-on-failure -j"$jobs" -R "$tests" \
    --no-tests=error --timeout 900
done
