"""Measures what giving a program a large NumPy array and reading it back costs in memory:
peak resident memory before and after `prog["X"] = x` and `prog["X"]`, and after reading a
computed tensor of the same size. Usage: python scripts/zero-copy.py [GiB] (default 1)."""

import resource
import sys

import numpy as np
import tensorlogic as tl


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


gib = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
n = int(gib * 2**30) // 4
x = np.ones(n, dtype=np.float32)
x[::4096] = 2.0
base = peak_mib()
print(f"array: {x.nbytes / 2**20:.0f} MiB float32; peak after making it: {base:.0f} MiB")

prog = tl.Program(source="Y[i] = 2 X[i]\n")
prog["X"] = x
back = prog["X"]
after = peak_mib()
print(f'prog["X"] = x; prog["X"]: peak {after:.0f} MiB (+{after - base:.0f} MiB), '
      f"same memory: {np.shares_memory(back, x)}, equal: {np.array_equal(back, x)}")

y = prog["Y"]
end = peak_mib()
print(f'prog["Y"] (computed, {y.nbytes / 2**20:.0f} MiB): peak {end:.0f} MiB '
      f"(+{end - after:.0f} MiB), right: {bool(y[1] == 2.0 and y[4096 * 3] == 4.0)}")
