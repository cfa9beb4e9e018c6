#!/usr/bin/env bash
# Elementwise functions on the CPU: TL against NumPy and PyTorch on the same 2^22 f32 values,
# in one run, and softmax and layer norm along rows of 1024 of them (PyTorch only). TL's time is `tl bench` of `Y[i] = f(X[i])` (median of 21 after 3 warm-up, the
# whole evaluation: reading the input, the function, a fresh result), NumPy's and PyTorch's the
# median of 21 calls after 3 (a fresh result each). Needs a release `tl` (TL=path, default
# target/release/tl) and PYTHON (default python3) with numpy and torch.
# Usage: scripts/cpu-functions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tl=${TL:-target/release/tl}
py=${PYTHON:-python3}
threads=${THREADS:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RAYON_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
"$py" -c "import numpy as np; v = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32); np.save('$work/v.npy', v); np.save('$work/v2.npy', v.reshape(4096, 1024))"
echo "| function | TL (ms) | NumPy (ms) | PyTorch (ms) |"
echo "|---|---:|---:|---:|"
for f in add exp tanh sig gelu softmax lnorm; do
  # softmax and layer norm along rows of 1024 (the same 2^22 values as 4096 x 1024).
  case $f in
    add) eq="Y[i] = X[i] + 1";;
    softmax|lnorm) eq="Y[r, j.] = $f(X2[r, j])";;
    *) eq="Y[i] = $f(X[i])";;
  esac
  printf 'X = "%s/v.npy"\nX2 = "%s/v2.npy"\n%s\n' "$work" "$work" "$eq" > "$work/$f.tl"
  ms=$("$tl" bench --device cpu --warmup 3 --runs 21 --json "$work/$f.tl" | tail -1 |
    "$py" -c "import json, sys; print(round(json.loads(sys.stdin.read())['median_ms'], 2))")
  peers=$("$py" - "$work/v.npy" "$f" "$threads" <<'PY'
import sys, time
import numpy as np, torch
x = np.load(sys.argv[1]); t = torch.from_numpy(x); f = sys.argv[2]
torch.set_num_threads(int(sys.argv[3]))
rows = lambda a: a.reshape(-1, 1024)
np_f = {"add": lambda a: a + 1, "exp": np.exp, "tanh": np.tanh,
        "sig": lambda a: 1 / (1 + np.exp(-a)), "gelu": None, "softmax": None, "lnorm": None}[f]
th_f = {"add": lambda a: a + 1, "exp": torch.exp, "tanh": torch.tanh,
        "sig": torch.sigmoid, "gelu": torch.nn.functional.gelu,
        "softmax": lambda a: torch.softmax(rows(a), -1),
        "lnorm": lambda a: torch.nn.functional.layer_norm(rows(a), (1024,))}[f]
def med(fn, a):
    for _ in range(3): fn(a)
    ts = []
    for _ in range(21):
        s = time.perf_counter(); fn(a); ts.append(time.perf_counter() - s)
    return round(sorted(ts)[10] * 1e3, 2)
print(med(np_f, x) if np_f else "—", med(th_f, t))
PY
)
  set -- $peers
  echo "| $f | $ms | $1 | $2 |"
done
