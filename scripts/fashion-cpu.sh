#!/usr/bin/env bash
# The Fashion-MNIST CNN (examples/fashion_mnist/cnn.tl) on the CPU, TL against PyTorch eager on
# the same inputs: the program cut to the first N training and test images (default 512, by
# rewriting its data equations), one training step of 128 images timed by `tl bench` (median
# after warm-up) and by scripts/fashion_torch.py (median step after warm-up; same model, initial
# weights and batches), then a short training (EPOCHS, default 4) with the test accuracy of each.
# Needs examples/fashion_mnist/fetch.sh first, a release `tl` (TL=path, default
# target/release/tl) and PYTHON (default python3) with torch and numpy.
# Usage: scripts/fashion-cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tl=${TL:-target/release/tl}
py=${PYTHON:-python3}
n=${N:-512}
epochs=${EPOCHS:-4}
threads=${THREADS:-2}
data=$PWD/examples/fashion_mnist/data
prog=$(mktemp --suffix=.tl)
trap 'rm -f "$prog"' EXIT
sed -e "s|^X\[n, y, x\] = Img\[n, y, x\]|X[n: $n, y, x] = Img[n + 0, y, x]|" \
    -e "s|^Onehot\[n, k: 10\] = step(0.5 - abs(Lab\[n\] - k))|Onehot[n: $n, k: 10] = step(0.5 - abs(Lab[n + 0] - k))|" \
    -e "s|^TX\[m, y, x\] = TImg\[m, y, x\]|TX[m: $n, y, x] = TImg[m + 0, y, x]|" \
    -e "s|^TOnehot\[m, k: 10\] = step(0.5 - abs(TLab\[m\] - k))|TOnehot[m: $n, k: 10] = step(0.5 - abs(TLab[m + 0] - k))|" \
    -e "s|for 10 epochs|for $epochs epochs|" -e "s|\"data/|\"$data/|" \
    examples/fashion_mnist/cnn.tl > "$prog"
grep -q "Img\[n + 0" "$prog" || { echo "the program's data equations changed; update this script" >&2; exit 1; }
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "== one training step of 128 images ($threads threads)"
"$tl" bench --device cpu --warmup 2 --runs 7 "$prog" | tail -1
"$py" scripts/fashion_torch.py "$data" --device cpu --limit "$n" --epochs 3 --steps 12 2>/dev/null | tail -1
"$py" -c "import torch; print('torch threads', torch.get_num_threads())"
echo "== $epochs epochs on $n images, then the test accuracy on $n test images"
"$tl" run --device cpu "$prog" | tail -2
"$py" scripts/fashion_torch.py "$data" --device cpu --limit "$n" --epochs "$epochs" 2>/dev/null | tail -1
