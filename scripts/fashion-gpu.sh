#!/usr/bin/env bash
# Fashion-MNIST on the GPU, from the repo root on the GPU machine, with the release `tl` in
# .gpu/tl and the data in examples/fashion_mnist/data (examples/fashion_mnist/fetch.sh, run
# where apt-get works; the bundle carries it). Builds nothing. In one call, on the same data:
#   1. the time of one training step (batch 128): `tl bench` (median after warm-up) and
#      scripts/fashion_torch.py in PyTorch eager, torch.compile and "reduce-overhead" modes
#      (same model, same initial weights, same batches), each for DTYPES (default "f32 bf16");
#   2. the whole training (10 epochs) and the test accuracy, TL and PyTorch eager, f32.
# Set EPOCHS to train for fewer epochs, STEPS for the number of timed PyTorch steps.
set -uo pipefail
cd "$(dirname "$0")/.."
tl=.gpu/tl
[ -x "$tl" ] || { echo "no .gpu/tl binary"; exit 1; }
data=examples/fashion_mnist/data
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "no data in $data (examples/fashion_mnist/fetch.sh)"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
date -u +"%Y-%m-%d %H:%M UTC"
epochs=${EPOCHS:-10}
steps=${STEPS:-200}
prog=examples/fashion_mnist/cnn.tl
short=$(mktemp --suffix=.tl -p examples/fashion_mnist)
trap 'rm -f "$short"' EXIT
sed -e "s/for 10 epochs/for $epochs epochs/" "$prog" > "$short"
echo "== one training step (ms, median)"
for dt in ${DTYPES:-f32 bf16}; do
  printf "TL %s " "$dt"; "$tl" bench --device cuda --dtype "$dt" --warmup 20 --runs 100 --json "$prog" | tail -1
  for mode in eager compile reduce-overhead; do
    printf "PyTorch %s %s " "$mode" "$dt"
    python3 scripts/fashion_torch.py "$data" --mode "$mode" --dtype "$dt" --epochs 1 --steps "$steps" 2>/dev/null | tail -1
  done
done
echo "== training for $epochs epochs, then the test accuracy"
start=$SECONDS; "$tl" run --device cuda --json "$short" | tail -2; echo "TL wall $((SECONDS - start)) s"
start=$SECONDS; python3 scripts/fashion_torch.py "$data" --epochs "$epochs" 2>/dev/null | tail -2
echo "PyTorch eager wall $((SECONDS - start)) s"
