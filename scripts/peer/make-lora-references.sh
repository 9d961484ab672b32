#!/bin/sh
# Makes tests/models/reference/lora/*.json: seeded random LoRA adapters written by `xent bench
# --synthetic-lora` (the test writes the same bytes again) on shared base models, run by the
# peer with llama_set_adapter_lora (peer-logits --lora-scaled).
#
#   scripts/peer/make-lora-references.sh PEER_DIR XENT_BUILD_DIR
#
# PEER_DIR: a llama.cpp checkout (c392e5094 was used) built with
#   cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build -j
# Nothing here is part of xent's build or tests.
set -eu
peer=$(cd "$1" && pwd)
xent="$2/apps/xent"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
work=${TMPDIR:-/tmp}/xent-peer-refs
out="$repo/tests/models/reference/lora"
mkdir -p "$work" "$out"
g++ -std=c++17 -O2 -o "$work/peer-logits" "$here/peer-logits.cpp" -I"$peer/include" -I"$peer/ggml/include" \
  -L"$peer/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$peer/build/bin"

# name  base  then one or two "adapter-args|scale" (the adapter args as tests/models/test-lora-reference.cpp gives them)
lora() { "$xent" bench --synthetic-lora $1 --base "$shared/models/$2.gguf" -o "$3" >/dev/null; }

# Llama (SentencePiece), F16 base, an F16 rank-8 adapter on every block weight and the output.
lora "8 --type F16" tiny-llama-spm-f16 "$work/llama-r8.gguf"
"$work/peer-logits" --lora-scaled "$work/llama-r8.gguf" 1.0 "$shared/models/tiny-llama-spm-f16.gguf" \
  tiny-llama-spm-f16+lora-r8 "$out" "$shared"/prompts/*.txt
# The same with a second adapter (rank 4, the token embedding among its targets) at a negative scale.
lora "4 --type F16 --lora-alpha 6 --lora-targets attn_v,ffn_down,token_embd --synthetic-seed 7" tiny-llama-spm-f16 \
  "$work/llama-r4-embd.gguf"
"$work/peer-logits" --lora-scaled "$work/llama-r8.gguf" 0.5 --lora-scaled "$work/llama-r4-embd.gguf" -1.5 \
  "$shared/models/tiny-llama-spm-f16.gguf" tiny-llama-spm-f16+lora-r8x0.5+r4x-1.5 "$out" "$shared"/prompts/*.txt
# Qwen2 (Q/K/V biases), F16 base, F32 adapter.
lora "8 --type F32" tiny-qwen2-f16 "$work/qwen2-r8.gguf"
"$work/peer-logits" --lora-scaled "$work/qwen2-r8.gguf" 1.0 "$shared/models/tiny-qwen2-f16.gguf" \
  tiny-qwen2-f16+lora-r8 "$out" "$shared"/prompts/*.txt
# GPT-2 (fused attn_qkv), Q8_0 base, F16 adapter.
lora "8 --type F16" tiny-gpt2-q8_0 "$work/gpt2-r8.gguf"
"$work/peer-logits" --lora-scaled "$work/gpt2-r8.gguf" 1.0 "$shared/models/tiny-gpt2-q8_0.gguf" \
  tiny-gpt2-q8_0+lora-r8 "$out" "$shared"/prompts/*.txt
