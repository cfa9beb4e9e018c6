"""A 1 GiB PyTorch CUDA tensor through a program on the GPU and back: prints PyTorch's and the
program's memory counters, which show the tensor was never copied to the host (run on a GPU
machine; scripts/gpu-python.sh runs it)."""

import torch
import tensorlogic as tl

x = torch.rand(2**28, device="cuda")                     # 1 GiB of float32
torch.cuda.synchronize()
before = torch.cuda.memory_allocated()
prog = tl.Program(source="Y[i] = 2 X[i] + 1\n", device="cuda")
prog["X"] = x
y = prog.get("Y", as_torch=True)
print(f"X: {x.nbytes / 2**20:.0f} MiB on {x.device}; Y: {y.nbytes / 2**20:.0f} MiB on {y.device}, "
      f"right: {bool(torch.allclose(y, 2 * x + 1, rtol=1e-6, atol=1e-6))}")
print(f"PyTorch's allocator: {(torch.cuda.memory_allocated() - before) / 2**20:.1f} MiB more "
      f"(Y lives in the program's memory)")
print("program:", prog.memory_report())
