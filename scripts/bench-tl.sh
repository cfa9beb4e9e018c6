#!/usr/bin/env bash
# End-to-end timings of `tl run`: the family example (median of 21 runs after 3 warm-ups) and the
# transitive closure of a random 10^4-node, 5·10^4-edge graph (median of 3 runs).
# Usage: scripts/bench-tl.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tl
tl=target/release/tl
python3 - <<'PY'
import random
random.seed(7)
edges = set()
while len(edges) < 50000:
    a, b = random.randrange(10000), random.randrange(10000)
    if a != b:
        edges.add((a, b))
with open("benches/closure_edges.csv", "w") as f:
    f.writelines(f"{a},{b}\n" for a, b in sorted(edges))
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
for _ in 1 2 3; do "$tl" run examples/family.tl > /dev/null; done
fam=$(for _ in $(seq 21); do time_ms "$tl" run examples/family.tl; done | median)
# `--goal-directed off`: the query binds both ends, so by default only one source's search runs.
clo=$(for _ in 1 2 3; do time_ms "$tl" run --goal-directed off benches/closure.tl; done | median)
echo "tl run examples/family.tl: median ${fam} ms (21 runs)"
echo "tl run benches/closure.tl (10^4 nodes, 5·10^4 edges): median ${clo} ms (3 runs)"
