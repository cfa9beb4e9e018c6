#!/usr/bin/env bash
# GPU benchmarks, from the repo root on the GPU machine, with binaries carried in .gpu/
# (.gpu/bench_gemm_cuda: `cargo build --release -p tl-backend --example bench_gemm_cuda`, from
# target/release/examples/; .gpu/tl: the release `tl`). Builds nothing.
#
# 1. GEMM throughput: TL's CUDA backend (Backend::contract) and PyTorch's torch.matmul, run
#    one after the other in this same call, for n = 64 ... 8192 and f32, tf32, f16, bf16.
#    Prints a Markdown table: n | dtype | TL TFLOP/s | PyTorch TFLOP/s | TL/PyTorch.
#    (16-bit products accumulate in f32 and are stored 16-bit, as torch.matmul stores them.)
# 2. Allocator statistics of one training run: benches/mlp_gpu.tl with --memory-stats.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi not available"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

echo "== GEMM: TL contract vs torch.matmul"
if [ -x .gpu/bench_gemm_cuda ]; then
  .gpu/bench_gemm_cuda > "$tmp/tl.jsonl" 2> "$tmp/tl.err" || { status=1; cat "$tmp/tl.err"; }
  head -n 1 "$tmp/tl.err"
else
  echo "no .gpu/bench_gemm_cuda binary"; status=1
fi
if python3 -c 'import torch' 2>/dev/null; then
  python3 scripts/bench_gemm_torch.py > "$tmp/torch.jsonl" 2> "$tmp/torch.err" \
    || { status=1; cat "$tmp/torch.err"; }
  head -n 1 "$tmp/torch.err"
else
  echo "python3 cannot import torch: PyTorch column left empty"
fi
echo
python3 - "$tmp/tl.jsonl" "$tmp/torch.jsonl" <<'PY'
import json, os, sys

def load(path):
    out, order = {}, []
    if os.path.exists(path):
        for line in open(path):
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                key = (r["n"], r["dtype"])
                order.append(key)
                out[key] = r["tflops"]
    return order, out

tl_order, tl = load(sys.argv[1])
pt_order, pt = load(sys.argv[2])
keys = tl_order + [k for k in pt_order if k not in tl]
print("| n | dtype | TL TFLOP/s | PyTorch TFLOP/s | TL/PyTorch |")
print("|---:|:---|---:|---:|---:|")
fmt = lambda x: "—" if x is None else f"{x:.2f}"
for k in keys:
    a, b = tl.get(k), pt.get(k)
    ratio = f"{a / b:.2f}" if a is not None and b else "—"
    print(f"| {k[0]} | {k[1]} | {fmt(a)} | {fmt(b)} | {ratio} |")
PY

echo
echo "== allocator statistics: benches/mlp_gpu.tl"
if [ -x .gpu/tl ]; then
  .gpu/tl run --device cuda --memory-stats --quiet benches/mlp_gpu.tl || status=1
else
  echo "no .gpu/tl binary"; status=1
fi
exit $status
