"""Where a CUDA process's start-up goes, step by step, on the machine it runs on.

Times, in one fresh Python process each (so nothing is loaded twice), the steps a `tl run
--device cuda` goes through before its first kernel: loading the driver library, cuInit,
creating the context and a stream, loading NVRTC and loading cuBLASLt and opening a handle.
Prints one line per step with milliseconds. Needs only ctypes and the CUDA libraries.

Usage: python3 scripts/cuda_startup.py [repeats]
"""

import subprocess
import sys

STEPS = r"""
import ctypes, time
def lib(names):
    for n in names:
        try:
            return ctypes.CDLL(n, mode=ctypes.RTLD_GLOBAL)
        except OSError:
            pass
    return None
t = time.perf_counter()
out = []
def mark(what):
    global t
    now = time.perf_counter()
    out.append((what, (now - t) * 1e3))
    t = now
cuda = lib(["libcuda.so.1", "libcuda.so"]); mark("load libcuda")
assert cuda.cuInit(0) == 0; mark("cuInit")
dev = ctypes.c_int(); assert cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
ctx = ctypes.c_void_p(); assert cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) == 0
assert cuda.cuCtxSetCurrent(ctx) == 0; mark("primary context")
s = ctypes.c_void_p(); assert cuda.cuStreamCreate(ctypes.byref(s), 1) == 0; mark("stream")
p = ctypes.c_void_p(); assert cuda.cuMemAlloc_v2(ctypes.byref(p), 1 << 20) == 0; mark("first allocation")
nvrtc = lib(["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]); mark("load libnvrtc")
lt = lib(["libcublasLt.so", "libcublasLt.so.13", "libcublasLt.so.12"]); mark("load libcublasLt")
h = ctypes.c_void_p()
if lt is not None:
    assert lt.cublasLtCreate(ctypes.byref(h)) == 0; mark("cublasLtCreate")
print(";".join(f"{w}={ms:.1f}" for w, ms in out))
"""


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows = {}
    for _ in range(repeats):
        r = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True)
        if r.returncode != 0:
            print("probe failed:", r.stderr.strip()[-400:])
            return
        for part in r.stdout.strip().split(";"):
            what, ms = part.split("=")
            rows.setdefault(what, []).append(float(ms))
    for what, ms in rows.items():
        print(f"{what:>18}: " + ", ".join(f"{m:7.1f}" for m in ms) + " ms")


if __name__ == "__main__":
    main()
