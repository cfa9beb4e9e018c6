#!/usr/bin/env python3
"""Generate the example programs' data files and their expected answers.

Every data file is produced from a fixed seed, and every expected answer is
computed here with plain Python (Datalog closures by naive iteration / BFS)
and NumPy in float64, independently of the TensorLogic implementation.

Each `P.expected.jsonl` holds exactly what `tl run --json P` must print: one
JSON object per query, in the order the queries appear in the program.

Running the script twice produces byte-identical files.

Usage: python3 scripts/gen_examples.py
"""

import json
import os
import random
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
ROOT = os.path.normpath(ROOT)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def path(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write_text(rel, text):
    with open(path(*rel.split("/")), "w", newline="\n") as f:
        f.write(text)


def sort_key(value):
    # Integers sort numerically, symbols by their names.
    if isinstance(value, int):
        return (0, value, "")
    return (1, 0, value)


def rel_answer(query, vars_, rows):
    """A relation query's answer: rows deduplicated and sorted lexicographically."""
    uniq = sorted(set(tuple(r) for r in rows), key=lambda t: tuple(sort_key(v) for v in t))
    return {"query": query, "vars": list(vars_), "rows": [list(r) for r in uniq]}


def ground_answer(query, holds):
    return {"query": query, "vars": [], "rows": [[]] if holds else []}


def tensor_answer(query, array):
    a = np.asarray(array, dtype=np.float64)
    return {"query": query, "shape": list(a.shape),
            "data": [float(x) for x in a.reshape(-1)]}


def write_expected(rel, answers):
    lines = [json.dumps(a) for a in answers]
    write_text(rel, "\n".join(lines) + "\n")


def save_npy(rel, array):
    np.save(path(*rel.split("/")), array)


def closure(edges):
    """Transitive closure of a binary relation by naive iteration to the fixpoint."""
    succ = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    reach = set(edges)
    while True:
        new = {(x, z) for (x, y) in reach for z in succ.get(y, ())} - reach
        if not new:
            return reach
        reach |= new


def bfs(succ, start):
    """Nodes reachable from start by a path of length >= 1."""
    seen = set()
    frontier = list(succ.get(start, ()))
    while frontier:
        n = frontier.pop()
        if n in seen:
            continue
        seen.add(n)
        frontier.extend(succ.get(n, ()))
    return seen


def fmt_num(x):
    """A literal number for a .tl program (shortest round-trip form)."""
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


def fmt_literal(a):
    a = np.asarray(a)
    if a.ndim == 0:
        return fmt_num(a)
    return "[" + ", ".join(fmt_literal(x) for x in a) + "]"


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------------
# 1. family.tl: recursive Ancestor over four generations
# ---------------------------------------------------------------------------

def family():
    parent = [
        ("Alice", "Bob"), ("Alice", "Carol"),
        ("Bob", "Dave"), ("Bob", "Erin"),
        ("Carol", "Frank"),
        ("Dave", "Grace"), ("Frank", "Heidi"),
    ]
    lines = [
        "# Family tree over four generations; Ancestor is the transitive closure of Parent.",
        "",
    ]
    lines += [f"Parent({a}, {b})" for a, b in parent]
    lines += [
        "",
        "Ancestor(x, y) <- Parent(x, y)",
        "Ancestor(x, z) <- Ancestor(x, y), Parent(y, z)",
        "",
        "Ancestor(Alice, x)?",
        "Ancestor(x, y)?",
        "Ancestor(Alice, Dave)?",
        "Ancestor(Dave, Alice)?",
        "",
    ]
    write_text("family.tl", "\n".join(lines))

    anc = closure(parent)
    answers = [
        rel_answer("Ancestor(Alice, x)", ["x"], [(y,) for (x, y) in anc if x == "Alice"]),
        rel_answer("Ancestor(x, y)", ["x", "y"], anc),
        ground_answer("Ancestor(Alice, Dave)", ("Alice", "Dave") in anc),
        ground_answer("Ancestor(Dave, Alice)", ("Dave", "Alice") in anc),
    ]
    write_expected("family.expected.jsonl", answers)


# ---------------------------------------------------------------------------
# 2. reachability/: transitive closure over a CSV edge list
# ---------------------------------------------------------------------------

def reachability():
    rng = random.Random(20251012)
    groups, size = 50, 100                 # 5000 nodes in 50 clusters of 100
    edges = set()
    for g in range(groups):
        base = g * size
        for i in range(size):
            a = base + i
            # Forward edges inside the cluster: a mostly acyclic core.
            for _ in range(2):
                if i + 1 < size:
                    b = base + rng.randrange(i + 1, min(size, i + 30))
                    edges.add((a, b))
            # A few backward edges make cycles inside the cluster.
            if i > 0 and rng.random() < 0.15:
                edges.add((a, base + rng.randrange(0, i)))
    # Sparse links between clusters, always to a later cluster (a DAG of clusters).
    for g in range(groups - 1):
        if rng.random() < 0.35:
            h = rng.randrange(g + 1, groups)
            edges.add((g * size + rng.randrange(size), h * size + rng.randrange(size)))
    # Make sure the start node has successors of its own, and that its cluster
    # leads into a few others, so that a few hundred nodes are reachable from it.
    edges.add((0, 1))
    edges.add((0, 2))
    for h in (7, 19, 31):
        edges.add((rng.randrange(1, 40), h * size + rng.randrange(0, 5)))

    name = lambda n: f"N{n}"
    edge_list = sorted(edges)
    write_text("reachability/edges.csv",
               "".join(f"{name(a)},{name(b)}\n" for a, b in edge_list))

    succ = {}
    for a, b in edge_list:
        succ.setdefault(a, []).append(b)
    from_start = bfs(succ, 0)
    total = sum(len(bfs(succ, n)) for n in range(groups * size))
    assert len(edge_list) >= 10_000, len(edge_list)
    assert 100 <= len(from_start) <= 1000, len(from_start)
    assert total < 2_000_000, total
    print(f"reachability: {len(edge_list)} edges, {len(from_start)} reachable from N0, "
          f"closure {total} tuples", file=sys.stderr)

    write_text("reachability/reach.tl", "\n".join([
        "# Reachability: the transitive closure of a 5000-node graph read from CSV.",
        "# edges.csv has one edge per line, `from,to`, with symbol node names.",
        "",
        'Edge = "edges.csv"',
        "",
        "Reach(x, y) <- Edge(x, y)",
        "Reach(x, z) <- Reach(x, y), Edge(y, z)",
        "",
        "Reach(N0, x)?",
        "",
    ]))
    write_expected("reachability/reach.expected.jsonl", [
        rel_answer("Reach(N0, x)", ["x"], [(name(n),) for n in from_start]),
    ])


# ---------------------------------------------------------------------------
# 3. same_generation.tl: the classic same-generation program
# ---------------------------------------------------------------------------

def same_generation():
    parent = [
        ("Ann", "Ben"), ("Ann", "Cat"),
        ("Ben", "Dan"), ("Ben", "Eve"), ("Cat", "Fay"),
        ("Dan", "Gus"), ("Eve", "Hal"), ("Fay", "Ivy"), ("Fay", "Jon"),
    ]
    lines = ["# Same generation: x and y are siblings, or children of people of the same generation.", ""]
    lines += [f"Parent({a}, {b})" for a, b in parent]
    lines += [
        "",
        "SG(x, y) <- Parent(p, x), Parent(p, y), x != y",
        "SG(x, y) <- Parent(p, x), SG(p, q), Parent(q, y)",
        "",
        "SG(x, y)?",
        "SG(Gus, Ivy)?",
        "SG(Gus, Fay)?",
        "",
    ]
    write_text("same_generation.tl", "\n".join(lines))

    # Naive iteration of both rules to the fixpoint.
    sg = set()
    while True:
        new = set()
        for p, x in parent:
            for p2, y in parent:
                if p == p2 and x != y:
                    new.add((x, y))
        for p, x in parent:
            for (a, q) in sg:
                if a == p:
                    for q2, y in parent:
                        if q2 == q:
                            new.add((x, y))
        if new <= sg:
            break
        sg |= new
    write_expected("same_generation.expected.jsonl", [
        rel_answer("SG(x, y)", ["x", "y"], sg),
        ground_answer("SG(Gus, Ivy)", ("Gus", "Ivy") in sg),
        ground_answer("SG(Gus, Fay)", ("Gus", "Fay") in sg),
    ])


# ---------------------------------------------------------------------------
# 4. negation.tl: stratified negation and comparisons
# ---------------------------------------------------------------------------

def negation():
    nodes = list(range(10))
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (5, 6), (6, 5), (7, 8), (4, 1), (8, 9)]
    start = 0
    lines = [
        "# Stratified negation: the nodes a start node cannot reach, nodes without out-edges,",
        "# and comparisons between integer node numbers.",
        "# Nodes are integers 0..9.",
        "",
    ]
    lines += [f"Node({n})" for n in nodes]
    lines += [f"Edge({a}, {b})" for a, b in edges]
    lines += [
        f"Start({start})",
        "",
        "Reach(x) <- Start(x)",
        "Reach(y) <- Reach(x), Edge(x, y)",
        "Unreachable(x) <- Node(x), not Reach(x)",
        "HasOut(x) <- Edge(x, y)",
        "DeadEnd(x) <- Node(x), not HasOut(x)",
        "# A comparison: edges that go from a larger to a smaller node number.",
        "Back(x, y) <- Edge(x, y), y < x",
        "# Negation and comparison together: ordered pairs of unreachable nodes with no edge.",
        "Apart(x, y) <- Unreachable(x), Unreachable(y), x < y, not Edge(x, y)",
        "",
        "Reach(x)?",
        "Unreachable(x)?",
        "DeadEnd(x)?",
        "Back(x, y)?",
        "Apart(x, y)?",
        "",
    ]
    write_text("negation.tl", "\n".join(lines))

    succ = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    reach = bfs(succ, start) | {start}
    unreach = [n for n in nodes if n not in reach]
    has_out = {a for a, _ in edges}
    dead = [n for n in nodes if n not in has_out]
    back = [(a, b) for a, b in edges if b < a]
    eset = set(edges)
    apart = [(x, y) for x in unreach for y in unreach if x < y and (x, y) not in eset]
    write_expected("negation.expected.jsonl", [
        rel_answer("Reach(x)", ["x"], [(n,) for n in reach]),
        rel_answer("Unreachable(x)", ["x"], [(n,) for n in unreach]),
        rel_answer("DeadEnd(x)", ["x"], [(n,) for n in dead]),
        rel_answer("Back(x, y)", ["x", "y"], back),
        rel_answer("Apart(x, y)", ["x", "y"], apart),
    ])


# ---------------------------------------------------------------------------
# 5. einsum.tl: contractions, projections, index arithmetic and slices
# ---------------------------------------------------------------------------

def einsum():
    A = np.array([[1, -2, 3], [4, 0.5, -6]], dtype=np.float64)
    B = np.array([[2, 1], [0, -1], [1.5, 3]], dtype=np.float64)
    M = np.array([[1, 2, 0, -1], [3, -4, 5, 2], [0.5, 1, 2, 0], [2, 0, -3, 6]], dtype=np.float64)
    U = np.array([1, -2, 0.5, 3], dtype=np.float64)
    V = np.array([2, 0, -1, 4], dtype=np.float64)
    X = np.array([[[1, 2, 0], [0, 1, -1]], [[2, -1, 3], [1, 1, 1]]], dtype=np.float64)
    Y = np.array([[[1, 0], [2, 1], [0, 3]], [[-1, 2], [0.5, 0], [1, 1]]], dtype=np.float64)

    lines = [
        "# Tensor equations as einsums: matmul, trace, outer product, batch contraction,",
        "# a bilinear form, max and mean projections, index arithmetic and a slice.",
        "",
        f"A = {fmt_literal(A)}",
        f"B = {fmt_literal(B)}",
        f"M = {fmt_literal(M)}",
        f"U = {fmt_literal(U)}",
        f"V = {fmt_literal(V)}",
        f"X = {fmt_literal(X)}",
        f"Y = {fmt_literal(Y)}",
        "",
        "C[i, k] = A[i, j] B[j, k]",
        "Tr = M[i, i]",
        "O[i, j] = U[i] V[j]",
        "Z[b, i, k] = X[b, i, j] Y[b, j, k]",
        "S = U[i] M[i, j] V[j]",
        "Mx[i] max= A[i, j]",
        "Mn[j] min= A[i, j]",
        "Av[j] avg= A[i, j]",
        "Sh[i] = U[i+1]",
        "Mid = U[1:3]",
        "",
        "C?", "Tr?", "O?", "Z?", "S?", "Mx?", "Mn?", "Av?", "Sh?", "Mid?",
        "",
    ]
    write_text("einsum.tl", "\n".join(lines))

    sh = np.zeros_like(U)
    sh[:-1] = U[1:]
    write_expected("einsum.expected.jsonl", [
        tensor_answer("C", np.einsum("ij,jk->ik", A, B)),
        tensor_answer("Tr", np.einsum("ii->", M)),
        tensor_answer("O", np.einsum("i,j->ij", U, V)),
        tensor_answer("Z", np.einsum("bij,bjk->bik", X, Y)),
        tensor_answer("S", np.einsum("i,ij,j->", U, M, V)),
        tensor_answer("Mx", A.max(axis=1)),
        tensor_answer("Mn", A.min(axis=0)),
        tensor_answer("Av", A.mean(axis=0)),
        tensor_answer("Sh", sh),
        tensor_answer("Mid", U[1:3]),
    ])


# ---------------------------------------------------------------------------
# 6. kernel_machine.tl: Gaussian-kernel machine
# ---------------------------------------------------------------------------

def kernel_machine():
    X = np.array([[0.0, 0.0], [0.5, 0.2], [3.0, 3.0], [2.6, 3.4], [0.2, 0.7]], dtype=np.float64)
    A = np.array([-1.5, -1.0, 2.0, 1.5, -0.5], dtype=np.float64)
    var, b = 2.0, 0.25
    lines = [
        "# A Gaussian-kernel machine: K is the kernel matrix of the points X,",
        "# Y the machine's output sig(sum_i' A[i'] K[i, i'] + B) at each point.",
        "",
        f"X = {fmt_literal(X)}",
        f"A = {fmt_literal(A)}",
        f"const Var = {fmt_num(var)}",
        f"const B = {fmt_num(b)}",
        "",
        "K[i, i'] = exp(-(X[i, j] - X[i', j])^2 / Var)",
        "Y[i] = sig(A[i'] K[i, i'] + B)",
        "",
        "K?",
        "Y?",
        "",
    ]
    write_text("kernel_machine.tl", "\n".join(lines))

    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    K = np.exp(-d2 / var)
    Y = sigmoid(K @ A + b)
    write_expected("kernel_machine.expected.jsonl", [
        tensor_answer("K", K),
        tensor_answer("Y", Y),
    ])


# ---------------------------------------------------------------------------
# 7. gnn/: two rounds of message passing over a 6-node graph
# ---------------------------------------------------------------------------

def gnn():
    rng = np.random.default_rng(3)
    n, d, e, f = 6, 4, 4, 2
    H0 = rng.normal(0, 1, size=(n, d)).astype(np.float32)
    W = rng.normal(0, 0.7, size=(d, e)).astype(np.float32)
    W2 = rng.normal(0, 0.7, size=(e, f)).astype(np.float32)
    save_npy("gnn/features.npy", H0)
    save_npy("gnn/w.npy", W)
    save_npy("gnn/w2.npy", W2)

    und = [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (4, 5), (1, 5)]
    neig = sorted(set(und) | {(b, a) for a, b in und})
    lines = [
        "# Graph neural network: two rounds of message passing over an undirected 6-node graph.",
        "# Node features H0 (6 x 4) and weights W (4 x 4), W2 (4 x 2) come from .npy files.",
        "",
    ]
    lines += [f"Neig({a}, {b})" for a, b in neig]
    lines += [
        "",
        'H0 = "features.npy"',
        'W = "w.npy"',
        'W2 = "w2.npy"',
        "",
        "H1[x, e] = relu(Neig(x, y) H0[y, d] W[d, e])",
        "H2[x, f] = relu(Neig(x, y) H1[y, e] W2[e, f])",
        "",
        "H1?",
        "H2?",
        "",
    ]
    write_text("gnn/gnn.tl", "\n".join(lines))

    adj = np.zeros((n, n))
    for a, b in neig:
        adj[a, b] = 1.0
    h0, w, w2 = H0.astype(np.float64), W.astype(np.float64), W2.astype(np.float64)
    H1 = np.maximum(adj @ h0 @ w, 0.0)
    H2 = np.maximum(adj @ H1 @ w2, 0.0)
    write_expected("gnn/gnn.expected.jsonl", [
        tensor_answer("H1", H1),
        tensor_answer("H2", H2),
    ])


# ---------------------------------------------------------------------------
# 8. attention/: one attention head
# ---------------------------------------------------------------------------

def attention():
    rng = np.random.default_rng(11)
    p, d, k, v = 5, 8, 4, 3
    X = rng.normal(0, 1, size=(p, d)).astype(np.float32)
    Wq = rng.normal(0, 0.5, size=(k, d)).astype(np.float32)
    Wk = rng.normal(0, 0.5, size=(k, d)).astype(np.float32)
    Wv = rng.normal(0, 0.5, size=(v, d)).astype(np.float32)
    Dk = np.array(k, dtype=np.float32)      # 0-d array
    for name, arr in [("x", X), ("wq", Wq), ("wk", Wk), ("wv", Wv), ("dk", Dk)]:
        save_npy(f"attention/{name}.npy", arr)

    write_text("attention/attention.tl", "\n".join([
        "# One attention head: queries, keys and values projected from X, scaled dot-product",
        "# scores normalised by softmax over the key position p'.",
        "",
        'X = "x.npy"',
        'Wq = "wq.npy"',
        'Wk = "wk.npy"',
        'Wv = "wv.npy"',
        'Dk = "dk.npy"',
        "",
        "Q[p, k] = Wq[k, d] X[p, d]",
        "K[p, k] = Wk[k, d] X[p, d]",
        "V[p, v] = Wv[v, d] X[p, d]",
        "A[p, p'.] = softmax(Q[p, k] K[p', k] / sqrt(Dk))",
        "Out[p, v] = A[p, p'] V[p', v]",
        "",
        "Out?",
        "",
    ]))

    x, wq, wk, wv = (a.astype(np.float64) for a in (X, Wq, Wk, Wv))
    Q = x @ wq.T
    K = x @ wk.T
    Vv = x @ wv.T
    S = Q @ K.T / np.sqrt(float(Dk))
    S = S - S.max(axis=1, keepdims=True)
    Att = np.exp(S)
    Att /= Att.sum(axis=1, keepdims=True)
    write_expected("attention/attention.expected.jsonl", [tensor_answer("Out", Att @ Vv)])


# ---------------------------------------------------------------------------
# 9. pagerank/: real-valued recursion to convergence
# ---------------------------------------------------------------------------

def pagerank():
    n = 8
    links = [(0, 1), (0, 2), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (4, 6),
             (5, 6), (6, 7), (7, 0), (7, 4), (3, 1), (6, 2)]
    assert {a for a, _ in links} == set(range(n)) == {b for _, b in links}
    lines = [
        "# PageRank as a real-valued recursive equation over an 8-node link graph.",
        "# Every node has an out-link, so Out[x] is never 0. PR is iterated from 0 to convergence.",
        "",
    ]
    lines += [f"Link({a}, {b})" for a, b in links]
    lines += [
        "",
        f"const N = {n}",
        "",
        "Out[x] = Link(x, y)",
        "PR[y] = 0.15 / N + 0.85 Link(x, y) PR[x] / Out[x]",
        "",
        "Out?",
        "PR?",
        "",
    ]
    write_text("pagerank/pagerank.tl", "\n".join(lines))

    L = np.zeros((n, n))
    for a, b in links:
        L[a, b] = 1.0
    out = L.sum(axis=1)
    # Iterate exactly as the language specifies: start from 0 (elements never defined
    # are 0) and stop once max |delta| <= 1e-6.
    pr = np.zeros(n)
    for _ in range(1000):
        nxt = 0.15 / n + 0.85 * (L.T @ (pr / out))
        delta = np.abs(nxt - pr).max()
        pr = nxt
        if delta <= 1e-6:
            break
    else:
        raise AssertionError("PageRank did not converge")
    exact = np.linalg.solve(np.eye(n) - 0.85 * (L / out[:, None]).T, np.full(n, 0.15 / n))
    assert np.abs(pr - exact).max() < 1e-5
    write_expected("pagerank/pagerank.expected.jsonl", [
        tensor_answer("Out", out),
        tensor_answer("PR", pr),
    ])


# 10. concat.tl: multi-head attention merged with concat, sequences placed one after another
def concat():
    rng = np.random.default_rng(10)
    P, D, H, K = 4, 5, 2, 3
    X = np.round(rng.normal(size=(P, D)), 2)
    Wq = np.round(rng.normal(size=(H, K, D)) * 0.5, 2)
    Wk = np.round(rng.normal(size=(H, K, D)) * 0.5, 2)
    Wv = np.round(rng.normal(size=(H, K, D)) * 0.5, 2)
    Wo = np.round(rng.normal(size=(D, H * K)) * 0.5, 2)
    U = np.array([1.5, -2.0, 0.25])
    W = np.array([4.0, 8.0])
    lines = [
        "# Multi-head attention as the paper writes it: the heads' outputs merged by `concat`",
        "# (m = h*|v| + v), then projected; a sequence laid after another; a recurrence that",
        "# places each row after the one it reads. Dropout is the identity outside training.",
        "",
        f"X = {fmt_literal(X)}",
        f"Wq = {fmt_literal(Wq)}",
        f"Wk = {fmt_literal(Wk)}",
        f"Wv = {fmt_literal(Wv)}",
        f"Wo = {fmt_literal(Wo)}",
        f"U = {fmt_literal(U)}",
        f"W = {fmt_literal(W)}",
        "",
        "Q[h, p, k] = Wq[h, k, d] X[p, d]",
        "K[h, p, k] = Wk[h, k, d] X[p, d]",
        "V[h, p, v] = Wv[h, v, d] X[p, d]",
        f"A[h, p, p'.] = softmax(Q[h, p, k] K[h, p', k] / sqrt({K}))",
        "Attn[h, p, v] = A[h, p, p'] V[h, p', v]",
        "Merge[p, m] = concat(Attn[h, p, v])",
        "Out[p, o] = Wo[o, m] dropout(Merge[p, m], 0.1)",
        "",
        "Seq[t] = concat(U[i], W[j])",
        "Pow[n: 6] = 0",
        "Pow[0] = 1",
        "Pow[n + 1] = 3 Pow[n]",
        "",
        "Merge?", "Out?", "Seq?", "Pow?",
        "",
    ]
    write_text("concat.tl", "\n".join(lines))
    Q = np.einsum("hkd,pd->hpk", Wq, X)
    Kt = np.einsum("hkd,pd->hpk", Wk, X)
    V = np.einsum("hvd,pd->hpv", Wv, X)
    S = np.einsum("hpk,hqk->hpq", Q, Kt) / np.sqrt(K)
    S = np.exp(S - S.max(axis=2, keepdims=True))
    A = S / S.sum(axis=2, keepdims=True)
    Attn = np.einsum("hpq,hqv->hpv", A, V)
    Merge = Attn.transpose(1, 0, 2).reshape(P, H * K)
    Out = np.einsum("om,pm->po", Wo, Merge)
    write_expected("concat.expected.jsonl", [
        tensor_answer("Merge", Merge),
        tensor_answer("Out", Out),
        tensor_answer("Seq", np.concatenate([U, W])),
        tensor_answer("Pow", 3.0 ** np.arange(6)),
    ])


def weighted_roads():
    """examples/weighted/roads.tl: shortest road distances over a weighted CSV edge list
    (Floyd-Warshall in float64; pairs no route joins are `inf`), and the relation of its rows."""
    roads = [("Ashford", "Bexley", 12.5), ("Ashford", "Crayford", 30), ("Bexley", "Crayford", 9),
             ("Bexley", "Dartford", 21), ("Crayford", "Dartford", 4.5), ("Dartford", "Erith", 0),
             ("Erith", "Bexley", 7), ("Gravesend", "Ashford", 40)]
    write_text("weighted/roads.csv",
               "# from,to,km (one-way roads; a road of 0 km is a real road)\n"
               + "".join(f"{a},{b},{fmt_num(w)}\n" for a, b, w in roads))
    names = []
    for a, b, _ in roads:
        for v in (a, b):
            if v not in names:
                names.append(v)
    ix = {v: i for i, v in enumerate(names)}
    n = len(names)
    d = np.full((n, n), np.inf)
    for a, b, w in roads:
        d[ix[a], ix[b]] = min(d[ix[a], ix[b]], w)
    for k in range(n):
        d = np.minimum(d, d[:, k:k + 1] + d[k:k + 1, :])
    cell = lambda x: "inf" if np.isinf(x) else float(x)
    km = {"query": "Km", "shape": [n, n], "data": [cell(x) for x in d.reshape(-1)],
          "labels": [names, names]}
    reach = {(a, b) for a in range(n) for b in range(n) if np.isfinite(d[a, b])}
    froms = {ix[a] for a, _, _ in roads}
    tos = {ix[b] for _, b, _ in roads}
    unreachable = [(names[a], names[b]) for a in froms for b in tos if (a, b) not in reach]
    write_expected("weighted/roads.expected.jsonl", [
        km,
        {"query": "Km[Ashford, Erith]", "shape": [], "data": [cell(d[ix["Ashford"], ix["Erith"]])]},
        rel_answer("Unreachable(a, b)", ["a", "b"], unreachable),
        {"query": "Roads", "shape": [], "data": [len(roads)]},
    ])


def souffle_timetable():
    """examples/souffle/timetable.dl: aggregates and arithmetic over flight.facts, computed
    here directly (counts, sums, minima, a bounded breadth-first search, ranks)."""
    flights = []
    with open(path("souffle", "flight.facts")) as f:
        for line in f:
            if line.strip():
                a, x, y, m = line.rstrip("\n").split("\t")
                flights.append((a, x, y, int(m)))
    fleet = []
    for a in sorted({f[0] for f in flights}):
        mine = {f for f in flights if f[0] == a}
        fleet.append([a, len(mine), sum(f[3] for f in mine)])
    trips = {(x, y, m) for _, x, y, m in flights}
    trips |= {(x, z, m1 + 60 + m2) for _, x, y, m1 in flights for _, y2, z, m2 in flights
              if y2 == y and x != z}
    quickest = sorted({(x, y, min(m for a, b, m in trips if (a, b) == (x, y)))
                       for x, y, _ in trips})
    succ = {(x, y) for _, x, y, _ in flights}
    hops = {(x, y, 1) for x, y in succ}
    frontier = set(hops)
    while frontier:
        frontier = {(x, z, n + 1) for x, y, n in frontier for y2, z in succ
                    if y2 == y and n < 4} - hops
        hops |= frontier
    fewest = sorted({(x, y, min(n for a, b, n in hops if (a, b) == (x, y))) for x, y, _ in hops})
    departures = {c: len({f for f in flights if f[1] == c}) for c in {f[1] for f in flights}}
    rank = sorted((c, 1 + sum(1 for k in departures.values() if k > n))
                  for c, n in departures.items())
    write_expected("souffle/timetable.expected.jsonl", [
        {"query": "fleet", "vars": ["airline", "flights", "minutes"], "rows": fleet},
        rel_answer("quickest", ["from", "to", "minutes"], quickest),
        rel_answer("fewest", ["from", "to", "n"], fewest),
        rel_answer("rank", ["city", "r"], rank),
    ])


def main():
    family()
    reachability()
    same_generation()
    negation()
    einsum()
    kernel_machine()
    gnn()
    attention()
    pagerank()
    concat()
    weighted_roads()
    souffle_timetable()


if __name__ == "__main__":
    main()
