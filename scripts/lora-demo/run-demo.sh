#!/bin/sh
# The LoRA demonstration of docs/performance.md ("LoRA demonstration"): trains a rank-8 adapter for the demo model on
# synthetic clinic letters (a note style the model never saw), converts it with `xent convert --lora`,
# and prints held-out perplexity of both styles with and without it, and one greedy completion.
#
#   scripts/lora-demo/run-demo.sh [WORK_DIR] [STEPS]
#
# Needs a built xent (build/apps/xent) and the Debian packages python3-torch and python3-numpy
# (apt-get install python3-torch). Training took 45 minutes on a busy 2-core machine. Nothing here goes into the repo:
# the corpora, the PEFT folder and the GGUF adapter stay in WORK_DIR (default /tmp/xent-lora-demo).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=$(cd "$repo/../shared" && pwd)
work=${1:-/tmp/xent-lora-demo}
steps=${2:-300}
xent="$repo/build/apps/xent"
model="$shared/models/clinical-gpt2-q8_0.gguf"
notes="$shared/data/clinical-notes-sample.txt"
mkdir -p "$work"
cd "$work"
python3 "$here/make-letters.py" 1 600 > letters-train.txt     # training letters (seed 1)
python3 "$here/make-letters.py" 2 60 > letters-heldout.txt    # held-out letters (seed 2), never trained on
"$xent" tokenize -m "$model" -f letters-train.txt --no-bos --ids > letters-train.ids
/usr/bin/python3 "$here/train-lora.py" --model "$model" --tokens letters-train.ids --out peft-letters \
  --steps "$steps" --rank 8 --alpha 16 --window 128 --threads 2
"$xent" convert --lora peft-letters --base "$model" -o letters-lora.gguf
ppl() {  # FILE [adapter args]: the perplexity line of xent perplexity
  f=$1; shift
  "$xent" perplexity -m "$model" -f "$f" -t 2 "$@" 2>&1 | sed -n 's/^Final estimate: //p'
}
echo "held-out perplexity (windows of the model's 256-token context):"
for style in letters-heldout.txt "$notes"; do
  echo "  $(basename "$style"): base: $(ppl "$style")"
  echo "  $(basename "$style"): base + adapter: $(ppl "$style" --lora letters-lora.gguf)"
done
prompt="Dear Dr. Haddad,

Thank you for referring"
echo "greedy completion of a letter's opening, base model:"
"$xent" run -m "$model" -p "$prompt" -n 48 --temp 0 2>/dev/null
echo
echo "the same, base + adapter:"
"$xent" run -m "$model" -p "$prompt" -n 48 --temp 0 --lora letters-lora.gguf 2>/dev/null
echo
