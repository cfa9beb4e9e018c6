#!/usr/bin/env python3
"""Times square GEMMs with torch.matmul on the GPU, the same cases as the bench_gemm_cuda example.

For n in 64 ... 8192 and element types f32 (TF32 off), tf32 (f32 with
torch.backends.cuda.matmul.allow_tf32 = True), f16 and bf16: 3 warm-up runs, then 20 timed
samples, each 10 back-to-back matmuls bracketed by CUDA events (the same bursts the TL side
times), reporting the median time per matmul. Prints one JSON line per case:
{"n": ..., "dtype": ..., "ms": ..., "tflops": ...} (2 n^3 flops per GEMM).
"""
import json
import statistics
import sys

import torch

SIZES = [64, 128, 256, 512, 1024, 2048, 4096, 8192]
WARMUP = 3
RUNS = 20
BURST = 10
CASES = [
    ("f32", torch.float32, False),
    ("tf32", torch.float32, True),
    ("f16", torch.float16, False),
    ("bf16", torch.bfloat16, False),
]


def time_matmul(a, b):
    """Median milliseconds per a @ b after warm-up."""
    for _ in range(WARMUP):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    times = []
    for _ in range(RUNS):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(BURST):
            c = torch.matmul(a, b)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / BURST)
        del c
    return statistics.median(times)


def main():
    if not torch.cuda.is_available():
        print("bench_gemm_torch.py: torch reports no CUDA device", file=sys.stderr)
        return 1
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}", file=sys.stderr)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for n in SIZES:
        for name, dtype, tf32 in CASES:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = (torch.rand(n, n, device="cuda", generator=gen) * 2 - 1).to(dtype)
            b = (torch.rand(n, n, device="cuda", generator=gen) * 2 - 1).to(dtype)
            ms = time_matmul(a, b)
            tflops = 2.0 * n**3 / (ms * 1e-3) / 1e12
            print(json.dumps({"n": n, "dtype": name, "ms": round(ms, 6), "tflops": round(tflops, 4)}),
                  flush=True)
            del a, b
    torch.backends.cuda.matmul.allow_tf32 = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
