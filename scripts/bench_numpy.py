#!/usr/bin/env python3
"""Times the cases of crates/tl-backend/examples/bench_cpu.rs with NumPy (float32).

Contractions use numpy.einsum(..., optimize=True); GEMM uses A @ B. Prints one JSON line per
case (median seconds after warm-up), in the same format as the Rust example.
"""
import json
import time

import numpy as np


def timeit(f):
    for _ in range(3):
        f()
    times = []
    start = time.perf_counter()
    while len(times) < 7 or (time.perf_counter() - start < 1.5 and len(times) < 200):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2], len(times)


def report(case, r):
    print(json.dumps({"case": case, "median_s": r[0], "runs": r[1]}), flush=True)


def main():
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.uniform(0.1, 1.1, size=shape).astype(np.float32) * rng.choice(
            np.array([-1.0, 1.0], dtype=np.float32), size=shape
        )

    for n in (256, 512, 1024, 2048):
        a, b = rand(n, n), rand(n, n)
        report(f"gemm {n}", timeit(lambda: a @ b))

    a, b = rand(32, 256, 256), rand(32, 256, 256)
    report("bij,bjk->bik (b=32, 256)", timeit(lambda: np.einsum("bij,bjk->bik", a, b, optimize=True)))

    x, m, y = rand(4096), rand(4096, 4096), rand(4096)
    report("i,ij,j-> (n=4096)", timeit(lambda: np.einsum("i,ij,j->", x, m, y, optimize=True)))

    a, b, c = rand(512, 512), rand(512, 512), rand(512, 512)
    report("ij,jk,kl->il (512)", timeit(lambda: np.einsum("ij,jk,kl->il", a, b, c, optimize=True)))

    a, b = rand(4096, 256), rand(4096, 256)
    report("ij,ik->jk (4096x256)", timeit(lambda: np.einsum("ij,ik->jk", a, b, optimize=True)))

    q, k = rand(8, 512, 64), rand(8, 512, 64)
    report("hpd,hqd->hpq (8, 512, 64)", timeit(lambda: np.einsum("hpd,hqd->hpq", q, k, optimize=True)))


if __name__ == "__main__":
    main()
