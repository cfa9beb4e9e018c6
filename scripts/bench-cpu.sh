#!/usr/bin/env bash
# Compares the CPU backend's GEMM and einsum contractions with NumPy on this machine.
# Prints a Markdown table: TL time, NumPy time, and NumPy/TL (>= 1 means TL is faster).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import numpy' 2>/dev/null; then
    python3 -m pip install --quiet numpy || python3 -m pip install --quiet --break-system-packages numpy
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo run --quiet --release -p tl-backend --example bench_cpu > "$tmp/tl.jsonl"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 scripts/bench_numpy.py > "$tmp/np.jsonl"

python3 - "$tmp/tl.jsonl" "$tmp/np.jsonl" <<'PY'
import json, sys
tl = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
np_ = {r["case"]: r["median_s"] for r in (json.loads(l) for l in open(sys.argv[2]) if l.strip())}
print("| case | TL (ms) | NumPy (ms) | NumPy/TL |")
print("|---|---:|---:|---:|")
for r in tl:
    t, n = r["median_s"], np_.get(r["case"])
    ratio = f"{n / t:.2f}" if n else "n/a"
    ns = f"{n * 1e3:.3f}" if n else "n/a"
    print(f"| {r['case']} | {t * 1e3:.3f} | {ns} | {ratio} |")
PY
