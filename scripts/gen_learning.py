#!/usr/bin/env python3
"""Generate the data files and expected answers of the learning examples (examples/learning/).

Data come from fixed seeds; running the script twice produces byte-identical files.
Expected answers are what the trained programs must show:

- exact where the outcome is discrete (XOR's rounded predictions, thresholded relations);
- otherwise a value with a `"tolerance"` (absolute, for every number of that answer; see
  crates/tl/tests/examples.rs), since training results depend on floating-point details.
  Linear regression's weights are the least-squares solution computed here with NumPy.

Usage: python3 scripts/gen_learning.py
"""

import json
import os

import numpy as np

ROOT = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "learning")
)


def path(rel):
    p = os.path.join(ROOT, *rel.split("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_npy(rel, array):
    np.save(path(rel), np.ascontiguousarray(array, dtype=np.float32))


def write_expected(rel, answers):
    with open(path(rel), "w", newline="\n") as f:
        for a in answers:
            f.write(json.dumps(a, separators=(",", ":")) + "\n")


def tensor(query, data, shape=None, tolerance=None):
    arr = np.asarray(data, dtype=np.float64)
    out = {
        "query": query,
        "shape": list(arr.shape) if shape is None else shape,
        "data": [float(round(x, 6)) for x in arr.reshape(-1)],
    }
    if tolerance is not None:
        out["tolerance"] = tolerance
    return out


def relation(query, vars_, rows):
    return {"query": query, "vars": vars_, "rows": sorted(set(tuple(r) for r in rows))}


# ---------------------------------------------------------------------------
# XOR: the rounded predictions are exact; the final loss only has to be small.
# ---------------------------------------------------------------------------

def xor():
    write_expected(
        "xor.expected.jsonl",
        [
            tensor("Pred", [0, 1, 1, 0]),
            tensor("Loss", 0.0, tolerance=1e-3),
        ],
    )


# ---------------------------------------------------------------------------
# Linear regression from .npy: y = X w + b + noise; expected W, B = least squares.
# ---------------------------------------------------------------------------

def linreg():
    rng = np.random.default_rng(20240601)
    n = 200
    w_true = np.array([2.0, -1.0, 0.5])
    b_true = 0.3
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X.astype(np.float64) @ w_true + b_true + 0.05 * rng.normal(size=n)).astype(np.float32)
    write_npy("linreg/X.npy", X)
    write_npy("linreg/y.npy", y)
    A = np.hstack([X.astype(np.float64), np.ones((n, 1))])
    sol, *_ = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)
    write_expected(
        "linreg/linreg.expected.jsonl",
        [
            tensor("W", sol[:3], tolerance=1e-3),
            tensor("B", sol[3], tolerance=1e-3),
        ],
    )
    return sol


# ---------------------------------------------------------------------------
# Spiral: 3 interleaved arms of 100 points each (the CS231n spiral), one-hot labels.
# The expected accuracy is 0.975 with tolerance 0.025: anything in [0.95, 1] passes.
# ---------------------------------------------------------------------------

def spiral():
    rng = np.random.default_rng(7)
    per, classes = 100, 3
    X = np.zeros((per * classes, 2))
    labels = np.zeros(per * classes, dtype=int)
    for c in range(classes):
        r = np.linspace(0.0, 1.0, per)
        t = np.linspace(c * 4.0, (c + 1) * 4.0, per) + 0.2 * rng.normal(size=per)
        X[c * per:(c + 1) * per] = np.column_stack([r * np.sin(t), r * np.cos(t)])
        labels[c * per:(c + 1) * per] = c
    write_npy("spiral/X.npy", X)
    write_npy("spiral/onehot.npy", np.eye(classes)[labels])
    write_expected(
        "spiral/spiral.expected.jsonl",
        [
            tensor("Acc", 0.975, tolerance=0.025),
            tensor("Loss", 0.0, tolerance=0.1),  # mean cross-entropy below 0.1
        ],
    )


# ---------------------------------------------------------------------------
# RESCAL: a 24-person, three-generation family. family.csv holds every true fact of five
# relations; hidden.csv lists half of the Child cells (true or false), drawn at random, which
# the program masks out of its loss. The expected answers say that thresholding the learned
# scores on the hidden cells recovers exactly the hidden Child facts.
# ---------------------------------------------------------------------------

def rescal():
    # Generation 1: four couples; each has a son and a daughter (generation 2), who marry into
    # the other families; each generation-2 couple has two children (generation 3).
    g1 = [("Arthur", "Beth"), ("Carl", "Dora"), ("Emil", "Fern"), ("Glen", "Hana")]
    g2 = [("Ivan", "Jane"), ("Kurt", "Lola"), ("Mark", "Nina"), ("Otto", "Pia")]
    g3 = [("Quin", "Rosa"), ("Saul", "Tess"), ("Umar", "Vera"), ("Walt", "Xena")]
    couples = [(f, m, [g2[k][0], g2[(k + 1) % 4][1]]) for k, (f, m) in enumerate(g1)]
    couples += [(f, m, list(g3[k])) for k, (f, m) in enumerate(g2)]
    people = [p for gen in (g1, g2, g3) for couple in gen for p in couple]
    parent = {(p, c) for f, m, cs in couples for p in (f, m) for c in cs}
    child = {(c, p) for p, c in parent}
    spouse = {pair for f, m, _ in couples for pair in ((f, m), (m, f))}
    sibling = {(a, b) for _, _, cs in couples for a in cs for b in cs if a != b}
    grand = {(g, c) for g, p in parent for p2, c in parent if p == p2}
    rels = {"Parent": parent, "Child": child, "Spouse": spouse, "Sibling": sibling,
            "Grandparent": grand}
    rows = [(r, a, b) for r, facts in rels.items() for a, b in sorted(facts)]
    with open(path("rescal/family.csv"), "w", newline="\n") as f:
        f.write("# relation,head,tail: every true fact of the family\n")
        for r in rows:
            f.write(",".join(r) + "\n")
    rng = np.random.default_rng(3)
    cells = [(a, b) for a in people for b in people]
    order = rng.permutation(len(cells))
    hidden = sorted(cells[k] for k in order[: len(cells) // 2])
    with open(path("rescal/hidden.csv"), "w", newline="\n") as f:
        f.write("# relation,head,tail: cells masked out of the training loss\n")
        for a, b in hidden:
            f.write(f"Child,{a},{b}\n")
    held = [c for c in hidden if c in child]
    print(f"rescal: {len(rows)} facts, {len(hidden)} hidden Child cells, "
          f"{len(held)} of them true, {len(child) - len(held)} true Child facts trained")
    write_expected(
        "rescal/rescal.expected.jsonl",
        [
            relation("Guess(x, y)", ["x", "y"], held),
            relation("Missed(x, y)", ["x", "y"], []),
            relation("Wrong(x, y)", ["x", "y"], []),
            tensor("Recall", 1.0),
            tensor("Precision", 1.0),
        ],
    )


# ---------------------------------------------------------------------------
# Learned temperature: the relaxed reachability fixpoint and the same SGD as the program,
# with the gradient of the fixpoint's loss taken by central differences in float64.
# ---------------------------------------------------------------------------

def temperature():
    import re

    with open(path("temperature.tl")) as f:
        edges = [tuple(map(int, m)) for m in re.findall(r"^Edge\((\d+), (\d+)\)", f.read(), re.M)]
    n = 1 + max(max(e) for e in edges)
    E = np.zeros((n, n))
    for a, b in edges:
        E[a, b] = 1.0
    closure = E.copy()
    for _ in range(n):
        closure = np.minimum(1.0, closure + closure @ E)

    def fixpoint(t):
        r = np.zeros((n, n))
        for _ in range(10000):
            nxt = 1.0 / (1.0 + np.exp(-(E + r @ E - 0.5) / t))
            if np.abs(nxt - r).max() <= 1e-13:
                return nxt
            r = nxt
        raise RuntimeError("no convergence")

    def loss(t):
        return float(((fixpoint(t) - closure) ** 2).mean())

    def rows(m):
        return [(int(a), int(b)) for a, b in zip(*np.nonzero(m))]

    t = 1.0
    before = fixpoint(t) > 0.5
    loss0 = loss(t)
    for _ in range(300):  # sgd(lr=0.2) for 300 steps
        t -= 0.2 * (loss(t + 1e-7) - loss(t - 1e-7)) / 2e-7
    after = fixpoint(t) > 0.5
    print(f"temperature: Tm {t:.6f}, loss {loss0:.6f} -> {loss(t):.3g}, "
          f"{int((before != closure).sum())} wrong rows before, {int((after != closure).sum())} after")
    write_expected(
        "temperature.expected.jsonl",
        [
            relation("Extra(x, z)", ["x", "z"], rows(before & (closure == 0))),
            relation("Lost(x, z)", ["x", "z"], rows(~before & (closure == 1))),
            tensor("Loss", loss0),
            tensor("Tm", t, tolerance=0.03),  # well below 1: anything in [0.04, 0.1]
            tensor("Loss", 0.0, tolerance=1e-4),
            relation("Extra(x, z)", ["x", "z"], rows(after & (closure == 0))),
            relation("Lost(x, z)", ["x", "z"], rows(~after & (closure == 1))),
            relation("Derived(x, z)", ["x", "z"], rows(closure == 1)),
        ],
    )


if __name__ == "__main__":
    temperature()
    spiral()
    rescal()
    xor()
    print("linreg least squares:", linreg())
