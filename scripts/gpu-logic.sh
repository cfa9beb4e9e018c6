#!/usr/bin/env bash
# Logic benchmark on a GPU machine: TL on CUDA, TL on the CPU and ascent_par! on every core, on
# the workloads of scripts/bench-logic.sh (transitive closure and same generation), whole process
# each. Builds nothing and downloads nothing: it takes prebuilt binaries and pre-generated inputs.
#
# Prepare on a machine with Rust and network, from the repository root:
#   cargo build --release -p tl
#   cargo build --release --manifest-path scripts/ascent_peer/Cargo.toml \
#     --target-dir target/ascent-peer
#   GEN_ONLY=1 OUT_DIR=target/logic-bench/inputs scripts/bench-logic.sh   (real graphs included)
# and bring scripts/, the two binaries and the inputs folder to the GPU machine. There:
#   scripts/gpu-logic.sh                      everything
#   QUICK=1 RUNS=3 scripts/gpu-logic.sh       skip the heavy workloads
#
# For every workload it times, 1 warm-up + RUNS times each, under `/usr/bin/time -f '%e %M'` and
# `timeout $TIMEOUT`:
#   TL cuda      $TL run --json --device cuda prog.tl
#   TL cpu       $TL run --json --device cpu prog.tl
#   ascent_par!  $PEER tc|sg par edges.csv, RAYON_NUM_THREADS=$THREADS
# and prints a Markdown table (median wall seconds, largest peak RSS, i.e. host memory):
#   | workload | nodes | edges | tuples | TL cuda s | TL cpu s | ascent_par! s | ascent / TL cuda
#   | ascent / TL cpu | TL cuda MB | TL cpu MB | ascent MB | counts agree |
# (ratios > 1: TL faster; in parentheses: from bash's clock, where a time is under 0.1 s), also
# written to ${RESULTS%.jsonl}.md, with every process's record as a JSON line in $RESULTS. A
# count that differs between the three reads **NO** in the last column.
#
# Environment:
#   IN_DIR=target/logic-bench/inputs   the GEN_ONLY folder (manifest.jsonl + one folder each)
#   TL=target/release/tl   PEER=target/ascent-peer/release/ascent_peer
#   RUNS=5  QUICK=0  ONLY=a,b  TIMEOUT=600
#   THREADS=$(nproc)   rayon threads of ascent_par!
#   SYSTEMS="cuda cpu par"   which of the three to run
#   RESULTS=target/logic-bench/gpu-results.jsonl
#   MEM_LIMIT_MB=0   address-space cap per process (ulimit -v); off by default, since CUDA
#                    reserves far more address space than it uses
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/logic_bench_lib.sh

IN_DIR=${IN_DIR:-target/logic-bench/inputs}
TL=${TL:-target/release/tl}
PEER=${PEER:-target/ascent-peer/release/ascent_peer}
RUNS=${RUNS:-5}
QUICK=${QUICK:-0}
ONLY=${ONLY:-}
TIMEOUT=${TIMEOUT:-600}
THREADS=${THREADS:-$(nproc)}
SYSTEMS=${SYSTEMS:-cuda cpu par}
RESULTS=${RESULTS:-target/logic-bench/gpu-results.jsonl}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-0}

for b in "$TL" "$PEER"; do
  [ -x "$b" ] || { echo "gpu-logic.sh: no executable $b (this script builds nothing)" >&2; exit 1; }
done
[ -f "$IN_DIR/manifest.jsonl" ] || {
  echo "gpu-logic.sh: no $IN_DIR/manifest.jsonl; generate the inputs elsewhere with" >&2
  echo "  GEN_ONLY=1 OUT_DIR=$IN_DIR scripts/bench-logic.sh" >&2
  exit 1
}

gpu=$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | head -n 1 ||
  true)
echo "== GPU: ${gpu:-nvidia-smi not available}; CPU: $(machine_summary)" >&2

list_args=()
[ "$QUICK" = 1 ] && list_args+=(--quick)
[ -n "$ONLY" ] && list_args+=(--only "$ONLY")
workloads=$(python3 scripts/logic_graphs.py list "$IN_DIR" "${list_args[@]}")
[ -n "$workloads" ] || { echo "gpu-logic.sh: no workloads selected" >&2; exit 1; }

mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== $(echo "$workloads" | wc -l) workloads, $RUNS timed runs each (+1 warm-up)," \
  "timeout ${TIMEOUT} s, ascent_par! on $THREADS threads" >&2
while IFS=$'\t' read -r name program dir nodes edges; do
  echo "-- $name ($program, $nodes nodes, $edges edges)" >&2
  args=("$name" "$program" "$nodes" "$edges")
  for s in $SYSTEMS; do
    case $s in
      cuda) measure tl-cuda - "${args[@]}" -- "$TL" run --json --device cuda "$dir/prog.tl" ;;
      cpu)  measure tl-cpu - "${args[@]}" -- "$TL" run --json --device cpu "$dir/prog.tl" ;;
      par)  measure ascent-par "$THREADS" "${args[@]}" -- \
              env RAYON_NUM_THREADS="$THREADS" "$PEER" "$program" par "$dir/edges.csv" ;;
      *) echo "gpu-logic.sh: unknown system $s (cuda, cpu, par)" >&2; exit 1 ;;
    esac
  done
done <<< "$workloads"

table=${RESULTS%.jsonl}.md
ascent_version=$(awk '/^name = "ascent"$/ {getline; print $3}' scripts/ascent_peer/Cargo.lock \
  2>/dev/null | tr -d '"')
{
  echo "Logic benchmark (GPU machine): ${gpu:-no GPU found}; CPU $(machine_summary)"
  echo "\`tl run --json --device cuda|cpu\`, ascent ${ascent_version:-0.8}" \
    "(ascent_par! on $THREADS threads);"
  echo "median of $RUNS runs after 1 warm-up, whole process; MB = peak host RSS;"
  echo "ratios > 1: TL faster. Records: $RESULTS"
  echo
  python3 scripts/logic_report.py table "$RESULTS" --layout gpu
} > "$table"
echo
cat "$table"
echo
echo "records: $RESULTS   table: $table" >&2
