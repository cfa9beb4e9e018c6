#!/usr/bin/env python3
"""Data and expected answers of examples/goal_directed/roads.tl.

roads.csv holds 420 one-way roads between towns T0 … T299, drawn from a fixed seed;
roads.expected.jsonl holds what `tl run --json examples/goal_directed/roads.tl` must print,
computed here by breadth-first search, independently of TensorLogic. Running the script twice
writes byte-identical files.

Usage: python3 scripts/gen_goal_directed.py
"""

import json
import os
import random
from collections import defaultdict, deque

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "goal_directed")
TOWNS, ROADS = 300, 420


def main():
    r = random.Random(2026)
    roads = set()
    while len(roads) < ROADS:
        a, b = r.randrange(TOWNS), r.randrange(TOWNS)
        if a != b:
            roads.add((a, b))
    roads = sorted(roads)
    os.makedirs(HERE, exist_ok=True)
    with open(os.path.join(HERE, "roads.csv"), "w", newline="\n") as f:
        f.writelines(f"T{a},T{b}\n" for a, b in roads)

    out, into = defaultdict(list), defaultdict(list)
    for a, b in roads:
        out[a].append(b)
        into[b].append(a)

    def search(start, step):
        seen, queue = set(), deque(step[start])
        seen.update(step[start])
        while queue:
            v = queue.popleft()
            for w in step[v]:
                if w not in seen:
                    seen.add(w)
                    queue.append(w)
        return seen

    def name(t):
        return f"T{t}"

    from_home = search(0, out)
    to_port = search(7, into)
    both = sorted(from_home & to_port, key=name)  # rows print sorted by name
    unreached = {a for a, _ in roads} - from_home
    answers = [
        {"query": "Served", "shape": [], "data": [len(from_home)]},
        {"query": "Via(x)", "vars": ["x"], "rows": [[name(t)] for t in both]},
        {"query": "Cuts", "shape": [], "data": [len(unreached)]},
        {"query": "Reach(T3, T7)", "vars": [], "rows": [[]] if 7 in search(3, out) else []},
    ]
    with open(os.path.join(HERE, "roads.expected.jsonl"), "w", newline="\n") as f:
        for a in answers:
            f.write(json.dumps(a) + "\n")


if __name__ == "__main__":
    main()
