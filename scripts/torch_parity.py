#!/usr/bin/env python3
"""Writes the optimiser parity data under crates/tl/tests/parity/.

For two fixed models (a quadratic and a tiny MLP) and each optimiser/schedule configuration,
this script trains the model for 100 steps with torch.optim in float64 and writes

- the model's data as .npy files (float64),
- one Tensor Logic program per configuration, `<model>/<config>.tl`, that trains the same model
  with `minimize … for 100 steps` and writes its parameters to `<config>.result.safetensors`,
- PyTorch's final parameters as `<model>/<config>.expected.safetensors` (float64).

crates/tl/tests/optimizer_parity.rs runs every program with `tl run --dtype f64` and compares.

Initial values. A `param` in Tensor Logic is initialised by a constant or a random initialiser,
not from a file, so each model reads its starting weights as data (`W0 = "w0.npy"`) and learns
an offset that starts at zero: `param W[3, 4] = 0` and `Wt[i, j] = W0[i, j] + W[i, j]`. The
PyTorch side does exactly the same (a zero parameter added to the fixed W0), so both sides learn
the same offset with the same gradients, and weight decay acts on the offset on both sides.

Schedules. StepLR and ExponentialLR are PyTorch's own; `cosine(warmup=w)` has no single PyTorch
class, so it is LambdaLR with TL's definition: lr·(t+1)/w for t < w, then
lr·½(1 + cos(π(t−w)/max(1, total−w))), t being the 0-based step.

As a self-check the script replays every run with a plain NumPy implementation of the update
rules TL follows (crates/tl-run/src/optim.rs) and stops if the two differ by more than 1e-10.

Usage: python3 scripts/torch_parity.py   (needs torch and numpy; rerun only to regenerate)
"""

import json
import math
import os
import struct

import numpy as np
import torch

STEPS = 100
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "tl", "tests", "parity")

# name, TL optimiser call, TL schedule call (or None)
CONFIGS = [
    ("sgd", "sgd(lr=0.1)", None),
    ("sgd_momentum", "sgd(lr=0.1, momentum=0.9)", None),
    ("sgd_nesterov_wd", "sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=0.01)", None),
    ("adam", "adam(lr=0.05)", None),
    ("adam_wd", "adam(lr=0.05, weight_decay=0.01)", None),
    ("adamw", "adamw(lr=0.05, weight_decay=0.1)", None),
    ("adam_cosine", "adam(lr=0.05)", "cosine(warmup=10)"),
    ("sgd_step", "sgd(lr=0.1)", "step(every=30, gamma=0.5)"),
    ("adam_exponential", "adam(lr=0.05)", "exponential(gamma=0.98)"),
]

# The optimiser settings of each TL call above, with PyTorch's defaults filled in.
SETTINGS = {
    "sgd": dict(kind="sgd", lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0),
    "sgd_momentum": dict(kind="sgd", lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.0),
    "sgd_nesterov_wd": dict(kind="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam": dict(kind="adam", lr=0.05, weight_decay=0.0),
    "adam_wd": dict(kind="adam", lr=0.05, weight_decay=0.01),
    "adamw": dict(kind="adamw", lr=0.05, weight_decay=0.1),
    "adam_cosine": dict(kind="adam", lr=0.05, weight_decay=0.0, schedule=("cosine", 10)),
    "sgd_step": dict(kind="sgd", lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0,
                     schedule=("step", 30, 0.5)),
    "adam_exponential": dict(kind="adam", lr=0.05, weight_decay=0.0, schedule=("exponential", 0.98)),
}


def cosine_factor(t, warmup, total):
    if t < warmup:
        return (t + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (t - warmup) / max(1, total - warmup)))


def schedule_factor(schedule, t, total):
    """TL's learning-rate factor at 0-based step t (for the NumPy replay)."""
    if schedule is None:
        return 1.0
    if schedule[0] == "cosine":
        return cosine_factor(t, schedule[1], total)
    if schedule[0] == "step":
        return schedule[2] ** (t // schedule[1])
    return schedule[1] ** t


def torch_optimizer(s, params):
    if s["kind"] == "sgd":
        opt = torch.optim.SGD(params, lr=s["lr"], momentum=s["momentum"], nesterov=s["nesterov"],
                              weight_decay=s["weight_decay"], foreach=False)
    elif s["kind"] == "adam":
        opt = torch.optim.Adam(params, lr=s["lr"], weight_decay=s["weight_decay"], foreach=False)
    else:
        opt = torch.optim.AdamW(params, lr=s["lr"], weight_decay=s["weight_decay"], foreach=False)
    sched = s.get("schedule")
    if sched is None:
        return opt, None
    if sched[0] == "cosine":
        warmup = sched[1]
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda t: cosine_factor(t, warmup, STEPS))
    if sched[0] == "step":
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=sched[1], gamma=sched[2])
    return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=sched[1])


def numpy_replay(s, grad_fn, shapes):
    """The update rules of crates/tl-run/src/optim.rs in NumPy float64."""
    params = [np.zeros(sh) for sh in shapes]
    buf = [None] * len(params)
    m = [np.zeros(sh) for sh in shapes]
    v = [np.zeros(sh) for sh in shapes]
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(STEPS):
        lr = s["lr"] * schedule_factor(s.get("schedule"), t, STEPS)
        grads = grad_fn(params)
        for k, (p, g) in enumerate(zip(params, grads)):
            wd = s["weight_decay"]
            if s["kind"] == "sgd":
                g = g + wd * p
                if s["momentum"] != 0.0:
                    buf[k] = g.copy() if buf[k] is None else s["momentum"] * buf[k] + g
                    g = g + s["momentum"] * buf[k] if s["nesterov"] else buf[k]
                params[k] = p - lr * g
            else:
                if s["kind"] == "adamw":
                    p = p * (1.0 - lr * wd)
                else:
                    g = g + wd * p
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                bc1 = 1 - b1 ** (t + 1)
                bc2 = 1 - b2 ** (t + 1)
                params[k] = p - (lr / bc1) * m[k] / (np.sqrt(v[k]) / math.sqrt(bc2) + eps)
    return params


def write_safetensors(path, tensors):
    """A float64 safetensors file (8-byte little-endian header length, JSON header, data)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        data = np.ascontiguousarray(arr, dtype="<f8").tobytes()
        header[name] = {"dtype": "F64", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


class Quadratic:
    """`Loss = A[i, j] (Wt[i, j] - T[i, j])^2` with `Wt = W0 + W`, W learned from 0."""

    name = "quadratic"
    params = [("W", (3, 4))]

    def __init__(self, rng):
        self.data = {
            "a": rng.uniform(0.5, 2.0, size=(3, 4)),
            "t": rng.uniform(-1.0, 1.0, size=(3, 4)),
            "w0": rng.uniform(-1.0, 1.0, size=(3, 4)),
        }

    def program(self):
        return (
            'A = "a.npy"\n'
            'T = "t.npy"\n'
            'W0 = "w0.npy"\n'
            "param W[3, 4] = 0\n"
            "Wt[i, j] = W0[i, j] + W[i, j]\n"
            "Loss = A[i, j] (Wt[i, j] - T[i, j])^2\n"
        )

    def loss(self, ps, lib):
        (w,) = ps
        d = self.data
        a, t, w0 = (lib(d[k]) for k in ("a", "t", "w0"))
        return (a * (w0 + w - t) ** 2).sum()

    def grads(self, ps):
        (w,) = ps
        d = self.data
        return [2.0 * d["a"] * (d["w0"] + w - d["t"])]


class Mlp:
    """`H[e, h] = tanh(V1[h, i] X[e, i] + C1[h])`, `P[e] = V2[h] H[e, h] + C2`,
    `Loss avg= (P[e] - Y[e])^2`, each weight the fixed start plus a learned offset from 0."""

    name = "mlp"
    params = [("W1", (5, 3)), ("B1", (5,)), ("W2", (5,)), ("B2", ())]

    def __init__(self, rng):
        x = rng.uniform(-1.0, 1.0, size=(8, 3))
        self.data = {
            "x": x,
            "y": np.sin(x @ np.array([1.5, -1.0, 0.5])) + 0.1 * rng.standard_normal(8),
            "w1_0": rng.normal(0.0, 0.6, size=(5, 3)),
            "b1_0": rng.normal(0.0, 0.1, size=(5,)),
            "w2_0": rng.normal(0.0, 0.5, size=(5,)),
            "b2_0": np.array(rng.normal(0.0, 0.1)),
        }

    def program(self):
        return (
            'X = "x.npy"\n'
            'Y = "y.npy"\n'
            'W10 = "w1_0.npy"\n'
            'B10 = "b1_0.npy"\n'
            'W20 = "w2_0.npy"\n'
            'B20 = "b2_0.npy"\n'
            "param W1[5, 3] = 0\n"
            "param B1[5] = 0\n"
            "param W2[5] = 0\n"
            "param B2 = 0\n"
            "V1[h, i] = W10[h, i] + W1[h, i]\n"
            "C1[h] = B10[h] + B1[h]\n"
            "V2[h] = W20[h] + W2[h]\n"
            "C2 = B20 + B2\n"
            "H[e, h] = tanh(V1[h, i] X[e, i] + C1[h])\n"
            "P[e] = V2[h] H[e, h] + C2\n"
            "Loss avg= (P[e] - Y[e])^2\n"
        )

    def loss(self, ps, lib):
        w1, b1, w2, b2 = ps
        d = self.data
        x, y = lib(d["x"]), lib(d["y"])
        h = torch.tanh(x @ (lib(d["w1_0"]) + w1).T + lib(d["b1_0"]) + b1)
        p = h @ (lib(d["w2_0"]) + w2) + lib(d["b2_0"]) + b2
        return ((p - y) ** 2).mean()

    def grads(self, ps):
        # Through torch autograd on fresh float64 tensors (the replay checks the update rules,
        # not the gradients).
        ts = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in ps]
        self.loss(ts, lambda a: torch.tensor(a, dtype=torch.float64)).backward()
        return [t.grad.numpy().copy() for t in ts]


def train_torch(model, s):
    params = [torch.zeros(shape, dtype=torch.float64, requires_grad=True) for _, shape in model.params]
    opt, sched = torch_optimizer(s, params)
    lib = lambda a: torch.tensor(a, dtype=torch.float64)
    first = last = None
    for _ in range(STEPS):
        opt.zero_grad()
        loss = model.loss(params, lib)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        first = loss.item() if first is None else first
        last = loss.item()
    return [p.detach().numpy().copy() for p in params], first, last


def main():
    torch.set_default_dtype(torch.float64)
    rng = np.random.RandomState(20251015)
    for model in (Quadratic(rng), Mlp(rng)):
        folder = os.path.join(ROOT, model.name)
        os.makedirs(folder, exist_ok=True)
        for key, arr in model.data.items():
            np.save(os.path.join(folder, key + ".npy"), np.asarray(arr, dtype=np.float64))
        names = ", ".join(n for n, _ in model.params)
        for config, call, schedule in CONFIGS:
            s = SETTINGS[config]
            got, first, last = train_torch(model, s)
            replay = numpy_replay(s, model.grads, [shape for _, shape in model.params])
            err = max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(got, replay))
            if not err <= 1e-10 or not all(np.all(np.isfinite(p)) for p in got):
                raise SystemExit(f"{model.name}/{config}: torch and the replay differ by {err}")
            sched = f" schedule {schedule}" if schedule else ""
            with open(os.path.join(folder, config + ".tl"), "w") as f:
                f.write(f"# {model.name}, {config}: generated by scripts/torch_parity.py\n")
                f.write(model.program())
                f.write(f"minimize Loss with {call} for {STEPS} steps{sched}\n")
                f.write(f'"{config}.result.safetensors" = {names}\n')
            write_safetensors(
                os.path.join(folder, config + ".expected.safetensors"),
                [(n, p) for (n, _), p in zip(model.params, got)],
            )
            print(f"{model.name:9} {config:17} loss {first:.6f} -> {last:.6f}  (replay within {err:.1e})")


if __name__ == "__main__":
    main()
