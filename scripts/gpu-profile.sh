#!/usr/bin/env bash
# Where the GPU time goes: `tl bench --profile` (time per statement and per backend call, the
# device synchronised around each) on the workloads of the benchmark tables, from the repo root
# on the GPU machine. Builds nothing; needs .gpu/tl. Writes one profile per workload to
# ${OUT:-/tmp}/profile-*.txt and prints them.
#   PROFILE_MLP="64x128 4096x4096"  MLP training-step shapes (batch x width), bf16
#   PROFILE_GELU="4096"             gelu(X)W+b sizes, f16
#   PROFILE_MINILM=1                MiniLM, 256 sentences x 128 tokens, bf16 (needs the model)
set -uo pipefail
cd "$(dirname "$0")/.."
tl=.gpu/tl
out=${OUT:-/tmp}
work=$(mktemp -d)
trap 'rm -rf "$work" examples/minilm/.profile.tl examples/minilm/.profile_sentences.txt' EXIT
[ -x "$tl" ] || { echo "no .gpu/tl binary"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
date -u +"%Y-%m-%d %H:%M UTC"

show() {
  echo "== $1"
  shift
  "$@" > "$work/stdout" 2> "$work/stderr"
  cat "$work/stdout" "$work/stderr"
}

for s in ${PROFILE_MLP-64x128 4096x4096}; do
  b=${s%x*}; w=${s#*x}
  python3 - "$work" "$b" "$w" <<'PY'
import sys
import numpy as np
work, b, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
e = np.arange(b)[:, None]; i = np.arange(w)[None, :]
np.save(f"{work}/x.npy", np.sin(e * 0.37 + i * 0.11).astype(np.float32))
np.save(f"{work}/t.npy", np.sin(e * 0.37 + i * 0.11 + 0.5).astype(np.float32))
PY
  cat > "$work/mlp.tl" <<TL
X = "x.npy"
T = "t.npy"
param W1[$w, $w] ~ normal(0, 0.03)
param B1[$w] = 0
param W2[$w, $w] ~ normal(0, 0.03)
param B2[$w] = 0
param W3[$w, $w] ~ normal(0, 0.03)
param B3[$w] = 0
H1[e, h] = relu(W1[h, i] X[e, i] + B1[h])
H2[e, g] = relu(W2[g, h] H1[e, h] + B2[g])
Y[e, c] = W3[c, g] H2[e, g] + B3[c]
Loss avg= (Y[e, c] - T[e, c])^2
minimize Loss with adam(lr=0.001, eps=0.0001) for 1 steps
TL
  show "MLP Adam step $s, bf16" "$tl" bench --device cuda --dtype bf16 --warmup 10 --runs 30 \
    --profile "$work/mlp.tl" | tee "$out/profile-mlp-$s.txt"
done

for n in ${PROFILE_GELU-4096}; do
  cat > "$work/gelu.tl" <<TL
param X[$n, $n] ~ normal(0, 1)
param W[$n, $n] ~ normal(0, 0.03)
param B[$n] ~ normal(0, 1)
Y[i, j] = gelu(X[i, k]) W[k, j] + B[j]
TL
  show "gelu(X)W+b n=$n, f16" "$tl" bench --device cuda --dtype f16 --warmup 10 --runs 30 \
    --profile "$work/gelu.tl" | tee "$out/profile-gelu-$n.txt"
done

if [ "${PROFILE_MINILM-1}" = 1 ]; then
  here=examples/minilm
  if [ ! -f "$here/model/model.safetensors" ] && [ -f .gpu/minilm-model/model.safetensors ]; then
    rm -rf "$here/model" && ln -s ../../.gpu/minilm-model "$here/model"
  fi
  python3 - "$here/sentences.txt" "$here/.profile_sentences.txt" <<'PY'
import random, sys
words = open(sys.argv[1], encoding="utf-8").read().split()
rng = random.Random(0)
with open(sys.argv[2], "w", encoding="utf-8") as f:
    for _ in range(256):
        f.write(" ".join(rng.choice(words) for _ in range(160)) + "\n")
PY
  sed -e 's|^Tok(s, p, t) = .*|Tok(s, p, t) = ".profile_sentences.txt" tokenized by "model/tokenizer.json" length 128|' \
      -e '/^Emb?$/d' "$here/minilm.tl" > "$here/.profile.tl"
  show "MiniLM 256 x 128, bf16" "$tl" bench --device cuda --dtype bf16 --warmup 3 --runs 10 \
    --profile "$here/.profile.tl" | tee "$out/profile-minilm.txt"
fi
