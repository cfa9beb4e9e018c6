"""The character-level GPT of examples/gpt/gpt.tl in PyTorch, for comparisons on the same inputs.

Same architecture, initial weights and data order: TL's generator (scripts/fashion_torch.py's
port of crates/tl-run/src/rng.rs) is drawn in TL's order (the parameters in declaration order,
then one Fisher-Yates shuffle of the windows per epoch). Adam with TL's settings. In bf16 the
step runs under autocast with f32 weights, as TL keeps f32 master weights.

Usage: python3 scripts/gpt_torch.py examples/gpt/data/train.npy [--device cuda]
       [--mode eager|compile|reduce-overhead] [--dtype f32|bf16|f64] [--epochs 10] [--steps N]
Prints the loss over all windows before training, one JSON line per epoch, and one with the
totals (the loss over all windows after training and the median step time).
"""

import argparse
import json
import math
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from fashion_torch import Rng, train_epochs

L, D, H, HD, FF, T, V = 6, 64, 4, 16, 256, 32, 76

# The program's parameters in declaration order: name, shape, initial (std of a normal, or a
# constant).
PARAMS = [
    ("Wte", (V, D), ("normal", 0.02)), ("Wpe", (T, D), ("normal", 0.02)),
    ("G1", (L, D), 1.0), ("B1", (L, D), 0.0),
    ("Wq", (L, D, D), ("normal", 0.02)), ("Wk", (L, D, D), ("normal", 0.02)),
    ("Wv", (L, D, D), ("normal", 0.02)), ("Wo", (L, D, D), ("normal", 0.02)),
    ("G2", (L, D), 1.0), ("B2", (L, D), 0.0),
    ("W1", (L, FF, D), ("normal", 0.02)), ("C1", (L, FF), 0.0),
    ("W2", (L, D, FF), ("normal", 0.02)), ("C2", (L, D), 0.0),
    ("Gf", (D,), 1.0), ("Bf", (D,), 0.0),
]


def init(rng, device, dtype):
    out = {}
    for name, shape, how in PARAMS:
        n = math.prod(shape)
        vals = [how[1] * rng.normal() for _ in range(n)] if isinstance(how, tuple) else [how] * n
        t = torch.tensor(vals, dtype=torch.float64).reshape(shape)
        out[name] = t.to(device=device, dtype=dtype).requires_grad_(True)
    return out


def lnorm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-5)


def loss_of(p, ids, causal):
    """The mean cross-entropy of predicting each next character of the windows `ids`."""
    n = ids.shape[0]
    dt = p["Wte"].dtype
    inp = F.one_hot(ids[:, :T], V).to(dt)
    nxt = F.one_hot(ids[:, 1:], V).to(dt)
    x = inp @ p["Wte"] + p["Wpe"]
    for l in range(L):
        a1 = p["G1"][l] * lnorm(x) + p["B1"][l]
        q = (a1 @ p["Wq"][l].T).view(n, T, H, HD)
        k = (a1 @ p["Wk"][l].T).view(n, T, H, HD)
        v = (a1 @ p["Wv"][l].T).view(n, T, H, HD)
        s = torch.softmax(torch.einsum("nphk,nqhk->nhpq", q, k) / 4 + causal, dim=-1)
        o = torch.einsum("nhpq,nqhk->nphk", s, v).reshape(n, T, D)
        r = o @ p["Wo"][l].T + x
        f = F.gelu((p["G2"][l] * lnorm(r) + p["B2"][l]) @ p["W1"][l].T + p["C1"][l])
        x = f @ p["W2"][l].T + p["C2"][l] + r
    z = torch.softmax((p["Gf"] * lnorm(x) + p["Bf"]) @ p["Wte"].T, dim=-1)
    return (-(nxt * torch.log(z.to(dt) + 1e-9)).sum(dim=-1)).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--mode", default="eager", choices=["eager", "compile", "reduce-overhead"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f64"])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.003)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dev = torch.device(a.device)
    ids = torch.tensor(np.load(a.data).astype(np.int64), device=dev)
    pq = torch.arange(T, device=dev)
    dt = torch.float64 if a.dtype == "f64" else torch.float32
    causal = -1e9 * (pq[None, :] > pq[:, None]).to(dt)
    rng = Rng(a.seed)
    p = init(rng, dev, dt)
    opt = torch.optim.Adam(p.values(), lr=a.lr, foreach=False)
    amp = a.dtype == "bf16"

    def step(batch):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = loss_of(p, batch, causal)
        loss.backward()
        opt.step()
        return loss.detach()

    if a.mode != "eager":
        step = torch.compile(step, mode=None if a.mode == "compile" else "reduce-overhead")
    with torch.no_grad():
        print(json.dumps({"loss_before": float(loss_of(p, ids, causal))}), flush=True)
    times, done = train_epochs(rng, ids.shape[0], a.batch, a.epochs, a.steps,
                               lambda rows: step(ids[rows]), dev)
    with torch.no_grad():
        after = float(loss_of(p, ids, causal))
    warm = times[min(10, len(times) // 2):]
    print(json.dumps({"mode": a.mode, "dtype": a.dtype, "device": str(dev), "steps": done,
                      "median_step_ms": 1000 * statistics.median(warm), "loss_after": after}))


if __name__ == "__main__":
    main()
