#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu-fusion-bench.sh: the same workloads as the TL programs that
script writes, timed the same way (after warm-up, the median over timed runs of the host time
of one run, the device synchronised after each), in eager mode and under torch.compile.

Usage: bench_fusion_torch.py WORKDIR  (WORKDIR holds the MLP data and edge lists the TL side
reads). Prints one JSON line per case: {"case", "n" or "shape", "mode", "median_ms"}.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

WARMUP = 10
RUNS = 50
DEV = "cuda"
# Training runs in bf16 on both sides: fp16 weights and Adam state overflow at the largest size.
MLP_DTYPE = torch.bfloat16


def median_ms(fn, warmup=WARMUP, runs=RUNS):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def emit(**kw):
    print(json.dumps(kw), flush=True)


def fused_patterns(sizes):
    def relu_linear(x, w, b, r):
        return torch.relu(x @ w + b + r)

    def gelu_linear(x, w, b):
        return F.gelu(x) @ w + b

    for n in sizes:
        g = torch.Generator(device=DEV).manual_seed(n)
        x = torch.randn(n, n, device=DEV, generator=g).half()
        w = (torch.randn(n, n, device=DEV, generator=g) * 0.03).half()
        b = torch.randn(n, device=DEV, generator=g).half()
        r = torch.randn(n, n, device=DEV, generator=g).half()
        for mode in ("eager", "compile"):
            f1 = relu_linear if mode == "eager" else torch.compile(relu_linear)
            f2 = gelu_linear if mode == "eager" else torch.compile(gelu_linear)
            emit(case="relu(XW+b+R)", n=n, mode=mode, median_ms=median_ms(lambda: f1(x, w, b, r)))
            emit(case="gelu(X)W+b", n=n, mode=mode, median_ms=median_ms(lambda: f2(x, w, b)))


def mlp_steps(work, shapes):
    for batch, width in shapes:
        x = torch.from_numpy(np.load(os.path.join(work, f"mlp_{batch}_{width}_x.npy"))).to(DEV, MLP_DTYPE)
        t = torch.from_numpy(np.load(os.path.join(work, f"mlp_{batch}_{width}_t.npy"))).to(DEV, MLP_DTYPE)
        for mode in ("eager", "compile"):
            torch.manual_seed(0)
            model = torch.nn.Sequential(
                torch.nn.Linear(width, width), torch.nn.ReLU(),
                torch.nn.Linear(width, width), torch.nn.ReLU(),
                torch.nn.Linear(width, width),
            ).to(DEV, MLP_DTYPE)
            opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4)

            def step():
                opt.zero_grad(set_to_none=True)
                loss = F.mse_loss(model(x), t)
                loss.backward()
                opt.step()
                return loss.item()

            fn = step if mode == "eager" else torch.compile(step)
            emit(case="mlp adam step", shape=[batch, width], mode=mode, dtype=str(MLP_DTYPE),
                 median_ms=median_ms(fn, warmup=20, runs=100))


def closure(work, sizes):
    for n in sizes:
        edges = np.load(os.path.join(work, f"edges_{n}.npy"))
        a = torch.zeros(n, n, device=DEV, dtype=torch.float16)
        a[torch.from_numpy(edges[:, 0]).to(DEV), torch.from_numpy(edges[:, 1]).to(DEV)] = 1

        def fixpoint():
            r = a.clone()
            while True:
                nxt = torch.clamp(r + (r @ a > 0).half(), max=1)
                if torch.equal(nxt, r):
                    return r
                r = nxt

        for mode in ("eager", "compile"):
            fn = fixpoint if mode == "eager" else torch.compile(fixpoint)
            emit(case="closure", n=n, mode=mode, median_ms=median_ms(fn, warmup=2, runs=5),
                 pairs=int(fixpoint().float().sum().item()))


def main():
    if not torch.cuda.is_available():
        print("bench_fusion_torch.py: torch reports no CUDA device", file=sys.stderr)
        return 1
    work = sys.argv[1]
    fused_patterns([int(s) for s in os.environ.get("FUSED_SIZES", "128 256 512 1024 2048 4096").split()])
    mlp_steps(work, [tuple(map(int, s.split("x"))) for s in os.environ.get("MLP_SHAPES", "64x128 256x512 1024x1024 4096x4096").split()])
    closure(work, [int(s) for s in os.environ.get("CLOSURE_SIZES", "1024 4096 8192").split()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
