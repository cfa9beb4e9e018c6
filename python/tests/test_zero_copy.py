"""Arrays cross without copies: an array given to a program is read where it lies and comes
back as a view of itself; a computed tensor is handed over, not copied. Peak memory is
measured in a fresh process (the test process's own peak would hide growth)."""

import json
import subprocess
import sys

import numpy as np

import tensorlogic as tl

MEASURE = r"""
import json, resource, sys
import numpy as np
import tensorlogic as tl
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
x = np.full(int(sys.argv[1]) // 4, 1.5, dtype=np.float32)
base = peak()
prog = tl.Program(source="Y[i] = 2 X[i]\n")
prog["X"] = x
back = prog["X"]
after = peak()
y = prog["Y"]
end = peak()
print(json.dumps({"set": after - base, "computed": end - after,
                  "shared": bool(np.shares_memory(back, x)), "y": float(y[-1])}))
"""


def test_a_large_array_is_neither_copied_in_nor_out():
    size = 256 << 20
    out = subprocess.run([sys.executable, "-c", MEASURE, str(size)], check=True,
                         capture_output=True, text=True).stdout
    m = json.loads(out)
    assert m["shared"]
    assert m["set"] < size // 8, m            # a copy would add the whole array
    assert m["computed"] < size * 5 // 4, m   # Y itself, not Y and a copy of it
    assert m["y"] == 3.0


def test_a_given_array_reads_back_as_a_read_only_view():
    prog = tl.Program(source="Y[i] = X[i] + 1\n", dtype="f64")
    x = np.arange(6, dtype=np.float64)
    prog["X"] = x
    back = prog["X"]
    assert np.shares_memory(back, x) and not back.flags.writeable
    np.testing.assert_array_equal(prog["Y"], x + 1)
    # The program reads the array where it lies, as torch.from_numpy does.
    x[0] = 10.0
    assert prog["Y"][0] == 11.0
    # A program in another float type reads a converted copy.
    single = tl.Program(source="Y[i] = X[i] + 1\n")
    single["X"] = x
    assert single["X"].dtype == np.float32 and not np.shares_memory(single["X"], x)


def test_views_and_other_types_are_copied():
    prog = tl.Program(source="Y[i, j] = X[i, j]\n")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    prog["X"] = x.T                               # not C-contiguous: copied
    np.testing.assert_array_equal(prog["Y"], x.T)
    assert not np.shares_memory(prog["X"], x)
    # Elements not aligned for their type (a buffer read at an odd offset) are copied too.
    raw = np.frombuffer(bytes(1) + np.arange(5, dtype=np.float32).tobytes(), np.float32,
                        count=5, offset=1)
    assert raw.ctypes.data % 4 != 0
    single = tl.Program(source="Y[i] = X[i] + 1\n")
    single["X"] = raw
    np.testing.assert_array_equal(single["Y"], np.arange(5) + 1)
    prog["X"] = np.arange(6, dtype=np.int16).reshape(2, 3).astype(bool)
    assert prog["Y"].dtype == np.float32 and prog["Y"].shape == (2, 3)
