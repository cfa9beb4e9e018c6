#!/usr/bin/env bash
# Elementwise functions on the CPU: TL against NumPy and PyTorch on the same 2^22 f32 values,
# in one run. TL's time is `tl bench` of `Y[i] = f(X[i])` (median of 21 after 3 warm-up, the
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
"$py" -c "import numpy as np; np.save('$work/v.npy', np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32))"
echo "| function | TL (ms) | NumPy (ms) | PyTorch (ms) |"
echo "|---|---:|---:|---:|"
for f in add exp tanh sig gelu; do
  case $f in add) body="X[i] + 1";; *) body="$f(X[i])";; esac
  printf 'X = "%s/v.npy"\nY[i] = %s\n' "$work" "$body" > "$work/$f.tl"
  ms=$("$tl" bench --device cpu --warmup 3 --runs 21 --json "$work/$f.tl" | tail -1 |
    "$py" -c "import json, sys; print(round(json.loads(sys.stdin.read())['median_ms'], 2))")
  peers=$("$py" - "$work/v.npy" "$f" "$threads" <<'PY'
import sys, time
import numpy as np, torch
x = np.load(sys.argv[1]); t = torch.from_numpy(x); f = sys.argv[2]
torch.set_num_threads(int(sys.argv[3]))
np_f = {"add": lambda a: a + 1, "exp": np.exp, "tanh": np.tanh,
        "sig": lambda a: 1 / (1 + np.exp(-a)), "gelu": None}[f]
th_f = {"add": lambda a: a + 1, "exp": torch.exp, "tanh": torch.tanh,
        "sig": torch.sigmoid, "gelu": torch.nn.functional.gelu}[f]
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
