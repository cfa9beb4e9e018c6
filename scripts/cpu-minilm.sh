#!/usr/bin/env bash
# MiniLM (examples/minilm/minilm.tl, all-MiniLM-L6-v2) on the CPU against sentence-transformers
# on the same 18 sentences, same threads (THREADS, default 2), f32: TL's time is `tl bench` of
# the program (tokenising, the six layers, pooling and normalising; median of 15 after 3
# warm-up), sentence-transformers' the median of 15 `encode` calls after 3 (its tokeniser
# included), and the largest difference between the two embeddings. Needs
# examples/minilm/fetch.sh run first, a release `tl` (TL, default target/release/tl) and
# PYTHON (default python3) with sentence-transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
tl=${TL:-target/release/tl}
py=${PYTHON:-python3}
threads=${THREADS:-2}
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
[ -f examples/minilm/model/model.safetensors ] || { echo "run examples/minilm/fetch.sh first"; exit 1; }
tl_ms=$("$tl" bench --device cpu --warmup 3 --runs 15 --json examples/minilm/minilm.tl | tail -1 |
  "$py" -c "import json, sys; print(round(json.loads(sys.stdin.read())['median_ms'], 1))")
emb=$(mktemp --suffix=.json)
trap 'rm -f "$emb"' EXIT
"$tl" run --device cpu --json examples/minilm/minilm.tl > "$emb"
"$py" - "$threads" "$tl_ms" "$emb" <<'PY'
import json, statistics, sys, time
import numpy as np, torch
from sentence_transformers import SentenceTransformer
threads, tl_ms, emb = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
sentences = open("examples/minilm/sentences.txt").read().splitlines()
model = SentenceTransformer("examples/minilm/model", device="cpu")
for _ in range(3):
    model.encode(sentences)
ts = []
for _ in range(15):
    t = time.perf_counter()
    ref = model.encode(sentences)
    ts.append(time.perf_counter() - t)
st_ms = 1e3 * statistics.median(ts)
answers = [json.loads(l) for l in open(emb) if l.strip()]
ours = np.array(answers[-1]["data"], dtype=np.float64).reshape(ref.shape)
print("| work | TL (ms) | sentence-transformers (ms) | peer / TL |")
print("|---|---:|---:|---:|")
print(f"| MiniLM, {len(sentences)} sentences | {tl_ms:.1f} | {st_ms:.1f} | {st_ms / tl_ms:.2f} |")
print(f"\nlargest |TL - sentence-transformers| over the embeddings: {np.abs(ours - ref).max():.1e}")
PY
