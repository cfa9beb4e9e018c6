#!/usr/bin/env bash
# Writes MiniLM's throughput input into examples/minilm/: NAME_sentences.txt (256 sentences of
# 160 random words from sentences.txt, seed 0, so at least 128 tokens each) and NAME.tl
# (minilm.tl reading them cut to exactly 128 tokens, no query). The same input on every side
# of a comparison. Usage: write_minilm_bench.sh NAME (e.g. .bench)
set -euo pipefail
cd "$(dirname "$0")/../examples/minilm"
name=$1
python3 - sentences.txt "${name}_sentences.txt" <<'PY'
import random, sys
words = open(sys.argv[1], encoding="utf-8").read().split()
rng = random.Random(0)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for _ in range(256):
        f.write(" ".join(rng.choice(words) for _ in range(160)) + "\n")
PY
sed -e "s|^Tok(s, p, t) = .*|Tok(s, p, t) = \"${name}_sentences.txt\" tokenized by \"model/tokenizer.json\" length 128|" \
    -e '/^Emb?$/d' minilm.tl > "$name.tl"
