#!/usr/bin/env bash
# Fusion and launch benchmarks, from the repo root on the GPU machine, with the release `tl`
# carried in .gpu/tl. Builds nothing. Every workload is run by TL (`tl bench`, fp16) and by
# PyTorch (scripts/bench_fusion_torch.py, fp16, eager and torch.compile) in this same call, on
# the same data, each timed as the median host time of one run (device synchronised) after
# warm-up. Prints one Markdown table per workload:
#   1. relu(X W + b + R) and gelu(X) W + b, n×n operands, n = 128 … 4096;
#   2. one Adam training step of a 3-layer MLP (width→width→width→width, MSE loss), in bf16 on
#      both sides (fp16 weights and Adam state overflow at the largest size);
#   3. transitive closure of a random graph (out-degree 2) as a recursive rule.
# Sizes can be narrowed with FUSED_SIZES, MLP_SHAPES ("64x128 …") and CLOSURE_SIZES.
# TL_BEFORE=path/to/an/earlier/tl adds that binary's timings (same inputs, same call) as a
# "TL before" column, for before/after comparisons of a change; TL_ONLY=1 then leaves PyTorch out
# (its columns read "—"), for a before/after run where device time is short.
set -uo pipefail
cd "$(dirname "$0")/.."
export FUSED_SIZES="${FUSED_SIZES-128 256 512 1024 2048 4096}"
export MLP_SHAPES="${MLP_SHAPES-64x128 256x512 1024x1024 4096x4096}"
export CLOSURE_SIZES="${CLOSURE_SIZES-1024 4096 8192}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tl=.gpu/tl
[ -x "$tl" ] || { echo "no .gpu/tl binary"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
date -u +"%Y-%m-%d %H:%M UTC"

python3 - "$work" <<'PY'
import os, sys
import numpy as np
work = sys.argv[1]
rng = np.random.default_rng(7)
for n in map(int, os.environ["CLOSURE_SIZES"].split()):
    src = np.repeat(np.arange(n), 2)
    dst = rng.integers(0, n, size=2 * n)
    edges = np.stack([src, dst], axis=1)
    np.save(f"{work}/edges_{n}.npy", edges)
    with open(f"{work}/edges_{n}.csv", "w") as f:
        f.writelines(f"v{a},v{b}\n" for a, b in edges)
PY

tl_runs() {
local tl=$1
tlb() { "$tl" bench --device cuda --dtype f16 --json "$@"; }
for n in $FUSED_SIZES; do
  cat > "$work/relu_$n.tl" <<TL
param X[$n, $n] ~ normal(0, 1)
param W[$n, $n] ~ normal(0, 0.03)
param B[$n] ~ normal(0, 1)
param R[$n, $n] ~ normal(0, 1)
Y[i, j] = relu(X[i, k] W[k, j] + B[j] + R[i, j])
TL
  cat > "$work/gelu_$n.tl" <<TL
param X[$n, $n] ~ normal(0, 1)
param W[$n, $n] ~ normal(0, 0.03)
param B[$n] ~ normal(0, 1)
Y[i, j] = gelu(X[i, k]) W[k, j] + B[j]
TL
  tlb "$work/relu_$n.tl" | sed "s/^{/{\"case\": \"relu(XW+b+R)\", \"n\": $n, /"
  tlb "$work/gelu_$n.tl" | sed "s/^{/{\"case\": \"gelu(X)W+b\", \"n\": $n, /"
done
for s in $MLP_SHAPES; do
  b=${s%x*}; w=${s#*x}
  bash scripts/write_mlp.sh "$work" "$b" "$w"
  "$tl" bench --device cuda --dtype bf16 --json --warmup 20 --runs 100 "$work/mlp_$s.tl" | sed "s/^{/{\"case\": \"mlp adam step\", \"shape\": [$b, $w], /"
done
for n in $CLOSURE_SIZES; do
  cat > "$work/closure_$n.tl" <<TL
Edge = "edges_$n.csv"
Reach(x, y) <- Edge(x, y)
Reach(x, z) <- Reach(x, y), Edge(y, z)
TL
  tlb --warmup 2 --runs 5 "$work/closure_$n.tl" | sed "s/^{/{\"case\": \"closure\", \"n\": $n, /"
done
}
tl_runs "$tl" > "$work/tl.jsonl" 2> "$work/tl.err"
cat "$work/tl.err" | sort | uniq -c | head -20
: > "$work/before.jsonl"
if [ -n "${TL_BEFORE:-}" ]; then
  tl_runs "$TL_BEFORE" > "$work/before.jsonl" 2> "$work/before.err"
  cat "$work/before.err" | sort | uniq -c | head -20
fi
if [ -n "${TL_ONLY:-}" ]; then
  : > "$work/torch.jsonl"
else
  python3 scripts/bench_fusion_torch.py "$work" > "$work/torch.jsonl" 2> "$work/torch.err" || tail -20 "$work/torch.err"
fi

python3 - "$work/tl.jsonl" "$work/torch.jsonl" "$work/before.jsonl" <<'PY'
import json, sys
def rows(p):
    out = []
    for l in open(p):
        l = l.strip()
        if l.startswith("{"):
            out.append(json.loads(l))
    return out
tl, pt, before = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
key = lambda r: (r["case"], str(r.get("n", r.get("shape"))))
tlm = {key(r): r["median_ms"] for r in tl}
bm = {key(r): r["median_ms"] for r in before}
ptm = {}
for r in pt:
    ptm.setdefault(key(r), {})[r["mode"]] = r["median_ms"]
cases = []
for r in tl + pt:
    if r["case"] not in cases:
        cases.append(r["case"])
for c in cases:
    dt = "bf16" if c.startswith("mlp") else "fp16"
    print(f"\n### {c} ({dt}, ms per run, median)\n")
    extra = " TL before | before/TL |" if bm else ""
    print("| size | TL | PyTorch eager | torch.compile | eager/TL | compile/TL |" + extra)
    print("|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if bm else ""))
    sizes = []
    for r in tl + pt:
        k = key(r)
        if k[0] == c and k not in sizes:
            sizes.append(k)
    for k in sizes:
        t = tlm.get(k); e = ptm.get(k, {}).get("eager"); m = ptm.get(k, {}).get("compile")
        f = lambda x: "—" if x is None else f"{x:.4f}"
        q = lambda a, b: "—" if a is None or b is None else f"{a / b:.2f}"
        b = bm.get(k)
        cols = f" {f(b)} | {q(b, t)} |" if bm else ""
        print(f"| {k[1]} | {f(t)} | {f(e)} | {f(m)} | {q(e, t)} | {q(m, t)} |" + cols)
PY
