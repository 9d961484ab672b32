#!/bin/sh
# Makes tests/models/reference/*.json: writes each generated model with `xent bench
# --synthetic` (seeded; the test writes the same bytes again) and runs the peer on it.
#
#   scripts/peer/make-references.sh LLAMA_CPP_DIR XENT_BUILD_DIR
#
# LLAMA_CPP_DIR: a llama.cpp checkout (c392e5094 was used) built with
#   cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build -j
# Nothing here is part of xent's build or tests.
set -eu
peer=$(cd "$1" && pwd)
xent="$2/apps/xent"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
work=${TMPDIR:-/tmp}/xent-peer-refs
mkdir -p "$work" "$repo/tests/models/reference"

g++ -std=c++17 -O2 -o "$work/peer-logits" "$here/peer-logits.cpp" -I"$peer/include" -I"$peer/ggml/include" \
  -L"$peer/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$peer/build/bin"

# shape  type  tokenizer-source (the shared model whose vocabulary the file carries)
while read -r shape type vocab; do
  name="$shape-$(echo "$type" | tr 'A-Z' 'a-z')"
  "$xent" bench --synthetic "$shape" --type "$type" --vocab "$shared/models/$vocab.gguf" -o "$work/$name.gguf"
  "$work/peer-logits" "$work/$name.gguf" "$name" "$repo/tests/models/reference" "$shared"/prompts/*.txt
done <<LIST
tiny-llama3 F16 tiny-llama-bpe-f16
tiny-llama3 Q4_K_M tiny-llama-bpe-f16
tiny-qwen2-yarn F16 tiny-qwen2-f16
tiny-qwen2-yarn Q8_0 tiny-qwen2-f16
tiny-gemma2 F16 tiny-llama-spm-f16
tiny-gemma2 Q8_0 tiny-llama-spm-f16
LIST
