#!/bin/sh
# Makes tests/runtime/tokenizer/peer/*.out: the token ids the peer gives for our test texts
# on vocabulary-only copies of shipped models with one thing changed (the pre-tokenizer
# type, or general.name and a few special tokens), as test-tokenizer derives them again.
#
#   scripts/peer/make-tokenizer-refs.sh PEER_DIR NEWER_PEER_DIR
#
# PEER_DIR: a llama.cpp checkout at c392e5094 built with
#   cmake -B build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF && cmake --build build --target llama-tokenize
# (deepseek-r1-qwen, tekken, Phi-3's special-token rule). NEWER_PEER_DIR: an ollama/ollama
# checkout at 9db4bdbad^ (llama.cpp ec98e2002 vendored), built with scripts/peer/newer-peer
# into $NEWER_PEER_BUILD (default $TMPDIR/xent-peer-refs/newer-peer): gpt-4o, which
# c392e5094 lacks. Every case the older peer makes is checked to come out the same from the newer.
# Deterministic; nothing here is part of xent's build or tests.
set -eu
peer=$(cd "$1" && pwd)
newer=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
work=${TMPDIR:-/tmp}/xent-peer-refs
newer_build=${NEWER_PEER_BUILD:-$work/newer-peer}
out="$repo/tests/runtime/tokenizer/peer"
mkdir -p "$work" "$out"

g++ -std=c++17 -O2 -o "$work/peer-tokenize" "$here/peer-tokenize.cpp" -I"$peer/include" -I"$peer/ggml/include" \
  -L"$peer/build/bin" -lllama -lggml -lggml-base -Wl,-rpath,"$peer/build/bin"
if [ ! -f "$newer_build/libpeerllama.so" ]; then
  cmake -S "$here/newer-peer" -B "$newer_build" -DPEER_SRC="$newer" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$newer_build" -j"$(nproc)"
fi
g++ -std=c++17 -O2 -o "$work/peer-tokenize-newer" "$here/peer-tokenize.cpp" -I"$newer/llama/llama.cpp/include" \
  -I"$newer/ml/backend/ggml/ggml/include" -L"$newer_build" -lpeerllama -Wl,-rpath,"$newer_build"

copy="python3 $here/gguf-vocab-copy.py"
qwen2="$shared/models/tiny-qwen2-f16.gguf"
# Each pre-tokenizer on the real vocabulary, and on one where every pair of printable ASCII
# characters (and tab, newline, CR, space) is a token merged first, so that a word boundary
# in a different place changes the ids.
for pre in deepseek-r1-qwen tekken gpt-4o; do
  $copy "$qwen2" "$work/qwen2-vocab-$pre.gguf" --set tokenizer.ggml.pre=$pre
  $copy "$qwen2" "$work/qwen2-pairs-$pre.gguf" --set tokenizer.ggml.pre=$pre --pair-merges
done
# Phi-3: the LLaMA SentencePiece vocabulary with its last ids turned into Phi-3's chat tokens,
# control and user-defined, and a general.name the reference's rule matches.
$copy "$shared/models/tiny-llama-spm-f16.gguf" "$work/phi3-vocab.gguf" --set general.name=Phi-3-mini-4k-instruct \
  --token '8187=<|endoftext|>:3' --token '8188=<|assistant|>:4' --token '8189=<|user|>:3' \
  --token '8190=<|end|>:3' --token '8191=<|system|>:4'

texts_vocab="$shared/reference/tokenizer/ggml-vocab-gpt-2.gguf.inp"
texts_stress="$repo/tests/runtime/tokenizer/peer-texts.inp"
texts_special="$repo/tests/runtime/tokenizer/peer-texts-special.inp"

# run TOOL MODEL TEXTS NAME [--parse-special]
run() {
  "$1" "$work/$2.gguf" "$3" ${5:-} > "$out/$4.out"
  echo "$4: $(wc -l < "$out/$4.out") texts, $(wc -w < "$out/$4.out") tokens"
}
# older PEER CASE: the older peer's ids, and the newer peer must give the same.
check_newer() {
  "$work/peer-tokenize-newer" "$work/$1.gguf" "$2" ${4:-} | cmp -s - "$out/$3.out" ||
    { echo "$3: the two peers differ" >&2; exit 1; }
}
for vocab in qwen2-vocab qwen2-pairs; do
  for set in vocab stress; do
    eval texts=\$texts_$set
    for pre in deepseek-r1-qwen tekken; do
      run "$work/peer-tokenize" "$vocab-$pre" "$texts" "$vocab-$pre--$set"
      check_newer "$vocab-$pre" "$texts" "$vocab-$pre--$set"
    done
    run "$work/peer-tokenize-newer" "$vocab-gpt-4o" "$texts" "$vocab-gpt-4o--$set"
  done
done
run "$work/peer-tokenize" phi3-vocab "$texts_special" phi3-vocab--special --parse-special
check_newer phi3-vocab "$texts_special" phi3-vocab--special --parse-special
run "$work/peer-tokenize" phi3-vocab "$texts_special" phi3-vocab--special-plain
check_newer phi3-vocab "$texts_special" phi3-vocab--special-plain
