#!/usr/bin/env python3
"""Inputs of the logic benchmark (scripts/bench-logic.sh, scripts/gpu-logic.sh).

  logic_graphs.py gen  OUT_DIR [--networkx DIR]   write every workload
  logic_graphs.py list OUT_DIR [--quick] [--only a,b]
                                                  print the workloads to run, one per line:
                                                  name, program kind, folder, nodes, edges (tabs)

`gen` writes, for each workload, OUT_DIR/<name>/edges.csv (one `a,b` edge of integer node ids per
line, no header, sorted, no duplicates) and OUT_DIR/<name>/prog.tl (the TL program, reading
"edges.csv" next to it), and OUT_DIR/manifest.jsonl (one object per workload: name, program,
nodes = distinct node ids on some edge, edges, heavy, what the graph is). Everything is
deterministic: fixed seeds, and Python's `random.Random(seed).randrange`, which is stable across
Python versions.

Synthetic graphs always; the real ones only with --networkx DIR, an unpacked networkx source
distribution (`pip download --no-binary :all: --no-deps networkx`), whose examples/ folder ships
the data (Stanford GraphBase files and two edge lists). Undirected data gets both directions.
Heavy workloads (long runs or ~10^8 tuples) are marked so `list --quick` leaves them out.
"""

import argparse
import gzip
import json
import os
import random
import re
import sys

PROGRAMS = {
    "tc": """Edge = "edges.csv"
Reach(x, y) <- Edge(x, y)
Reach(x, z) <- Reach(x, y), Edge(y, z)
N = Reach(x, y)
N?
""",
    "sg": """Edge = "edges.csv"
SG(x, y) <- Edge(p, x), Edge(p, y), x != y
SG(x, y) <- Edge(a, x), SG(a, b), Edge(b, y)
N = SG(x, y)
N?
""",
}


# ---------------------------------------------------------------------------------------------
# Synthetic graphs. Each returns a list of (a, b) edges on integer node ids.

def random_digraph(n, m, seed):
    """m distinct directed edges drawn uniformly among the n(n-1) ordered pairs (no self loops)."""
    r = random.Random(seed)
    edges = set()
    while len(edges) < m:
        a, b = r.randrange(n), r.randrange(n)
        if a != b:
            edges.add((a, b))
    return edges


def chain(n):
    """The path 0 -> 1 -> ... -> n-1: n-1 edges, n(n-1)/2 reachable pairs, n-1 iterations."""
    return {(i, i + 1) for i in range(n - 1)}


def recursive_tree(n, seed):
    """Random recursive tree: node i > 0 gets a parent uniform in [0, i); edges parent -> child.
    Depth ~ e ln n, so its levels are wide: same-generation output ~ n^2 / (2 sqrt(pi ln n))."""
    r = random.Random(seed)
    return {(r.randrange(i), i) for i in range(1, n)}


def window_tree(n, window, seed):
    """Random tree whose node i > 0 gets a parent uniform in [max(0, i - window), i); edges
    parent -> child. Deep (~ 2n / window levels) and narrow (~ window / 2 nodes a level)."""
    r = random.Random(seed)
    return {(r.randrange(max(0, i - window), i), i) for i in range(1, n)}


# ---------------------------------------------------------------------------------------------
# Real graphs from networkx's examples/. Each returns edges on string names; `numbered` maps the
# names to integers.

def roget(ex):
    """Roget's Thesaurus (1879), Stanford GraphBase roget.dat: 1022 categories, 5075 directed
    cross-references (one of them a self loop, kept, as networkx keeps it)."""
    edges, old = set(), ""
    with gzip.open(os.path.join(ex, "graph", "roget_dat.txt.gz"), "rt") as f:
        for line in f:
            if line.startswith("*"):
                continue
            if line.startswith(" "):  # continuation of the previous line
                line = old + line
            if line.endswith("\\\n"):
                old = line.strip("\\\n")
                continue
            head_name, tails = line.split(":")
            head = re.match(r"^\d+", head_name).group(0)
            for tail in tails.split():
                edges.add((head, tail))
    return edges


def words(ex):
    """Stanford GraphBase words.dat: 5757 five-letter English words, an undirected edge between
    words that differ in one letter (networkx's plot_words.py)."""
    ws = set()
    with gzip.open(os.path.join(ex, "graph", "words_dat.txt.gz"), "rt") as f:
        for line in f:
            if not line.startswith("*"):
                ws.add(line[0:5])
    edges = set()
    letters = "abcdefghijklmnopqrstuvwxyz"
    for w in ws:
        for i in range(5):
            for c in letters:
                cand = w[:i] + c + w[i + 1:]
                if cand != w and cand in ws:
                    edges.add((w, cand))  # both directions come from both words
    return edges


def miles(ex, limit=300):
    """Stanford GraphBase miles.dat: 128 North American cities, an undirected edge between cities
    less than `limit` road miles apart (networkx's plot_knuth_miles.py uses 300)."""
    cities, edges, city, i = [], set(), None, 0
    with gzip.open(os.path.join(ex, "drawing", "knuth_miles.txt.gz"), "rt") as f:
        for line in f:
            if line.startswith("*"):
                continue
            if re.match(r"^\d+", line):  # distances from `city` to the cities read before it
                for d in line.split():
                    if int(d) < limit:
                        edges.add((city, cities[i]))
                        edges.add((cities[i], city))
                    i += 1
            else:
                city = line.split("[")[0]
                cities.insert(0, city)
                i = 1
    return edges


def edge_list(path, undirected):
    """A whitespace-separated edge list (`#` comments); the first two columns are the ends."""
    edges = set()
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            a, b = line.split()[:2]
            edges.add((a, b))
            if undirected:
                edges.add((b, a))
    return edges


def wormnet(ex):
    """WormNet v3 benchmark (C. elegans gene network, networkx's plot_betweenness_centrality.py
    reads it undirected): 78736 gene pairs."""
    return edge_list(os.path.join(ex, "algorithms", "WormNet.v3.benchmark.txt"), True)


def hartford(ex):
    """Hartford drug users network (networkx's plot_blockmodel.py): 337 lines `source target`,
    directed as listed."""
    return edge_list(os.path.join(ex, "algorithms", "hartford_drug.edgelist"), False)


def lanl(ex):
    """Internet routes seen from LANL (networkx's plot_lanl_routes.py reads `head tail rtt`
    undirected): a near-tree of 1363 links."""
    return edge_list(os.path.join(ex, "graphviz_layout", "lanl_routes.edgelist"), True)


def numbered(edges):
    """Names -> integers 0.., in sorted order of the names (numerically when all are numbers)."""
    names = sorted({x for e in edges for x in e},
                   key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s))
    ids = {s: i for i, s in enumerate(names)}
    return {(ids[a], ids[b]) for a, b in edges}


# ---------------------------------------------------------------------------------------------
# Synthetic workloads: name, program, heavy, description, edge builder.

SYNTHETIC = [
    ("tc-rand-1e4", "tc", False, "uniform random digraph, 10^4 nodes, 1.2*10^4 edges, seed 1",
     lambda: random_digraph(10_000, 12_000, 1)),
    ("sg-rand-2e3", "sg", False, "uniform random digraph, 2*10^3 nodes, 4*10^3 edges, seed 1",
     lambda: random_digraph(2_000, 4_000, 1)),
    ("sg-tree-2e4", "sg", False,
     "random tree, 2*10^4 nodes, parent of i uniform in [i-50, i), seed 1 (deep, ~800 levels)",
     lambda: window_tree(20_000, 50, 1)),
    ("tc-dense-2e3", "tc", False, "uniform random digraph, 2*10^3 nodes, 10^4 edges, seed 1",
     lambda: random_digraph(2_000, 10_000, 1)),
    ("tc-chain-1e3", "tc", False, "path of 10^3 nodes (999 iterations)", lambda: chain(1_000)),
    ("tc-chain-3e3", "tc", False, "path of 3*10^3 nodes (2999 iterations)", lambda: chain(3_000)),
    ("tc-chain-1e4", "tc", True, "path of 10^4 nodes (9999 iterations)", lambda: chain(10_000)),
    ("tc-tree-1e5", "tc", False,
     "random recursive tree, 10^5 nodes, parent of i uniform in [0, i), seed 1",
     lambda: recursive_tree(100_000, 1)),
    ("tc-rand-1e3-2e4", "tc", False, "uniform random digraph, 10^3 nodes, 2*10^4 edges, seed 1",
     lambda: random_digraph(1_000, 20_000, 1)),
    ("sg-rtree-2e4", "sg", True,
     "random recursive tree, 2*10^4 nodes, parent of i uniform in [0, i), seed 1 (wide levels)",
     lambda: recursive_tree(20_000, 1)),
    ("sg-rand-1e4", "sg", False, "uniform random digraph, 10^4 nodes, 1.2*10^4 edges, seed 1",
     lambda: random_digraph(10_000, 12_000, 1)),
    ("tc-rand-1e4-5e4", "tc", True,
     "uniform random digraph, 10^4 nodes, 5*10^4 edges, seed 7 (benches/closure.tl's graph)",
     lambda: random_digraph(10_000, 50_000, 7)),
    # The largest graphs, for the GPU (~3*10^8 and ~10^9 pairs): heavy, and left out of the
    # CPU benchmark's default run (see bench-logic.sh's ONLY).
    ("tc-rand-5e4", "tc", True, "uniform random digraph, 5*10^4 nodes, 6*10^4 edges, seed 1",
     lambda: random_digraph(50_000, 60_000, 1)),
    ("tc-rand-1e5", "tc", True, "uniform random digraph, 10^5 nodes, 1.2*10^5 edges, seed 1",
     lambda: random_digraph(100_000, 120_000, 1)),
    ("sg-rand-3e4", "sg", True, "uniform random digraph, 3*10^4 nodes, 3.6*10^4 edges, seed 1",
     lambda: random_digraph(30_000, 36_000, 1)),
    ("sg-rand-5e4", "sg", True, "uniform random digraph, 5*10^4 nodes, 6*10^4 edges, seed 1",
     lambda: random_digraph(50_000, 60_000, 1)),
]

# Real graphs: (graph, builder, description, [(program, heavy)]). Sizes are after conversion
# (nodes: ids on some edge; undirected data in both directions).
REAL = [
    ("roget", roget, "Roget's Thesaurus cross-references (SGB roget.dat), directed",
     [("tc", False), ("sg", False)]),
    ("words", words, "SGB words.dat, 5-letter words one letter apart, undirected",
     [("tc", False), ("sg", True)]),
    ("miles300", miles, "SGB miles.dat, 128 cities under 300 miles apart, undirected",
     [("tc", False), ("sg", False)]),
    ("hartford", hartford, "Hartford drug users network, directed as listed",
     [("tc", False), ("sg", False)]),
    ("lanl", lanl, "LANL internet routes (near-tree), undirected",
     [("tc", False), ("sg", False)]),
    # No SG on WormNet: with a mean degree of 64 each way it derives every pair thousands of
    # times (Ascent did not finish in 300 s; TL passed 13 GB in 50 s).
    ("wormnet", wormnet, "WormNet v3 C. elegans gene network, undirected", [("tc", False)]),
]


def write_workload(out, name, program, heavy, about, edges, manifest):
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    edges = sorted(edges)
    tmp = os.path.join(folder, "edges.csv.tmp")
    with open(tmp, "w") as f:
        f.writelines(f"{a},{b}\n" for a, b in edges)
    os.replace(tmp, os.path.join(folder, "edges.csv"))
    with open(os.path.join(folder, "prog.tl"), "w") as f:
        f.write(PROGRAMS[program])
    nodes = len({x for e in edges for x in e})
    manifest.append({"name": name, "program": program, "nodes": nodes, "edges": len(edges),
                     "heavy": heavy, "graph": about})
    print(f"  {name:18} {program}  {nodes:>7} nodes {len(edges):>7} edges  {about}",
          file=sys.stderr)


def gen(args):
    os.makedirs(args.out, exist_ok=True)
    manifest = []
    for name, program, heavy, about, build in SYNTHETIC:
        write_workload(args.out, name, program, heavy, about, build(), manifest)
    if args.networkx:
        ex = os.path.join(args.networkx, "examples")
        if not os.path.isdir(ex):
            sys.exit(f"logic_graphs.py: no examples/ folder in {args.networkx}")
        for graph, build, about, programs in REAL:
            edges = numbered(build(ex))
            about = f"networkx {os.path.basename(os.path.normpath(args.networkx))}: {about}"
            for program, heavy in programs:
                write_workload(args.out, f"{program}-{graph}", program, heavy, about, edges,
                               manifest)
    else:
        print("  (no --networkx folder: real graphs left out)", file=sys.stderr)
    with open(os.path.join(args.out, "manifest.jsonl"), "w") as f:
        f.writelines(json.dumps(m) + "\n" for m in manifest)
    # Folders of workloads no longer generated (an earlier list, or no --networkx this time).
    names = {m["name"] for m in manifest}
    for entry in sorted(os.listdir(args.out)):
        folder = os.path.join(args.out, entry)
        files = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        if entry not in names and files and files <= {"edges.csv", "prog.tl"}:
            for name in files:
                os.remove(os.path.join(folder, name))
            os.rmdir(folder)


def list_(args):
    path = os.path.join(args.out, "manifest.jsonl")
    if not os.path.exists(path):
        sys.exit(f"logic_graphs.py: {path} missing (generate the inputs first)")
    only = set(args.only.split(",")) if args.only else None
    seen = set()
    for line in open(path):
        m = json.loads(line)
        if only is not None and m["name"] not in only:
            continue
        if only is None and args.quick and m["heavy"]:
            continue
        seen.add(m["name"])
        print("\t".join([m["name"], m["program"], os.path.join(args.out, m["name"]),
                         str(m["nodes"]), str(m["edges"])]))
    if only is not None and only - seen:
        sys.exit(f"logic_graphs.py: unknown workloads {sorted(only - seen)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("out")
    g.add_argument("--networkx", help="an unpacked networkx source distribution")
    l = sub.add_parser("list")
    l.add_argument("out")
    l.add_argument("--quick", action="store_true", help="leave out heavy workloads")
    l.add_argument("--only", help="comma-separated workload names (heavy or not)")
    args = p.parse_args()
    gen(args) if args.cmd == "gen" else list_(args)


if __name__ == "__main__":
    main()
