#!/usr/bin/env bash
# Per-kernel hardware counters of one TL program on the GPU machine, through Nsight Compute:
# duration, DRAM and SM throughput (% of peak), grid, block and registers of every kernel
# of one evaluation, in launch order, as CSV on stdout. Builds nothing (uses .gpu/tl).
# Usage: gpu-ncu.sh PROGRAM.tl [tl bench options, e.g. --dtype bf16]
set -uo pipefail
cd "$(dirname "$0")/.."
prog=$1; shift
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || true)
[ -n "$ncu" ] || { echo "ncu not found"; exit 1; }
"$ncu" --clock-control none --csv --print-units base \
  --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,sm__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__block_size,launch__registers_per_thread \
  .gpu/tl bench --device cuda --warmup 0 --runs 1 "$@" "$prog" 2>/dev/null \
  | python3 -c '
import csv, sys
rows = [r for r in csv.reader(l for l in sys.stdin if l.startswith("\""))]
head, body = rows[0], rows[1:]
ix = {h: i for i, h in enumerate(head)}
kern = {}
for r in body:
    k = (r[ix["ID"]], r[ix["Kernel Name"]])
    kern.setdefault(k, {})[r[ix["Metric Name"]]] = r[ix["Metric Value"]]
print("id,kernel,us,dram_pct,sm_pct,grid,block,regs")
for (i, name), m in kern.items():
    g = lambda k: m.get(k, "")
    us = float(g("gpu__time_duration.sum").replace(",", "") or 0) / 1000
    cols = [i, name[:60].replace(",", ";"), "%.1f" % us] + [g(k).replace(",", "") for k in ("dram__throughput.avg.pct_of_peak_sustained_elapsed", "sm__throughput.avg.pct_of_peak_sustained_elapsed", "launch__grid_size", "launch__block_size", "launch__registers_per_thread")]
    print(",".join(cols))
'
