"""Writes the data and expected answers of examples/virtual/ (virtual indices, LANGUAGE.md).

Each expected value is a float64 NumPy loop over the steps, written out step by step.
Run from the repository root: python3 scripts/gen_virtual_examples.py
"""
import json
import os

import numpy as np

HERE = os.path.join(os.path.dirname(__file__), "..", "examples", "virtual")

W = np.array([[0.5, -0.3, 0.1, 0.0], [0.2, 0.4, -0.1, 0.3], [0.0, 0.1, 0.6, -0.2], [-0.3, 0.2, 0.1, 0.5]])
V = np.array([[1.0, 0.5, 0.0, -0.2], [-0.5, 1.0, 0.3, 0.0], [0.2, -0.1, 0.8, 0.4], [0.0, 0.3, -0.4, 0.9]])
B = np.array([0.1, -0.1, 0.05, 0.0])
H0 = np.array([0.2, -0.4, 0.1, 0.3])


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def answer(query, value):
    value = np.asarray(value, dtype=np.float64)
    return {"query": query, "shape": list(value.shape), "data": [float(x) for x in value.ravel()]}


def rnn():
    rng = np.random.default_rng(7)
    u = rng.uniform(-1.0, 1.0, size=(6, 4)).astype(np.float32)
    np.save(os.path.join(HERE, "u.npy"), u)
    u = u.astype(np.float64)
    s = np.zeros(4)
    for t in range(len(u)):
        s = np.tanh(W * s[None, :] + V * u[t][None, :]).sum(axis=1)
    h = H0.copy()
    for t in range(len(u)):
        h = np.tanh(W @ h + V @ u[t] + B)
    c, r, g = np.zeros(4), np.zeros(4), np.zeros(4)
    for t in range(len(u)):
        g = sig(W @ r + V @ u[t])
        c = g * c + (1 - g) * np.tanh(V @ u[t])
        r = g * np.tanh(c)
    n = float(sum(range(len(u))))
    answers = [answer("S", s), answer("H", h), answer("G", g), answer("C", c), answer("R", r), answer("N", n)]
    with open(os.path.join(HERE, "rnn.expected.jsonl"), "w") as f:
        for a in answers:
            f.write(json.dumps(a) + "\n")


if __name__ == "__main__":
    rnn()
