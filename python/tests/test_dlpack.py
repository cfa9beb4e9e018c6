"""PyTorch CUDA tensors in and out through DLPack: a tensor given to a program on the GPU is
read where it lies and a result comes back over the program's device memory; the device's
memory report shows no bytes copied between host and device for them. Runs where PyTorch
sees a GPU and the program can use it (`scripts/gpu-python.sh`); skips elsewhere."""

import re

import pytest

import tensorlogic as tl

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device for PyTorch", allow_module_level=True)


def copied_mib(report):
    m = re.search(r"copied to the device ([\d.]+) MiB, to the host ([\d.]+) MiB", report)
    assert m, report
    return float(m.group(1)), float(m.group(2))


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_a_cuda_tensor_never_visits_the_host(dtype):
    tdtype = torch.float32 if dtype == "f32" else torch.float64
    x = torch.randn(2048, 1024, device="cuda", dtype=tdtype)      # 8 or 16 MiB
    prog = tl.Program(source="Y[i, j] = 2 X[i, j] + 1\nZ[i] = tanh(Y[i, j])\n",
                      device="cuda", dtype=dtype)
    prog["X"] = x
    y = prog.get("Y", as_torch=True)
    z = prog.get("Z", as_torch=True)
    to_device, to_host = copied_mib(prog.memory_report())
    assert y.is_cuda and z.is_cuda and y.dtype == tdtype
    torch.testing.assert_close(y, 2 * x + 1, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(z, torch.tanh((2 * x + 1).sum(1)), rtol=1e-5, atol=1e-5)
    assert to_device < 0.1 and to_host < 0.1, prog.memory_report()
    # The result is still right after the program's memory is reused by later requests.
    keep = y.clone()
    for _ in range(3):
        prog.get("Z", as_torch=True)
    torch.testing.assert_close(y, keep)


def test_a_cuda_tensor_of_another_type_is_converted_on_the_device():
    x = torch.arange(12, device="cuda", dtype=torch.float16).reshape(3, 4)
    prog = tl.Program(source="Y[i] = X[i, j]\n", device="cuda")
    prog["X"] = x
    y = prog.get("Y", as_torch=True)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, x.float().sum(1))
    assert copied_mib(prog.memory_report())[0] < 0.1


def test_a_cuda_tensor_for_a_cpu_program_goes_through_the_host():
    x = torch.randn(5, device="cuda")
    prog = tl.Program(source="Y[i] = X[i] X[i]\n")
    prog["X"] = x
    torch.testing.assert_close(torch.from_numpy(prog["Y"]), (x * x).cpu())
    assert prog.memory_report() is None


def test_a_program_inside_pytorch_keeps_cuda_tensors_on_the_device():
    import tensorlogic.torch as tlt

    prog = tl.Program(source="param W[64, 32] ~ normal(0, 0.1)\n"
                             "H[b, j] = tanh(X[b, i] W[i, j])\n", device="cuda", dtype="f64")
    x = torch.randn(65536, 64, device="cuda", dtype=torch.float64, requires_grad=True)  # 32 MiB
    w = torch.randn(64, 32, device="cuda", dtype=torch.float64, requires_grad=True)
    f = tlt.Function(prog, inputs=["X"], outputs=["H"], params=["W"])
    h = f(x, w)
    assert h.is_cuda
    torch.testing.assert_close(h, torch.tanh(x @ w))
    # The parameter W (16 KiB) crosses as a host array each call; X, H and the gradients of
    # X and H (32 MiB each) never do. The counters run from the program's first call.
    to_device, to_host = copied_mib(prog.memory_report())
    assert to_device < 1.0 and to_host < 1.0, prog.memory_report()
    (h * h).sum().backward()
    to_device, to_host = copied_mib(prog.memory_report())
    assert to_device < 1.0 and to_host < 1.0, prog.memory_report()
    hx = x.detach().requires_grad_()
    hw = w.detach().requires_grad_()
    (torch.tanh(hx @ hw) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, hx.grad)
    torch.testing.assert_close(w.grad, hw.grad)
