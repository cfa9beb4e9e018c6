#!/usr/bin/env bash
# Compares the CPU backend's GEMM and einsum contractions with NumPy on this machine.
# Prints a Markdown table: TL time, NumPy time, and NumPy/TL (>= 1 means TL is faster).
#
# Each side reports the median of many runs per case; the two are run alternately ROUNDS
# times (default 3) and the best median of each side is kept, so a burst of unrelated load
# on the machine does not decide the comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-3}

if ! python3 -c 'import numpy' 2>/dev/null; then
    python3 -m pip install --quiet numpy || python3 -m pip install --quiet --break-system-packages numpy
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cargo build --quiet --release -p tl-backend --example bench_cpu
for r in $(seq "$rounds"); do
    cargo run --quiet --release -p tl-backend --example bench_cpu > "$tmp/tl.$r.jsonl" 2> "$tmp/tl.err"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 scripts/bench_numpy.py > "$tmp/np.$r.jsonl"
done

python3 - "$tmp" "$rounds" <<'PY'
import json, sys
d, rounds = sys.argv[1], int(sys.argv[2])
def best(side):
    order, out = [], {}
    for r in range(1, rounds + 1):
        for line in open(f"{d}/{side}.{r}.jsonl"):
            if not line.strip():
                continue
            rec = json.loads(line)
            c = rec["case"]
            if c not in out:
                order.append(c)
                out[c] = rec["median_s"]
            out[c] = min(out[c], rec["median_s"])
    return order, out
order, tl = best("tl")
_, np_ = best("np")
print("| case | TL (ms) | NumPy (ms) | NumPy/TL |")
print("|---|---:|---:|---:|")
for c in order:
    t, n = tl[c], np_.get(c)
    ratio = f"{n / t:.2f}" if n else "n/a"
    ns = f"{n * 1e3:.3f}" if n else "n/a"
    print(f"| {c} | {t * 1e3:.3f} | {ns} | {ratio} |")
PY
