#!/usr/bin/env python3
"""Whole-process time of TL against the ascent peer on the smallest logic workloads, where a
process's start-up is most of the run and GNU time's 10 ms steps (scripts/bench-logic.sh)
cannot tell them apart: median wall milliseconds of RUNS runs (default 300) of each command,
the commands' runs interleaved so that the machine's state is the same for all, Python's clock
around each process.

Usage: scripts/small-logic.py WORKLOAD[,WORKLOAD…] TL [TL …]
  e.g. scripts/small-logic.py tc-hartford,sg-hartford target/release/tl /tmp/tl-before
Inputs come from `GEN_ONLY=1 scripts/bench-logic.sh` (IN_DIR, default
target/logic-bench/inputs); the peer is PEER (default target/ascent-peer/release/ascent_peer),
`ascent_par!` on RAYON_NUM_THREADS=PAR_THREADS (default 2). Prints a Markdown table with
`/bin/true` for scale and each TL's time against the faster ascent form."""
import os
import statistics
import subprocess
import sys
import time

workloads, binaries = sys.argv[1].split(","), sys.argv[2:]
in_dir = os.environ.get("IN_DIR", "target/logic-bench/inputs")
peer = os.path.abspath(os.environ.get("PEER", "target/ascent-peer/release/ascent_peer"))
runs = int(os.environ.get("RUNS", "300"))
par_env = dict(os.environ, RAYON_NUM_THREADS=os.environ.get("PAR_THREADS", "2"))
binaries = [os.path.abspath(b) for b in binaries]


def commands(kind):
    out = [("/bin/true", ["/bin/true"], None)]
    out += [(b, [b, "run", "--json", "--device", "cpu", "prog.tl"], None) for b in binaries]
    out.append(("ascent!", [peer, kind, "seq", "edges.csv"], None))
    out.append(("ascent_par!", [peer, kind, "par", "edges.csv"], par_env))
    return out


header = ["/bin/true"] + [f"`{b}`" for b in binaries] + ["ascent!", "ascent_par!"]
print("| workload | " + " | ".join(f"{h} ms" for h in header) + " | "
      + " | ".join(f"best ascent / `{b}`" for b in binaries) + " |")
print("|:---|" + " ---: |" * (len(header) + len(binaries)))
for w in workloads:
    cwd = os.path.join(in_dir, w)
    cases = commands(w.split("-")[0])
    times = {label: [] for label, _, _ in cases}
    for _ in range(runs):
        for label, cmd, env in cases:
            a = time.perf_counter()
            subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            times[label].append(time.perf_counter() - a)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    best = min(med["ascent!"], med["ascent_par!"])
    row = [med[label] for label, _, _ in cases]
    ratios = [best / med[b] for b in binaries]
    print(f"| {w} | " + " | ".join(f"{x:.2f}" for x in row) + " | "
          + " | ".join(f"{r:.2f}" for r in ratios) + " |")
