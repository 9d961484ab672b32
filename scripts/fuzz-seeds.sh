#!/usr/bin/env bash
# scripts/fuzz-seeds.sh [BUILD_DIR]: the seed corpora of the tests/fuzz/ harnesses, made from
# shipped files into BUILD_DIR/seeds/NAME (default build-fuzz; nothing here is committed).
# The binary ones (GGUF, safetensors) come from BUILD_DIR/tests/fuzz/xent-fuzz-seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-${XENT_FUZZ_BUILD_DIR:-build-fuzz}}"
shared="${XENT_SHARED_DIR:-../shared}"
# Made in a folder of its own and renamed at the end, so that a fuzz.sh starting meanwhile
# never reads half a set (fuzz.sh also serialises makers with a lock).
final="$build_dir/seeds"
seeds="$build_dir/seeds.tmp.$$"
rm -rf "$seeds"
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{fuzz-tokenizer-bpe,fuzz-tokenizer-spm,fuzz-jinja,fuzz-grammar,fuzz-json-schema,fuzz-server-request}

# GGUF models and HF checkpoints, shrunk (tests/fuzz/make-seeds.cpp).
"$build_dir/tests/fuzz/xent-fuzz-seeds" "$seeds"

# Tokenizers: the reference test texts and lines of the sample notes, each behind the byte
# that picks the vocabulary (fuzz-tokenizer-bpe has 6, fuzz-tokenizer-spm 2).
texts="$seeds/texts"
mkdir -p "$texts"
for inp in "$shared"/reference/tokenizer/*.inp; do
  awk -v out="$texts/$(basename "$inp" .gguf.inp)" 'BEGIN { RS = "\n__ggml_vocab_test__\n"; ORS = "" }
    { n++; printf "%s", $0 > (out "-" n ".txt"); close(out "-" n ".txt") }' "$inp"
done
head -n 40 "$shared/data/clinical-notes-sample.txt" | split -l 4 - "$texts/notes-"
write_texts() {  # NAME N_VOCABS
  local k=0
  for f in "$texts"/*; do
    local v=$((k % $2))
    { printf "\\x$(printf %02x $v)"; cat "$f"; } > "$seeds/$1/$(basename "$f")"
    k=$((k + 1))
  done
}
write_texts fuzz-tokenizer-bpe 6
write_texts fuzz-tokenizer-spm 2
rm -rf "$texts"

# Chat templates: the real ones the tests render.
cp tests/runtime/chat/templates/*.jinja "$seeds/fuzz-jinja/"
printf '%s' "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] | trim + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}" \
  > "$seeds/fuzz-jinja/chatml.jinja"
printf '%s' "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ f(5) }}{% for i in range(3) %}{{ loop.index }}{% endfor %}{{ tools | tojson }}" \
  > "$seeds/fuzz-jinja/macros.jinja"

# Grammars, each followed by a NUL and a sentence (or a near miss) to match.
k=0
for g in tests/runtime/sampling/grammars/*.gbnf; do
  for s in '{"a": [1, -2.5e3, "x\u00e9"], "b": null}' '(1+2)*3-4/5' '- one
- two
' '1. e4 e5 2. Nf3 Nc6' '{"a": tru'; do
    { cat "$g"; printf '\0%s' "$s"; } > "$seeds/fuzz-grammar/$(basename "$g" .gbnf)-$k"
    k=$((k + 1))
  done
done

# JSON Schemas: the ones the schema tests compile.
cp tests/runtime/sampling/schemas/* "$seeds/fuzz-json-schema/" 2>/dev/null || true
printf '%s' '{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"enum": ["x", 1, null]}, "maxItems": 3}}, "required": ["a"]}' \
  > "$seeds/fuzz-json-schema/inline.json"

# Server request bodies (first byte: 0 the tiny Llama with a ChatML template, 1 GPT-2).
k=0
while IFS= read -r body; do
  for m in 0 1; do printf "\\x0$m%s" "$body" > "$seeds/fuzz-server-request/body-$k-$m.json"; done
  k=$((k + 1))
done <<'BODIES'
{"prompt": "Hello", "max_tokens": 8, "temperature": 0.5, "top_p": 0.9, "top_k": 40, "seed": 1, "stop": ["\n", "."]}
{"prompt": ["MEDICATIONS:"], "stream": true, "stream_options": {"include_usage": true}, "n": 1, "min_p": 0.1}
{"model": "tiny-llama-bpe-q8_0", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_completion_tokens": 16}
{"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}, {"role": "assistant", "content": null}, {"role": "developer", "content": "x"}], "presence_penalty": 0.5, "frequency_penalty": -0.5, "repeat_penalty": 1.1}
{"text": "Patient reports", "session": "s1", "n": 3, "max_words": 2, "min_p": 0.02, "beam": 8, "blocklist": ["pain", "fever"]}
{"prompt": "x", "max_tokens": 100000, "logprobs": 1, "echo": false}
BODIES
n_seeds=$(find "$seeds" -type f | wc -l)
rm -rf "$final"
mv "$seeds" "$final"
echo "fuzz-seeds: $n_seeds seeds in $final"
