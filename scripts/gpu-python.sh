#!/usr/bin/env bash
# The Python package on the GPU machine: installs the wheel carried in .gpu/wheels (built here
# by `maturin build --release -m python/Cargo.toml -o .gpu/wheels`) into the machine's Python,
# which has PyTorch with CUDA and NumPy, and runs python/tests/test_torch.py (gradcheck
# through a program on `device="cuda"` with CUDA tensors, besides the CPU cases) and
# python/tests/test_dlpack.py (CUDA tensors in and out without visiting the host), then
# scripts/dlpack-memory.py (the memory report for a 1 GiB tensor). Uses pytest
# where the machine has it, else calls each test itself. Builds nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --no-deps --no-index --target .gpu/py .gpu/wheels/tensorlogic-*.whl || exit 1
export PYTHONPATH="$PWD/.gpu/py" TL_TORCH_REQUIRED=1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
python3 scripts/dlpack-memory.py
if python3 -c 'import pytest' 2>/dev/null; then
    exec python3 -m pytest -q -rA python/tests/test_torch.py python/tests/test_dlpack.py
fi
exec python3 - <<'PY'
import inspect, sys, traceback
sys.path.insert(0, "python/tests")
import test_torch as t
failed = passed = 0
for name, f in sorted(vars(t).items()):
    if not name.startswith("test_") or not callable(f):
        continue
    runs = [(d,) for d in t.DEVICES] if "device" in inspect.signature(f).parameters else [()]
    for args in runs:
        try:
            f(*args)
            passed += 1
            print("PASSED", name, *args)
        except Exception:
            failed += 1
            print("FAILED", name, *args)
            traceback.print_exc()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
