"""The CNN of examples/fashion_mnist/cnn.tl in PyTorch, for comparisons on the same inputs.

Same architecture, same initial weights and same data order: TL's generator (SplitMix64, normals
by Box-Muller, `below(n)` by scaling a uniform) is ported here and drawn in TL's order (the
parameters in declaration order, then one Fisher-Yates shuffle of the examples per epoch), so
both sides start from the same numbers and see the same batches. Adam with TL's settings (those
of torch.optim). Dropout masks come from each side's own generator. Batch norm is written out
as in the program (batch mean and biased variance in training; the whole training set's for the
test accuracy).

Usage: python3 scripts/fashion_torch.py DATA_DIR [--device cuda] [--mode eager|compile|
       reduce-overhead] [--dtype f32|bf16] [--epochs 10] [--limit N] [--steps N] [--seed 0]
--limit keeps the first N training and test images (the CPU smoke run); --steps stops after N
steps (timing runs). Prints one JSON line per epoch and one with the totals.
"""

import argparse
import gzip
import json
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MASK = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15


class Rng:
    """tl-run's generator (crates/tl-run/src/rng.rs), draw for draw."""

    def __init__(self, seed):
        self.state = (seed ^ GAMMA) & MASK

    def next(self):
        self.state = (self.state + GAMMA) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self):
        return (self.next() >> 11) / float(1 << 53)

    def normal(self):
        u1 = max(self.uniform(), sys.float_info.min)
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def below(self, n):
        return int(self.uniform() * n) % max(n, 1)


def train_epochs(rng, n, batch, epochs, steps, step, dev):
    """TL's training order: per epoch one Fisher-Yates shuffle of the `n` examples drawn from
    `rng`, then batches of `batch` handed to `step(rows)` (a tensor of example numbers), each
    timed with the device synchronised around it; stops after `steps` steps when that is not
    0. Prints each epoch's mean loss; returns the step times (seconds) and the steps done."""
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    per_epoch = math.ceil(n / batch)
    times, done = [], 0
    for epoch in range(epochs):
        order = list(range(n))
        for i in range(n - 1, 0, -1):
            j = rng.below(i + 1)
            order[i], order[j] = order[j], order[i]
        order = torch.tensor(order, device=dev)
        losses = []
        for k in range(per_epoch):
            rows = order[k * batch:(k + 1) * batch]
            sync()
            t0 = time.perf_counter()
            loss = step(rows)
            sync()
            times.append(time.perf_counter() - t0)
            losses.append(float(loss))
            done += 1
            if steps and done >= steps:
                break
        print(json.dumps({"epoch": epoch + 1, "mean_loss": statistics.fmean(losses)}), flush=True)
        if steps and done >= steps:
            break
    return times, done


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    shape = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


# The program's parameters in declaration order: name, shape, initial (std of a normal, or a
# constant).
PARAMS = [
    ("K1", (16, 3, 3), ("normal", 0.47)), ("G1", (16,), 1.0), ("E1", (16,), 0.0),
    ("K2", (16, 16, 3, 3), ("normal", 0.12)), ("G2", (16,), 1.0), ("E2", (16,), 0.0),
    ("K3", (16, 16, 3, 3), ("normal", 0.12)), ("G3", (16,), 1.0), ("E3", (16,), 0.0),
    ("K4", (32, 16, 3, 3), ("normal", 0.12)), ("G4", (32,), 1.0), ("E4", (32,), 0.0),
    ("W", (10, 32, 7, 7), ("normal", 0.02)), ("B", (10,), 0.0),
]


def init(rng, device, dtype):
    out = {}
    for name, shape, how in PARAMS:
        n = math.prod(shape)
        if isinstance(how, tuple):
            vals = [how[1] * rng.normal() for _ in range(n)]
        else:
            vals = [how] * n
        t = torch.tensor(vals, dtype=torch.float64).reshape(shape)
        out[name] = t.to(device=device, dtype=dtype).requires_grad_(True)
    return out


def bn(c, g, e, stats=None):
    """Batch norm as the program writes it; `stats` gives the mean and variance to use."""
    if stats is None:
        m = c.mean(dim=(0, 2, 3))
        d = c - m[None, :, None, None]
        v = (d * d).mean(dim=(0, 2, 3))
    else:
        m, v = stats
        d = c - m[None, :, None, None]
    y = g[None, :, None, None] * d / torch.sqrt(v[None, :, None, None] + 1e-5) + e[None, :, None, None]
    return y, (m, v)


def forward(p, x, train, stats=None):
    """Logits of images `x` [n, 28, 28]; with `stats` the given batch-norm statistics."""
    s = stats or [None] * 4
    got = []
    c1 = F.conv2d(x[:, None], p["K1"][:, None], padding=1)
    h1, st = bn(c1, p["G1"], p["E1"], s[0]); got.append(st); h1 = F.relu(h1)
    c2 = F.conv2d(h1, p["K2"], padding=1)
    h2, st = bn(c2, p["G2"], p["E2"], s[1]); got.append(st); h2 = F.relu(h2)
    c3 = F.conv2d(h2, p["K3"], padding=1)
    h3, st = bn(c3, p["G3"], p["E3"], s[2]); got.append(st); h3 = F.relu(h3 + h1)
    p3 = F.max_pool2d(h3, 2)
    c4 = F.conv2d(p3, p["K4"], padding=1)
    h4, st = bn(c4, p["G4"], p["E4"], s[3]); got.append(st); h4 = F.relu(h4)
    p4 = F.max_pool2d(h4, 2)
    if train:
        p4 = F.dropout(p4, 0.2, training=True)
    z = torch.einsum("kcyx,ncyx->nk", p["W"], p4) + p["B"]
    return z, got


def loss_of(p, x, onehot):
    z, _ = forward(p, x, True)
    prob = torch.softmax(z.float(), dim=1)
    return (-(onehot * torch.log(prob + 1e-7)).sum(dim=1)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--mode", default="eager", choices=["eager", "compile", "reduce-overhead"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dev = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    d = a.data.rstrip("/")
    img, lab = idx(f"{d}/train-images-idx3-ubyte.gz"), idx(f"{d}/train-labels-idx1-ubyte.gz")
    timg, tlab = idx(f"{d}/t10k-images-idx3-ubyte.gz"), idx(f"{d}/t10k-labels-idx1-ubyte.gz")
    if a.limit:
        img, lab, timg, tlab = img[:a.limit], lab[:a.limit], timg[:a.limit], tlab[:a.limit]
    x = torch.tensor(img, dtype=torch.float32, device=dev).div(255).to(dtype)
    onehot = F.one_hot(torch.tensor(lab.astype(np.int64), device=dev), 10).to(torch.float32)
    tx = torch.tensor(timg, dtype=torch.float32, device=dev).div(255).to(dtype)
    ty = torch.tensor(tlab.astype(np.int64), device=dev)
    rng = Rng(a.seed)
    p = init(rng, dev, dtype)
    opt = torch.optim.Adam(p.values(), lr=a.lr, foreach=False)

    def step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_of(p, xb, yb)
        loss.backward()
        opt.step()
        return loss.detach()

    if a.mode != "eager":
        step = torch.compile(step, mode=None if a.mode == "compile" else "reduce-overhead")
    times, done = train_epochs(rng, x.shape[0], a.batch, a.epochs, a.steps,
                               lambda rows: step(x[rows], onehot[rows]), dev)
    with torch.no_grad():
        _, stats = forward(p, x, False)
        z, _ = forward(p, tx, False, stats)
        acc = float((z.argmax(dim=1) == ty).float().mean())
    warm = times[min(10, len(times) // 2):]
    print(json.dumps({"mode": a.mode, "dtype": a.dtype, "device": str(dev), "steps": done,
                      "median_step_ms": 1000 * statistics.median(warm), "test_accuracy": acc}))


if __name__ == "__main__":
    main()
