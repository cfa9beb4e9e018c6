#!/usr/bin/env bash
# The character-level GPT (examples/gpt/gpt.tl) on the GPU, from the repo root on the GPU
# machine, with the release `tl` in .gpu/tl and the data in examples/gpt/data
# (examples/gpt/fetch.sh; the bundle carries it). Builds nothing. In one call, on the same data:
#   1. the time of one training step (batch 32): `tl bench` (median after warm-up) and
#      scripts/gpt_torch.py in PyTorch eager, torch.compile and "reduce-overhead" modes (same
#      model, same initial weights, same batches), each for DTYPES (default "f32 bf16");
#   2. the whole training (EPOCHS, default 10) and the loss over all windows after it, TL and
#      PyTorch eager, f32.
# Set STEPS for the number of timed PyTorch steps (default 100).
set -uo pipefail
cd "$(dirname "$0")/.."
tl=.gpu/tl
[ -x "$tl" ] || { echo "no .gpu/tl binary"; exit 1; }
data=examples/gpt/data/train.npy
[ -f "$data" ] || { echo "no $data (examples/gpt/fetch.sh)"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
date -u +"%Y-%m-%d %H:%M UTC"
epochs=${EPOCHS:-10}
steps=${STEPS:-100}
short=$(mktemp --suffix=.tl -p examples/gpt)
trap 'rm -f "$short"' EXIT
sed -e "s/for 10 epochs/for $epochs epochs/" examples/gpt/gpt.tl > "$short"
echo "== one training step (ms, median)"
for dt in ${DTYPES:-f32 bf16}; do
  printf "TL %s " "$dt"; "$tl" bench --device cuda --dtype "$dt" --warmup 20 --runs 100 --json examples/gpt/gpt.tl | tail -1
  for mode in eager compile reduce-overhead; do
    printf "PyTorch %s %s " "$mode" "$dt"
    python3 scripts/gpt_torch.py "$data" --device cuda --mode "$mode" --dtype "$dt" --epochs 1000 --steps "$steps" 2>/dev/null | tail -1
  done
done
echo "== $epochs epochs, f32"
start=$(date +%s%N)
"$tl" run --device cuda --log "${OUT:-/tmp}/gpt-log.csv" --plot "${OUT:-/tmp}/gpt-loss.png" "$short" | tail -2
echo "TL wall $(( ($(date +%s%N) - start) / 1000000 )) ms"
start=$(date +%s%N)
python3 scripts/gpt_torch.py "$data" --device cuda --epochs "$epochs" 2>/dev/null | tail -1
echo "PyTorch wall $(( ($(date +%s%N) - start) / 1000000 )) ms"
