#!/bin/sh
# Makes tests/models/reference/*.json: writes each generated model with `xent bench
# --synthetic` (seeded; the test writes the same bytes again) and runs the peer on it.
#
#   scripts/peer/make-references.sh PEER_DIR XENT_BUILD_DIR [SHAPE]
#
# SHAPE: only that shape's references (default: every shape of that peer).
# PEER_DIR is one of two peers, told apart by their layout:
# - a llama.cpp checkout (c392e5094 was used) built with
#     cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build -j
#   for llama (Llama 3 rope scaling), qwen2 (YaRN), gemma2 and phi3;
# - an ollama/ollama checkout at 9db4bdbad^ (its vendored llama.cpp ec98e2002, built here
#   with scripts/peer/newer-peer), for qwen3 and gemma3, which c392e5094 lacks.
# Nothing here is part of xent's build or tests.
set -eu
peer=$(cd "$1" && pwd)
xent="$2/apps/xent"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
work=${TMPDIR:-/tmp}/xent-peer-refs
mkdir -p "$work" "$repo/tests/models/reference"

if [ -f "$peer/llama/llama.cpp/include/llama.h" ]; then
  cmake -S "$here/newer-peer" -B "$work/newer-peer" -DPEER_SRC="$peer" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$work/newer-peer" -j"$(nproc)"
  g++ -std=c++17 -O2 -o "$work/peer-logits-newer" "$here/peer-logits.cpp" -I"$peer/llama/llama.cpp/include" \
    -I"$peer/ml/backend/ggml/ggml/include" -L"$work/newer-peer" -lpeerllama -Wl,-rpath,"$work/newer-peer"
  tool="$work/peer-logits-newer"
  list="tiny-qwen3 F16 tiny-qwen2-f16
tiny-qwen3 Q4_K_M tiny-qwen2-f16
tiny-gemma3 F16 tiny-llama-spm-f16
tiny-gemma3 Q8_0 tiny-llama-spm-f16"
else
  g++ -std=c++17 -O2 -o "$work/peer-logits" "$here/peer-logits.cpp" -I"$peer/include" -I"$peer/ggml/include" \
    -L"$peer/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$peer/build/bin"
  tool="$work/peer-logits"
  list="tiny-llama3 F16 tiny-llama-bpe-f16
tiny-llama3 Q4_K_M tiny-llama-bpe-f16
tiny-qwen2-yarn F16 tiny-qwen2-f16
tiny-qwen2-yarn Q8_0 tiny-qwen2-f16
tiny-gemma2 F16 tiny-llama-spm-f16
tiny-gemma2 Q8_0 tiny-llama-spm-f16
tiny-phi F16 tiny-llama-spm-f16
tiny-phi Q8_0 tiny-llama-spm-f16"
fi

# shape  type  tokenizer-source (the shared model whose vocabulary the file carries)
echo "$list" | while read -r shape type vocab; do
  [ -n "${3:-}" ] && [ "$3" != "$shape" ] && continue
  name="$shape-$(echo "$type" | tr 'A-Z' 'a-z')"
  "$xent" bench --synthetic "$shape" --type "$type" --vocab "$shared/models/$vocab.gguf" -o "$work/$name.gguf"
  "$tool" "$work/$name.gguf" "$name" "$repo/tests/models/reference" "$shared"/prompts/*.txt
done
