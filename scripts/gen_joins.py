#!/usr/bin/env python3
"""Generate programs with one join of many factors, for timing how they are planned and run.

  product N [scalar|vector|dot]   Y = X X ... X with N factors: X a scalar, Y[i] = X[i] ... X[i]
                                  over a 4-vector, or Y = X[i] ... X[i] (the same, summed)
  model N SEED [WIDTH [ARITY]]    a Bayesian-network-shaped join over N variables: variable k
                                  has up to 3 parents among the WIDTH variables before it (so
                                  the treewidth is at most WIDTH), each factor a table of
                                  unnormalised positive numbers; Z sums the whole product and
                                  M[x] keeps the middle variable. ARITY: 2 (default) or 3 for
                                  a mix of binary and ternary variables.
  grid N COLS SEED                binary variables 0..N-1 laid row by row on a grid COLS wide,
                                  each with its left and upper neighbours as parents (so the
                                  treewidth is at most COLS); outputs as for `model`.

The program goes to standard output. For `model` and `grid`, the reference values, computed
here in float64 by eliminating the variables in order, go to standard error as one JSON
object; when that order would need a table of more than 2^20 cells (a wide window), the
reference is skipped and its values are null.

Usage: python3 scripts/gen_joins.py model 223 1 3 > model.tl 2> model.expected.json
"""

import itertools
import json
import random
import sys


def product(n, kind):
    if kind == "scalar":
        head, factor, data = "Y", "X", "X = 1.001"
    elif kind == "vector":
        head, factor, data = "Y[i]", "X[i]", "X = [1.001, 0.999, 1.0, 0.5]"
    else:
        head, factor, data = "Y", "X[i]", "X = [1.001, 0.999, 1.0, 0.5]"
    return f"{data}\n{head} = {' '.join([factor] * n)}\nY?\n"


def model(n, seed, width, arity, grid=False):
    rng = random.Random(seed)
    sizes = [rng.choice([2, 3]) if arity == 3 else 2 for _ in range(n)]
    scopes, tables = [], []
    for k in range(n):
        if grid:
            parents = ([k - 1] if k % width else []) + ([k - width] if k >= width else [])
            parents.sort()
        else:
            window = list(range(max(0, k - width), k))
            parents = sorted(rng.sample(window, min(len(window), rng.randint(0, 3))))
        scope = parents + [k]
        cells = list(itertools.product(*[range(sizes[v]) for v in scope]))
        values = {c: round(rng.uniform(0.1, 1.0), 3) for c in cells}
        scopes.append(scope)
        tables.append(values)
    lines = []
    for k, (scope, values) in enumerate(zip(scopes, tables)):
        lines.append(f"P{k} = {literal(scope, values, sizes)}")
    factors = " ".join(f"P{k}[{', '.join(f'x{v}' for v in scope)}]" for k, scope in enumerate(scopes))
    mid = n // 2
    lines.append(f"Z = {factors}")
    lines.append(f"M[x{mid}] = {factors}")
    lines.append("Z?")
    lines.append("M?")
    z, m = eliminate(n, sizes, scopes, tables, mid) or (None, None)
    json.dump({"Z": z, "M": m}, sys.stderr)
    sys.stderr.write("\n")
    return "\n".join(lines) + "\n"


def literal(scope, values, sizes):
    """A nested list literal of a table over `scope`."""

    def nest(prefix, depth):
        if depth == len(scope):
            return f"{values[tuple(prefix)]}"
        return "[" + ", ".join(nest(prefix + [x], depth + 1) for x in range(sizes[scope[depth]])) + "]"

    return nest([], 0)


def eliminate(n, sizes, scopes, tables, keep):
    """Z and the marginal over `keep`, by eliminating variables 0, 1, ... in order; None if a
    table of more than 2^20 cells would be needed."""
    factors = [(tuple(s), dict(t)) for s, t in zip(scopes, tables)]
    for v in range(n):
        if v == keep:
            continue
        holding = [f for f in factors if v in f[0]]
        factors = [f for f in factors if v not in f[0]]
        scope = sorted({u for s, _ in holding for u in s})
        cells = 1
        for u in scope:
            cells *= sizes[u]
        if cells > 1 << 20:
            return None
        out_scope = tuple(u for u in scope if u != v)
        out = {}
        for cell in itertools.product(*[range(sizes[u]) for u in scope]):
            at = dict(zip(scope, cell))
            p = 1.0
            for s, t in holding:
                p *= t[tuple(at[u] for u in s)]
            key = tuple(at[u] for u in out_scope)
            out[key] = out.get(key, 0.0) + p
        factors.append((out_scope, out))
    marginal = [1.0] * sizes[keep]
    for s, t in factors:
        for x in range(sizes[keep]):
            marginal[x] *= t[(x,)] if s else t[()]
    return sum(marginal), marginal


def main():
    args = sys.argv[1:]
    if args and args[0] == "product" and len(args) >= 2:
        sys.stdout.write(product(int(args[1]), args[2] if len(args) > 2 else "scalar"))
    elif args and args[0] == "model" and len(args) >= 3:
        width = int(args[3]) if len(args) > 3 else 3
        arity = int(args[4]) if len(args) > 4 else 2
        sys.stdout.write(model(int(args[1]), int(args[2]), width, arity))
    elif args and args[0] == "grid" and len(args) >= 4:
        sys.stdout.write(model(int(args[1]), int(args[3]), int(args[2]), 2, grid=True))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
