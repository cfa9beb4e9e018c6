#!/usr/bin/env bash
# Files at memory speed, on the CPU: (1) a 2048 x 2048 f32 product from two .npy files to a
# third, `tl run` end to end (the process included) against NumPy loading, multiplying and
# saving the same files in-process; (2) reading a 1 GiB .npy (summing its 2^28 f32 values, so
# every byte is read) against `cat` reading it from the page cache. Medians of RUNS (default
# 15) after a warm-up run each. Uses target/release/tl (built if missing) and PYTHON (default
# python3, with NumPy). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
runs=${RUNS:-15}
[ -x target/release/tl ] || cargo build --quiet --release -p tl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tl=$PWD/target/release/tl
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$py" - "$tmp" "$tl" "$runs" <<'PY'
import json, os, statistics, subprocess, sys, time
import numpy as np
tmp, tl, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.chdir(tmp)
r = np.random.default_rng(0)
np.save("a.npy", r.standard_normal((2048, 2048)).astype(np.float32))
np.save("b.npy", r.standard_normal((2048, 2048)).astype(np.float32))
np.save("big.npy", r.standard_normal(2**28, dtype=np.float32))
with open("mm.tl", "w") as f:
    f.write('A = "a.npy"\nB = "b.npy"\nC[i, k] = A[i, j] B[j, k]\n"c.npy" = C\n')
with open("sum.tl", "w") as f:
    f.write('X = "big.npy"\nS += X[i]\nS?\n')

def median(f):
    f()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)

def run(*cmd, out=subprocess.DEVNULL):
    subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.DEVNULL)

def numpy_product():
    np.save("c-np.npy", np.load("a.npy") @ np.load("b.npy"))

tl_mm = median(lambda: run(tl, "run", "mm.tl"))
np_mm = median(numpy_product)
c, ref = np.load("c.npy"), np.load("c-np.npy")
err = float(np.abs(c - ref).max() / np.abs(ref).max())
cat = median(lambda: run("cat", "big.npy"))
tl_sum = median(lambda: run(tl, "run", "sum.tl"))
s = json.loads(subprocess.run([tl, "run", "--json", "sum.tl"], capture_output=True, text=True).stdout)["data"][0]
ref_s = float(np.load("big.npy").astype(np.float64).sum())
print("| work | TL (ms) | peer (ms) | peer / TL |")
print("|---|---:|---:|---:|")
print(f"| 2048² product, file to file | {tl_mm:.1f} | {np_mm:.1f} (NumPy in-process) | {np_mm / tl_mm:.2f} |")
print(f"| read 1 GiB `.npy` (sum it) | {tl_sum:.1f} | {cat:.1f} (`cat` from the page cache) | {cat / tl_sum:.2f} |")
print(f"\nproduct: max |TL - NumPy| / max |NumPy| = {err:.1e}; sum: TL {s:.6g}, NumPy (f64) {ref_s:.6g}")
PY
