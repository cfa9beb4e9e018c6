#!/usr/bin/env bash
# Data-parallel checks and timings on a machine with several GPUs, from the repo root, with the
# binaries carried in .gpu/ (or $BUNDLE/): tl, the release binary; tests/*, test executables. Builds
# nothing. Usage: bash scripts/gpu-multi.sh
#
# 1. `--gpus 1` against a plain GPU run: the JSON answers must be byte-identical
#    (examples/learning/spiral/spiral.tl), and the test executables (crates/tl/tests/parallel.rs
#    has the same check for `--device cuda --gpus 1`).
# 2. Loss curves: benches/mlp_dp.tl and benches/transformer_dp.tl, 20 steps at the same global
#    batch on 1 GPU and with `--gpus N` for N = 2, 4, 8 (as many as the machine has); prints the
#    largest relative difference of the per-step losses.
# 3. Throughput: the same programs at two run lengths (start-up cancels in the difference);
#    samples/s = batch x (extra steps) / (extra seconds), and `--comm-stats` of the longer run
#    (gradient bytes all-reduced per rank, and NCCL's bus bandwidth over the time the
#    collectives took on their stream). Prints a Markdown table.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=${BUNDLE:-.gpu}
tl=$PWD/$bundle/tl
status=0
export NCCL_NVLS_ENABLE=0

echo "== GPUs"
nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader
ngpu=$(nvidia-smi -L | wc -l)
nvidia-smi topo -m 2>/dev/null | head -n $((ngpu + 1))
python3 -c 'import torch; print("PyTorch", torch.__version__, "NCCL", ".".join(map(str, torch.cuda.nccl.version())))' 2>/dev/null \
  || echo "PyTorch not importable"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys, numpy as np
d = sys.argv[1]
r = np.random.default_rng(0)
np.save(f"{d}/dp_x.npy", r.standard_normal((32768, 1024), dtype=np.float32))
np.save(f"{d}/dp_t.npy", r.standard_normal((32768, 1024), dtype=np.float32))
np.save(f"{d}/tf_x.npy", r.standard_normal((4096, 64, 256), dtype=np.float32))
np.save(f"{d}/tf_t.npy", r.standard_normal((4096, 16), dtype=np.float32))
PY

echo "== 1. --gpus 1 is bit-identical to a plain run"
"$tl" run --device cuda --json examples/learning/spiral/spiral.tl > "$tmp/plain.jsonl" 2>/dev/null
"$tl" run --device cuda --gpus 1 --json examples/learning/spiral/spiral.tl > "$tmp/one.jsonl" 2>/dev/null
if [ -s "$tmp/plain.jsonl" ] && cmp -s "$tmp/plain.jsonl" "$tmp/one.jsonl"; then
  echo "identical: $(head -c 120 "$tmp/one.jsonl")"
else
  echo "DIFFERENT"; diff "$tmp/plain.jsonl" "$tmp/one.jsonl" | head; status=1
fi
for t in "$bundle"/tests/*; do
  [ -x "$t" ] || continue
  if "$t" --test-threads=1 > "$tmp/test.log" 2>&1; then echo "ok   $(basename "$t"): $(grep 'test result' "$tmp/test.log")"
  else echo "FAIL $(basename "$t")"; tail -30 "$tmp/test.log"; status=1; fi
done

# prog STEPS BATCH -> a program file in $tmp
prog() { sed "s/STEPS/$2/; s/BATCH/$3/" "benches/$1.tl" > "$tmp/$1_$2.tl"; echo "$tmp/$1_$2.tl"; }
# run N FILE LOG [extra args]: N = 1 is a plain run
run() {
  local n=$1 file=$2 log=$3; shift 3
  local par=(); [ "$n" -gt 1 ] && par=(--gpus "$n" --collective-timeout 60)
  timeout 150 "$tl" run --device cuda --quiet "${par[@]}" --log "$log" "$@" "$file"
}
counts=(1); for n in 2 4 8; do [ "$n" -le "$ngpu" ] && counts+=("$n"); done

echo "== 2. loss curves at the same global batch (20 steps)"
for spec in "mlp_dp 8192" "transformer_dp 256"; do
  set -- $spec; name=$1; batch=$2
  f=$(prog "$name" 20 "$batch")
  for n in "${counts[@]}"; do run "$n" "$f" "$tmp/${name}_curve_$n.csv" 2>"$tmp/err" || { status=1; tail -20 "$tmp/err"; }; done
  python3 - "$tmp" "$name" "${counts[@]}" <<'PY'
import csv, sys
d, name, counts = sys.argv[1], sys.argv[2], sys.argv[3:]
def losses(n):
    try:
        return [float(r["loss"]) for r in csv.DictReader(open(f"{d}/{name}_curve_{n}.csv"))]
    except OSError:
        return []
one = losses("1")
print(f"{name}: 1 GPU losses at steps 1, 10, 20: {one[0]:.6g}, {one[9]:.6g}, {one[-1]:.6g}" if len(one) == 20 else f"{name}: no 1-GPU curve")
for n in counts[1:]:
    c = losses(n)
    if len(c) != len(one) or not one:
        print(f"{name}: {n} GPUs: curve missing or of another length ({len(c)} steps)"); continue
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(c, one))
    print(f"{name}: {n} GPUs vs 1: largest relative loss difference over 20 steps {worst:.2e}; last loss {c[-1]:.6g}")
PY
done

echo "== 3. throughput"
echo "| model | global batch | GPUs | samples/s | speed-up | efficiency | all-reduce per step | bus bandwidth |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for spec in "mlp_dp 8192 10 50" "transformer_dp 256 10 60"; do
  set -- $spec; name=$1; batch=$2; s1=$3; s2=$4
  a=$(prog "$name" "$s1" "$batch"); b=$(prog "$name" "$s2" "$batch")
  base=""
  for n in "${counts[@]}"; do
    t0=$(date +%s.%N); run "$n" "$a" "$tmp/a.csv" 2>"$tmp/err_a" || { status=1; tail -5 "$tmp/err_a"; }
    t1=$(date +%s.%N); run "$n" "$b" "$tmp/b.csv" --comm-stats 2>"$tmp/err_b" || { status=1; tail -5 "$tmp/err_b"; }
    t2=$(date +%s.%N)
    python3 - "$name" "$batch" "$n" "$s1" "$s2" "$t0" "$t1" "$t2" "$tmp/err_b" "${base:-0}" 2>"$tmp/rate" <<'PY'
import re, sys
name, batch, n, s1, s2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t0, t1, t2 = map(float, sys.argv[6:9])
rate = batch * (s2 - s1) / ((t2 - t1) - (t1 - t0))
base = float(sys.argv[10]) or rate
m = re.search(r"(\d+) buckets, ([\d.]+) GB in ([\d.]+) s .*?([\d.]+) GB/s bus", open(sys.argv[9]).read())
per_step = f"{float(m.group(2)) * 1e3 / s2:.0f} MB" if m else "—"
bus = f"{m.group(4)} GB/s" if m else "—"
print(f"| {name} | {batch} | {n} | {rate:.0f} | {rate / base:.2f} | {rate / base / n:.2f} | {per_step} | {bus} |")
print(rate, file=sys.stderr)
PY
    [ -z "$base" ] && base=$(cat "$tmp/rate")
    grep -h "all-reduce" "$tmp/err_b" | sed 's/^/    /' >&2
  done
done
exit $status
