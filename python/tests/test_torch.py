"""A program inside PyTorch: gradients against finite differences (gradcheck, float64),
through equations, a recursive relaxed rule and the program's own parameters, on the CPU
and, where PyTorch sees a GPU, on CUDA; and a model mixing ``nn.Linear`` layers with a
Tensor Logic block, trained by a PyTorch optimiser."""

import os

import numpy as np
import pytest

import tensorlogic as tl

if os.environ.get("TL_TORCH_REQUIRED"):
    import torch
else:
    torch = pytest.importorskip("torch")

import tensorlogic.torch as tlt  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

LAYER = """
param W[3, 2] ~ normal(0, 0.7)
Y[b, j] = tanh(X[b, i] W[i, j] + S[j])
Z[b] = sig(Y[b, j] Y[b, j] - X[b, 0])
"""

RULE = """
Anc[x, z] = sig(E[x, z] + Anc[x, y] E[y, z] - 0.5, 0.8)
Score = Anc[x, y] Q[x, y]
"""


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_through_equations_and_params(device):
    prog = tl.Program(source=LAYER, dtype="f64", device=device)
    f = tlt.Function(prog, inputs=["X", "S"], outputs=["Y", "Z"], params=["W"])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    s = torch.randn(2, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    if device == "cuda":
        x, s, w = (t.detach().cuda().requires_grad_() for t in (x, s, w))
    assert torch.autograd.gradcheck(f, (x, s, w), eps=1e-6, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_through_a_recursive_relaxed_rule(device):
    prog = tl.Program(source=RULE, dtype="f64", device=device)
    f = tlt.Function(prog, inputs=["E", "Q"], outputs=["Score"])
    g = torch.Generator().manual_seed(2)
    e = (0.3 * torch.randn(4, 4, dtype=torch.float64, generator=g)).requires_grad_()
    q = torch.randn(4, 4, dtype=torch.float64, generator=g).requires_grad_()
    if device == "cuda":
        e, q = (t.detach().cuda().requires_grad_() for t in (e, q))
    assert torch.autograd.gradcheck(f, (e, q), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_outputs_equal_the_programs_own_answers():
    prog = tl.Program(source=LAYER, dtype="f64")
    x = np.linspace(-1, 1, 12).reshape(4, 3)
    s = np.array([0.25, -0.5])
    prog["X"], prog["S"] = x, s
    block = tlt.Module(prog, inputs=["X", "S"], outputs=["Y", "Z"])
    y, z = block(torch.from_numpy(x), torch.from_numpy(s))
    np.testing.assert_allclose(y.detach().numpy(), prog["Y"], rtol=1e-12)
    np.testing.assert_allclose(z.detach().numpy(), prog["Z"], rtol=1e-12)
    # The module's parameter is the program's initial W (drawn from its seed).
    w = block.parameters_by_name()["W"].detach().numpy()
    np.testing.assert_allclose(w, prog.query("W"), rtol=1e-12)


def test_only_tensors_that_need_gradients_get_them():
    prog = tl.Program(source=LAYER, dtype="f64")
    f = tlt.Function(prog, inputs=["X", "S"], outputs=["Z"], params=["W"])
    x = torch.randn(2, 3, dtype=torch.float64)
    s = torch.randn(2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, dtype=torch.float64)
    f(x, s, w).sum().backward()
    assert s.grad is not None and s.grad.shape == (2,)
    assert x.grad is None and w.grad is None


def test_a_model_mixing_linear_layers_and_a_program_trains():
    torch.manual_seed(0)
    block = tlt.Module(
        tl.Program(source="param W[6, 6] ~ normal(0, 0.4)\nparam B[6] = 0\n"
                          "H[b, j] = relu(X[b, i] W[i, j] + B[j]) + X[b, j]\n", dtype="f64"),
        inputs=["X"], outputs=["H"], example=(torch.zeros(4, 6),))
    model = torch.nn.Sequential(torch.nn.Linear(2, 6, dtype=torch.float64), block,
                                torch.nn.Linear(6, 1, dtype=torch.float64))
    x = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64)
    y = torch.tensor([[0], [1], [1], [0]], dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    names = [n for n, _ in model.named_parameters()]
    assert "1.tl_params.W" in names and "1.tl_params.B" in names
    w0 = block.tl_params["W"].detach().clone()
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 < losses[0]
    assert not torch.equal(w0, block.tl_params["W"].detach())
    # The trained values go back to the program.
    block.store()
    np.testing.assert_allclose(block.program.parameters()["W"],
                               block.tl_params["W"].detach().numpy())


def test_errors_raise_tl_errors():
    prog = tl.Program(source=LAYER, dtype="f64")
    f = tlt.Function(prog, inputs=["X", "S"], outputs=["Y"], params=["W"])
    with pytest.raises(TypeError):
        f(torch.zeros(2, 3, dtype=torch.float64))
    bad = tlt.Function(prog, inputs=["X", "S"], outputs=["Nope"], params=["W"])
    with pytest.raises((KeyError, tl.CheckError)):
        bad(torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
            torch.zeros(3, 2, dtype=torch.float64))
    # A shape the program's equations reject is a check error with its place.
    with pytest.raises(tl.CheckError):
        f(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(2, dtype=torch.float64),
          torch.zeros(3, 2, dtype=torch.float64))


def test_dropout_is_on_while_training_and_off_in_eval_mode():
    prog = tl.Program(source="param W[8, 8] ~ normal(0, 0.5)\n"
                             "H[b, j] = dropout(X[b, i] W[i, j], 0.5)\n", dtype="f64")
    x = torch.randn(3, 8, dtype=torch.float64)
    prog["X"] = x.numpy()
    block = tlt.Module(prog, inputs=["X"], outputs=["H"])
    block.eval()
    np.testing.assert_allclose(block(x).detach().numpy(), prog["H"], rtol=1e-12)
    block.train()
    h = block(x)
    assert (h.detach().numpy() == 0).sum() > 0
    h.sum().backward()
    # Gradients see the same dropped units as the values.
    g = block.tl_params["W"].grad.numpy()
    assert np.isfinite(g).all() and np.abs(g).sum() > 0
