#!/usr/bin/env bash
# Logic benchmark: TL against Ascent (the Rust Datalog crate) on transitive closure (TC) and
# same generation (SG), whole process each, on one machine in one run.
#
# For every workload (a graph and a program; see scripts/logic_graphs.py) it times three
# processes that each read the edge CSV, evaluate the program and print the tuple count:
#   TL           target/release/tl run --json $TL_FLAGS prog.tl   (its `N?` query: the count)
#   ascent!      target/ascent-peer/release/ascent_peer tc|sg seq edges.csv
#   ascent_par!  the same with `par`, on RAYON_NUM_THREADS=$PAR_THREADS rayon threads
# The binaries are copied aside first, so a rebuild during the run cannot swap them halfway.
# Each process runs 1 warm-up + RUNS times under `/usr/bin/time -f '%e %M'` and
# `timeout $TIMEOUT`; the table shows the median wall seconds of the timed runs and the largest
# peak RSS among them, and whether TL's count equals Ascent's (a mismatch reads **NO**). A timeout,
# an out-of-memory abort or a crash is recorded once and shown in place of the time.
#
# Prints a Markdown table
#   | workload | nodes | edges | tuples | TL s | ascent! s | ascent_par! s | best ascent / TL
#   | TL MB | ascent MB (of the faster) | counts agree |
# (best ascent / TL > 1: TL is faster; nodes: distinct ids on some edge; times are GNU time's %e,
# in 10 ms steps, so the smallest workloads mostly show process start-up; a ratio in parentheses
# comes from bash's clock around the processes, where a time is under 0.1 s), writes it to
# ${RESULTS%.jsonl}.md and every process's record as a JSON line to $RESULTS.
#
# Usage (from anywhere; it works in the repository root):
#   scripts/bench-logic.sh                              build, generate, run everything
#   QUICK=1 RUNS=3 scripts/bench-logic.sh               skip the heavy workloads
#   ONLY=tc-rand-1e4,sg-roget scripts/bench-logic.sh    just these (heavy or not)
#   GEN_ONLY=1 OUT_DIR=dir scripts/bench-logic.sh       only write inputs + programs into dir
#                                                       (self-contained, for scripts/gpu-logic.sh)
# Environment:
#   RUNS=5           timed runs per process, after one warm-up
#   QUICK=0          1: leave out workloads marked heavy
#   ONLY=            comma-separated workload names
#   TIMEOUT=600      seconds per process
#   MEM_LIMIT_MB=    address-space cap per process (ulimit -v), default half the RAM; 0: none.
#                    A process that hits it aborts on a failed allocation: recorded as oom.
#   RESULTS=target/logic-bench/results.jsonl
#   OUT_DIR=target/logic-bench/inputs   where inputs and programs are generated
#   GEN_ONLY=0       1: generate the inputs and stop (builds nothing)
#   NO_BUILD=0       1: use the binaries as they are
#   TL=target/release/tl   PEER=target/ascent-peer/release/ascent_peer
#   TL_FLAGS="--device cpu"   extra `tl run` flags
#   PAR_THREADS=2    rayon threads of ascent_par!
#   SYSTEMS="tl seq par"      which of the three to run
#   REAL=1           0: leave out the real graphs (networkx's example data)
#   NETWORKX=        an unpacked networkx source distribution; default: downloaded once with
#                    `pip download --no-binary :all: --no-deps networkx==$NETWORKX_VERSION`
#                    into target/logic-bench/networkx/
#   NETWORKX_VERSION=3.6.1
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/logic_bench_lib.sh

RUNS=${RUNS:-5}
QUICK=${QUICK:-0}
ONLY=${ONLY:-}
TIMEOUT=${TIMEOUT:-600}
MEM_LIMIT_MB=${MEM_LIMIT_MB:-$(awk '/MemTotal/ {print int($2 / 2048)}' /proc/meminfo)}
RESULTS=${RESULTS:-target/logic-bench/results.jsonl}
OUT_DIR=${OUT_DIR:-target/logic-bench/inputs}
GEN_ONLY=${GEN_ONLY:-0}
NO_BUILD=${NO_BUILD:-0}
TL=${TL:-target/release/tl}
PEER=${PEER:-target/ascent-peer/release/ascent_peer}
TL_FLAGS=${TL_FLAGS:---device cpu}
PAR_THREADS=${PAR_THREADS:-2}
SYSTEMS=${SYSTEMS:-tl seq par}
REAL=${REAL:-1}
NETWORKX=${NETWORKX:-}
NETWORKX_VERSION=${NETWORKX_VERSION:-3.6.1}

# --- Real graphs: networkx's source distribution ships its example data.
nx_args=()
if [ "$REAL" = 1 ]; then
  if [ -z "$NETWORKX" ]; then
    cache=target/logic-bench/networkx
    NETWORKX=$cache/networkx-$NETWORKX_VERSION
    if [ ! -d "$NETWORKX/examples" ]; then
      mkdir -p "$cache"
      echo "== downloading the networkx $NETWORKX_VERSION source distribution" >&2
      if python3 -m pip download -q --no-binary :all: --no-deps \
          "networkx==$NETWORKX_VERSION" -d "$cache" >&2 \
          && tar -xzf "$cache/networkx-$NETWORKX_VERSION.tar.gz" -C "$cache"; then
        :
      else
        echo "   (download failed: real graphs left out)" >&2
        NETWORKX=
      fi
    fi
  fi
  [ -n "$NETWORKX" ] && nx_args=(--networkx "$NETWORKX")
fi

# --- Inputs: regenerated each time (deterministic, a second or two).
echo "== generating inputs in $OUT_DIR" >&2
python3 scripts/logic_graphs.py gen "$OUT_DIR" "${nx_args[@]}"
if [ "$GEN_ONLY" = 1 ]; then
  echo "== inputs and programs written to $OUT_DIR (manifest.jsonl lists them)" >&2
  exit 0
fi

# --- Binaries.
if [ "$NO_BUILD" != 1 ]; then
  echo "== building tl and the Ascent peer" >&2
  cargo build --release -q -p tl
  cargo build --release -q --manifest-path scripts/ascent_peer/Cargo.toml \
    --target-dir target/ascent-peer
fi
for b in "$TL" "$PEER"; do
  [ -x "$b" ] || { echo "bench-logic.sh: no executable $b" >&2; exit 1; }
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Snapshots, so a rebuild during the run cannot change the binaries halfway.
tl_built=$(date -r "$TL" '+%Y-%m-%d %H:%M')
tl_tree=$(git describe --always --dirty 2>/dev/null || echo '?')
ascent_version=$(awk '/^name = "ascent"$/ {getline; print $3}' scripts/ascent_peer/Cargo.lock |
  tr -d '"')
cp "$TL" "$scratch/tl"
cp "$PEER" "$scratch/ascent_peer"
TL=$scratch/tl
PEER=$scratch/ascent_peer

list_args=()
[ "$QUICK" = 1 ] && list_args+=(--quick)
[ -n "$ONLY" ] && list_args+=(--only "$ONLY")
workloads=$(python3 scripts/logic_graphs.py list "$OUT_DIR" "${list_args[@]}")
[ -n "$workloads" ] || { echo "bench-logic.sh: no workloads selected" >&2; exit 1; }

mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
read -r -a tl_flags <<< "$TL_FLAGS"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== $(echo "$workloads" | wc -l) workloads, $RUNS timed runs each (+1 warm-up)," \
  "timeout ${TIMEOUT} s, address-space cap ${MEM_LIMIT_MB} MiB" >&2
while IFS=$'\t' read -r name program dir nodes edges; do
  echo "-- $name ($program, $nodes nodes, $edges edges)" >&2
  args=("$name" "$program" "$nodes" "$edges")
  for s in $SYSTEMS; do
    case $s in
      tl)  measure tl - "${args[@]}" -- "$TL" run --json "${tl_flags[@]}" "$dir/prog.tl" ;;
      seq) measure ascent-seq - "${args[@]}" -- "$PEER" "$program" seq "$dir/edges.csv" ;;
      par) measure ascent-par "$PAR_THREADS" "${args[@]}" -- \
             env RAYON_NUM_THREADS="$PAR_THREADS" "$PEER" "$program" par "$dir/edges.csv" ;;
      *) echo "bench-logic.sh: unknown system $s (tl, seq, par)" >&2; exit 1 ;;
    esac
  done
done <<< "$workloads"

table=${RESULTS%.jsonl}.md
{
  echo "Logic benchmark: $(machine_summary); tree at $tl_tree, tl built $tl_built"
  echo "\`tl run --json $TL_FLAGS\`, ascent $ascent_version (ascent_par! on $PAR_THREADS threads);"
  echo "median of $RUNS runs after 1 warm-up, whole process; MB = peak RSS;"
  echo "best ascent / TL > 1: TL faster. Load average at the start $load_start," \
    "at the end $(cut -d' ' -f1-3 /proc/loadavg). Records: $RESULTS"
  echo
  python3 scripts/logic_report.py table "$RESULTS" --layout cpu
} > "$table"
echo
cat "$table"
echo
echo "records: $RESULTS   table: $table" >&2
