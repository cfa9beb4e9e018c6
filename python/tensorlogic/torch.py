"""Tensor Logic programs inside PyTorch models.

:class:`Function` makes a program a differentiable PyTorch function of some of its data
tensors, and :class:`Module` a ``torch.nn.Module`` whose parameters are the program's
``param`` tensors: a loss computed in PyTorch backpropagates through the program's equations
into the PyTorch tensors passed in and into the program's parameters::

    import torch
    import tensorlogic as tl
    import tensorlogic.torch as tlt

    prog = tl.Program(source="param W[4, 3] ~ normal(0, 0.5)\\n"
                             "H[b, j] = relu(X[b, i] W[i, j])\\n", dtype="f64")
    block = tlt.Module(prog, inputs=["X"], outputs=["H"])
    model = torch.nn.Sequential(torch.nn.Linear(5, 4, dtype=torch.float64), block)

The program runs on its own device (``Program(device=...)``). On the GPU, CUDA inputs,
upstream gradients and results cross through DLPack without visiting the host; parameters,
and everything for a program on the CPU, cross as host arrays in the program's float type
(``dtype="f64"`` for ``torch.autograd.gradcheck``). Results come back on the device of the
first tensor passed in. The backward pass
evaluates the program again, recording what the gradients read.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import Program, _error, _native, _torch_tensor

__all__ = ["Function", "Module"]


def _array(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    return np.asarray(t.detach().to("cpu").numpy(), dtype=dtype, order="C")


def _on_device(spec: "Function", t: torch.Tensor) -> bool:
    return t.is_cuda and spec._program.device != "cpu"


def _given(spec: "Function", t: torch.Tensor):
    """A tensor for the program: a CUDA tensor of a program on the GPU as a DLPack capsule
    (read where it lies), anything else as a host array."""
    if _on_device(spec, t):
        t = t.detach().contiguous()
        # The program reads it on its own stream: what PyTorch queued must be done first.
        torch.cuda.current_stream(t.device).synchronize()
        return t.__dlpack__()
    return _array(t, spec._np_dtype)


def _taken(value, device: torch.device, dtype=None) -> torch.Tensor:
    """A result from the program: a DLPack capsule (device memory) or a NumPy array."""
    return _torch_tensor(value).to(device=device, dtype=dtype)


class _Call(torch.autograd.Function):
    """One evaluation of a program: tensors in (named by ``spec``), outputs out. A program on
    the GPU takes CUDA inputs and gives its results through DLPack, so they never visit the
    host; parameters cross as host arrays."""

    @staticmethod
    def forward(ctx, spec: "Function", record: bool, *tensors: torch.Tensor):  # type: ignore[override]
        given, learned = spec._inputs(tensors)
        device = tensors[0].device if tensors else torch.device("cpu")
        try:
            values, _ = spec._program._session.vjp(given, learned, spec.outputs, record=record,
                                                   device=device.type == "cuda")
        except _native.RawError as e:
            raise _error(e) from None
        ctx.spec = spec
        ctx.save_for_backward(*tensors)
        return tuple(_taken(v, device) for v in values)

    @staticmethod
    def backward(ctx, *upstream: torch.Tensor):  # type: ignore[override]
        spec: Function = ctx.spec
        tensors = ctx.saved_tensors
        names = spec._names()
        want = [k for k in range(len(tensors)) if ctx.needs_input_grad[2 + k]]
        if not want:
            return (None,) * (2 + len(tensors))
        given, learned = spec._inputs(tensors)
        seeds = [_given(spec, g) for g in upstream]
        try:
            _, grads = spec._program._session.vjp(
                given, learned, spec.outputs, seeds, [names[k] for k in want],
                device=any(t.is_cuda for t in tensors))
        except _native.RawError as e:
            raise _error(e) from None
        out: List = [None] * len(tensors)
        for k, g in zip(want, grads):
            out[k] = _taken(g, tensors[k].device, tensors[k].dtype)
        return (None, None, *out)


class Function:
    """A program as a differentiable function: ``f(*tensors)`` gives ``inputs`` (data
    tensors of the program) and then ``params`` (its ``param`` tensors) the values passed in,
    in that order, evaluates the program and returns the ``outputs`` (one tensor, or a tuple
    for several). Gradients flow back to every tensor passed in that requires them. While
    ``training`` (the default) and gradients are wanted, the program is evaluated as a
    training step evaluates it (``dropout`` on); otherwise as a run evaluates it."""

    def __init__(self, program: Program, inputs: Sequence[str], outputs: Sequence[str],
                 params: Sequence[str] = ()):
        if not outputs:
            raise ValueError("name at least one output")
        self._program = program
        self.inputs = list(inputs)
        self.params = list(params)
        self.outputs = list(outputs)
        self._np_dtype = np.float64 if program.dtype == "f64" else np.float32
        self.training = True

    def _names(self) -> List[str]:
        return self.inputs + self.params

    def _inputs(self, tensors: Sequence[torch.Tensor]) -> Tuple[list, list]:
        k = len(self.inputs)
        given = [(n, _given(self, t)) for n, t in zip(self.inputs, tensors[:k])]
        learned = [(n, _array(t, self._np_dtype)) for n, t in zip(self.params, tensors[k:])]
        return given, learned

    def __call__(self, *tensors: torch.Tensor):
        expected = len(self.inputs) + len(self.params)
        if len(tensors) != expected:
            raise TypeError(f"expected {expected} tensors ({', '.join(self._names())}), "
                            f"got {len(tensors)}")
        # Evaluated as the backward pass will evaluate it (dropout on) when gradients will be
        # asked for, else as a run evaluates it.
        record = self.training and torch.is_grad_enabled() and any(
            t.requires_grad for t in tensors)
        out = _Call.apply(self, record, *tensors)
        return out[0] if len(out) == 1 else out


class Module(torch.nn.Module):
    """A program as a ``torch.nn.Module``: ``forward(*tensors)`` gives the ``inputs`` their
    values and returns the ``outputs``; the program's ``param`` tensors are the module's
    parameters (``module.tl_params[name]``), starting from the program's own initial values
    (or what it learned), so PyTorch optimisers train them with the rest of the model.
    Their shapes come from checking the program with the data it has; where they depend on
    the inputs' shapes, ``example`` gives inputs to check it with. :meth:`store` hands the
    trained values back to the program."""

    def __init__(self, program: Program, inputs: Sequence[str], outputs: Sequence[str],
                 example: Optional[Sequence[torch.Tensor]] = None):
        super().__init__()
        self.program = program
        dtype = torch.float64 if program.dtype == "f64" else torch.float32
        np_dtype = np.float64 if program.dtype == "f64" else np.float32
        given = [(n, _array(t, np_dtype)) for n, t in zip(inputs, example or ())]
        try:
            initial = program._session.initial_parameters(given)
        except _native.RawError as e:
            err = _error(e)
            if not example:
                err.args = (f"{err.args[0]}\n(the parameters' shapes are found by checking the "
                            f"program; where they depend on the inputs' shapes, pass example "
                            f"inputs: Module(..., example=(x,)))",)
            raise err from None
        self.tl_params = torch.nn.ParameterDict(
            {name: torch.nn.Parameter(_torch_tensor(v).to(dtype))
             for name, v in initial if name not in inputs})
        self._function = Function(program, inputs, outputs, list(self.tl_params.keys()))

    def forward(self, *tensors: torch.Tensor):
        self._function.training = self.training
        return self._function(*tensors, *self.tl_params.values())

    def store(self) -> None:
        """Makes the module's current parameter values the program's learned values (its
        later queries, runs and :meth:`Program.save` see them)."""
        for name, p in self.tl_params.items():
            self.program._session.set_parameter(name, _array(p, self._function._np_dtype))

    def parameters_by_name(self) -> Dict[str, torch.Tensor]:
        """The program's parameters, by their names in the program."""
        return dict(self.tl_params.items())
