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
  bash scripts/write_mlp.sh "$work" "$b" "$w"
  show "MLP Adam step $s, bf16" "$tl" bench --device cuda --dtype bf16 --warmup 10 --runs 30 \
    --profile "$work/mlp_$s.tl" | tee "$out/profile-mlp-$s.txt"
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
  bash scripts/write_minilm_bench.sh .profile
  show "MiniLM 256 x 128, bf16" "$tl" bench --device cuda --dtype bf16 --warmup 3 --runs 10 \
    --profile "$here/.profile.tl" | tee "$out/profile-minilm.txt"
fi
