#!/usr/bin/env bash
# Goal-directed evaluation against full evaluation: the towns one source reaches in a random
# digraph of 10^5 nodes and 1.2·10^5 edges, whole process each (`tl run --json`: reading the
# CSV, checking, planning, evaluating, printing the count).
#
#   goal-directed  tl run --json prog.tl                      (the default: the demand rewrite)
#   full           tl run --json --goal-directed off prog.tl  (the whole closure, then the row)
#
# prog.tl asks `R(y) <- Reach(2, y)` and prints the count of R; node 2 lies in the graph's large
# strongly connected part (it reaches 32,320 nodes), so the full closure has about 10^9 pairs.
# Prints the median wall seconds (GNU time's %e) and the largest peak RSS of RUNS runs after one
# warm-up (FULL_RUNS for the full form, which takes tens of seconds and about 12 GB), checks
# that both forms print the same count and that it equals a breadth-first search's.
#
# Usage: scripts/bench-goal.sh            (builds the release binary first)
# Environment: RUNS=5, FULL_RUNS=3, OUT_DIR=target/goal-bench, NO_BUILD=0
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
FULL_RUNS=${FULL_RUNS:-3}
OUT_DIR=${OUT_DIR:-target/goal-bench}
if [ "${NO_BUILD:-0}" != 1 ]; then
    cargo build --release -q -p tl
fi
mkdir -p "$OUT_DIR"
tl="$OUT_DIR/tl"
cp target/release/tl "$tl"
python3 - "$OUT_DIR" <<'PY'
import sys
from collections import defaultdict, deque
out = sys.argv[1]
import random
r = random.Random(1)
n, m = 100000, 120000
edges = set()
while len(edges) < m:
    a, b = r.randrange(n), r.randrange(n)
    if a != b:
        edges.add((a, b))
with open(f"{out}/edges.csv", "w") as f:
    f.writelines(f"{a},{b}\n" for a, b in sorted(edges))
adj = defaultdict(list)
for a, b in edges:
    adj[a].append(b)
seen, queue = set(adj[2]), deque(adj[2])
while queue:
    for w in adj[queue.popleft()]:
        if w not in seen:
            seen.add(w)
            queue.append(w)
with open(f"{out}/bfs_count", "w") as f:
    f.write(f"{len(seen)}\n")
PY
cat > "$OUT_DIR/prog.tl" <<'TL'
Edge = "edges.csv"
Reach(x, y) <- Edge(x, y)
Reach(x, z) <- Reach(x, y), Edge(y, z)
R(y) <- Reach(2, y)
N = R(y)
N?
TL
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# time_runs RUNS ARGS…: one warm-up, then RUNS timed runs; prints "median_s max_rss_mb answer".
time_runs() {
    local runs=$1 times="" rss=0 answer
    shift
    answer=$("$tl" run --json "$@")
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%e %M' -o "$OUT_DIR/time" "$tl" run --json "$@" > "$OUT_DIR/answer"
        answer=$(cat "$OUT_DIR/answer")
        read -r s kb < "$OUT_DIR/time"
        times+="$s"$'\n'
        rss=$(( kb / 1024 > rss ? kb / 1024 : rss ))
    done
    echo "$(printf '%s' "$times" | median) $rss $answer"
}
read -r goal_s goal_mb goal_answer < <(time_runs "$RUNS" "$OUT_DIR/prog.tl")
read -r full_s full_mb full_answer < <(time_runs "$FULL_RUNS" --goal-directed off "$OUT_DIR/prog.tl")
expected="{\"query\":\"N\",\"shape\":[],\"data\":[$(cat "$OUT_DIR/bfs_count")]}"
echo "goal-directed: median ${goal_s} s of $RUNS runs, ${goal_mb} MB, $goal_answer"
echo "full:          median ${full_s} s of $FULL_RUNS runs, ${full_mb} MB, $full_answer"
awk -v g="$goal_s" -v f="$full_s" 'BEGIN { printf "speed-up: %.0fx\n", f / (g > 0 ? g : 0.01) }'
if [ "$goal_answer" = "$full_answer" ] && [ "$goal_answer" = "$expected" ]; then
    echo "answers agree with each other and with breadth-first search"
else
    echo "ANSWERS DIFFER (expected $expected)" >&2
    exit 1
fi
