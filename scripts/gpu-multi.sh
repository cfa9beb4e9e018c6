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
# 3. Throughput: one longer run per model and GPU count; samples/s = batch x steps / seconds
#    between step 10 and the last, from the `seconds` column of the `--log` CSV, and
#    `--comm-stats` (gradient bytes all-reduced per rank, and NCCL's bus bandwidth over the
#    time the collectives took on their stream). Prints a Markdown table.
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
# One run per model and GPU count; samples/s from the log's clock over the steps after the
# first 10 (start-up, NCCL set-up and the first steps' compilation are left out).
echo "| model | global batch | GPUs | steps timed | samples/s | speed-up | efficiency | all-reduce per step | bus bandwidth |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for spec in "mlp_dp 8192 110" "transformer_dp 256 410"; do
  set -- $spec; name=$1; batch=$2; steps=$3
  f=$(prog "$name" "$steps" "$batch")
  base=""
  for n in "${counts[@]}"; do
    run "$n" "$f" "$tmp/t.csv" --comm-stats 2>"$tmp/err_t" || { status=1; tail -5 "$tmp/err_t"; }
    python3 - "$name" "$batch" "$n" "$tmp/t.csv" "$tmp/err_t" "${base:-0}" 2>"$tmp/rate" <<'PY'
import csv, re, sys
name, batch, n, log, err = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = list(csv.DictReader(open(log)))
first, last = rows[9], rows[-1]
steps = int(last["step"]) - int(first["step"])
rate = batch * steps / (float(last["seconds"]) - float(first["seconds"]))
base = float(sys.argv[6]) or rate
m = re.search(r"(\d+) buckets, ([\d.]+) GB in ([\d.]+) s .*?([\d.]+) GB/s bus", open(err).read())
per_step = f"{float(m.group(2)) * 1e3 / len(rows):.0f} MB" if m else "—"
bus = f"{m.group(4)} GB/s" if m else "—"
print(f"| {name} | {batch} | {n} | {steps} | {rate:.0f} | {rate / base:.2f} | {rate / base / n:.2f} | {per_step} | {bus} |")
print(rate, file=sys.stderr)
PY
    [ -z "$base" ] && base=$(cat "$tmp/rate")
    grep -h "all-reduce" "$tmp/err_t" | sed 's/^/    /' >&2
  done
done
exit $status
