"""Tensor Logic from Python.

A :class:`Program` holds a Tensor Logic program (its text or a ``.tl`` file), the data
given to it from Python, and what training learned. Rules, equations and training run in
the same Rust engine as ``tl run``::

    import numpy as np
    import tensorlogic as tl

    prog = tl.Program(source="Ancestor(x, y) <- Parent(x, y)\\n"
                             "Ancestor(x, z) <- Ancestor(x, y), Parent(y, z)\\n")
    prog["Parent"] = [("Alice", "Bob"), ("Bob", "Carol")]
    prog.query("Ancestor(Alice, x)").rows      # [('Bob',), ('Carol',)]

Values cross as NumPy arrays (dense tensors) and :class:`Relation` rows (relations).
Errors are :class:`TLError` subclasses carrying the diagnostic's code, message, line and
column, and its rendering with the source line.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _native

__all__ = [
    "Program",
    "Relation",
    "TLError",
    "ParseError",
    "CheckError",
    "PlanError",
    "RunError",
]


class TLError(Exception):
    """A diagnostic from the engine: ``code`` (``TL0101``), ``message``, ``file`` (the
    program's path, ``<source>`` for text, ``<python>`` for a query; empty where the error
    has no place), ``line`` and ``column`` (1-based; 0 where the error has no place in the
    text) and ``rendered`` (the report ``tl`` prints, with the source line and a hint)."""

    def __init__(self, code: str, message: str, line: int, column: int, rendered: str,
                 file: str = ""):
        super().__init__(f"[{code}] {message}" + (f" (line {line}, column {column})" if line else ""))
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.rendered = rendered


class ParseError(TLError):
    """The text is not a program (codes ``TL00xx``)."""


class CheckError(TLError):
    """Names, shapes, domains or types do not fit (``TL01xx``)."""


class PlanError(TLError):
    """No evaluation order fits (``TL02xx``)."""


class RunError(TLError):
    """Evaluation or training failed (``TL03xx``)."""


_BY_PREFIX = {"TL00": ParseError, "TL01": CheckError, "TL02": PlanError, "TL03": RunError}


def _error(raw: BaseException) -> TLError:
    code, message, line, column, rendered, file = raw.args
    cls = _BY_PREFIX.get(code[:4], TLError)
    return cls(code, message, line, column, rendered, file)


class Relation:
    """The rows of a relation query: ``vars`` names the columns, ``rows`` holds tuples of
    Python values (``int`` or ``str``), sorted. A ground query (no variables) is true when it
    has its one empty row; ``bool(relation)`` says whether any row matched."""

    def __init__(self, query: str, vars: Sequence[str], rows: Iterable[Sequence[Any]]):
        self.query = query
        self.vars = list(vars)
        self.rows = [tuple(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Relation):
            return self.vars == other.vars and self.rows == other.rows
        if isinstance(other, (list, set, tuple)):
            return set(self.rows) == {tuple(r) for r in other}
        return NotImplemented

    def __repr__(self) -> str:
        return f"Relation({self.query!r}, vars={self.vars}, rows={self.rows})"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{_html(v)}</th>" for v in self.vars)
        body = "".join(
            "<tr>" + "".join(f"<td>{_html(x)}</td>" for x in r) + "</tr>" for r in self.rows[:200]
        )
        more = f"<p>… {len(self.rows) - 200} more rows</p>" if len(self.rows) > 200 else ""
        return (f"<p><code>{_html(self.query)}</code>: {len(self.rows)} rows</p>"
                f"<table><tr>{head}</tr>{body}</table>{more}")


def _html(x: Any) -> str:
    return str(x).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_SPECIAL = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _answer(line: str) -> Union[np.ndarray, Relation]:
    a = json.loads(line)
    if "rows" in a:
        return Relation(a["query"], a["vars"], a["rows"])
    data = [_SPECIAL.get(x, x) if isinstance(x, str) else x for x in a["data"]]
    return np.asarray(data, dtype=np.float64).reshape(a["shape"])


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "__dlpack__")


def _torch_tensor(value: Any) -> Any:
    """A PyTorch tensor over a result: a DLPack capsule's device memory, or a NumPy array's
    memory (copied only when the array is read-only, a view of data given from Python)."""
    import torch

    if isinstance(value, np.ndarray):
        return torch.from_numpy(value if value.flags.writeable else value.copy())
    return torch.from_dlpack(value)


def _floats(value: Any) -> np.ndarray:
    """A float64 or float32 array as it is (read in place where C-contiguous); anything else
    converted to float32."""
    arr = np.asarray(value)
    if arr.dtype in (np.float64, np.float32):
        return arr
    return arr.astype(np.float32)


def _columns(rows: Sequence[Sequence[Any]], arity: Optional[int] = None) -> Tuple[List[Optional[List[int]]], List[Optional[List[str]]]]:
    if arity is None:
        if not rows:
            raise ValueError("an empty list does not say the relation's arity: pass "
                             "np.empty((0, k), dtype=np.int64) for an empty relation of k columns")
        arity = len(rows[0])
    for r in rows:
        if len(r) != arity:
            raise ValueError(f"every tuple of a relation has the same length: {tuple(r)!r} "
                             f"has {len(r)}, the first has {arity}")
    ints: List[Optional[List[int]]] = []
    symbols: List[Optional[List[str]]] = []
    for k in range(arity):
        column = [r[k] for r in rows]
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in column):
            ints.append([int(x) for x in column])
            symbols.append(None)
        else:
            ints.append(None)
            symbols.append([str(x) for x in column])
    return ints, symbols


class Program:
    """A Tensor Logic program: from ``source`` (its text) or ``path`` (a ``.tl`` file),
    run on ``device`` (``"cpu"``, ``"cuda"`` or ``"auto"``) in ``dtype`` (``"f32"``,
    ``"f64"``, ``"f16"``, ``"bf16"``) with random ``seed``. The text is parsed at once (a
    syntax error raises :class:`ParseError` here); it is checked when it first runs, since
    its data may still be given from Python, or when :meth:`check` is called."""

    def __init__(self, source: Optional[str] = None, path: Optional[Union[str, os.PathLike]] = None,
                 device: str = "cpu", dtype: str = "f32", seed: int = 0):
        if (source is None) == (path is None):
            raise ValueError("give either source= or path=")
        if path is not None:
            path = os.fspath(path)
            with open(path, encoding="utf-8") as f:
                source = f.read()
            name, folder = path, os.path.dirname(os.path.abspath(path))
        else:
            name, folder = "<source>", os.getcwd()
        self.dtype = dtype
        self.device = device
        try:
            self._session = _native.Session(source, name, folder, device, dtype, seed)
        except _native.RawError as e:
            raise _error(e) from None

    def check(self) -> None:
        """Checks the program with the data given so far (names, shapes, domains, types) and
        plans it, raising the first :class:`TLError` found."""
        try:
            self._session.check()
        except _native.RawError as e:
            raise _error(e) from None

    def __setitem__(self, name: str, value: Any) -> None:
        """Gives tensor ``name`` its data in place of the program's data statement: a float
        (or bool) NumPy array, or anything ``np.asarray`` makes one of, is a dense tensor; an
        integer array of shape ``(n, k)`` or a list of tuples is a relation of ``n`` tuples
        (integers and strings as its elements). A C-contiguous float32 or float64 array is
        read where it lies, not copied: changing it later changes what the program reads
        (as with ``torch.from_numpy``)."""
        try:
            if _is_torch(value):
                if value.is_cuda and self.device != "cpu":
                    self._set_cuda(name, value)
                    return
                value = value.detach().cpu().numpy()
            if isinstance(value, np.ndarray) and value.dtype.kind in "iu" and value.ndim == 2:
                self._session.set_rows(name, value.shape[0], *_columns(value.tolist(), value.shape[1]))
            elif isinstance(value, np.ndarray) or isinstance(value, (int, float)):
                self._session.set_array(name, _floats(value))
            else:
                rows = [tuple(r) if isinstance(r, (tuple, list)) else (r,) for r in value]
                if rows and isinstance(rows[0][0], float):
                    self._session.set_array(name, np.asarray(value, dtype=np.float32))
                else:
                    self._session.set_rows(name, len(rows), *_columns(rows))
        except _native.RawError as e:
            raise _error(e) from None

    def _set_cuda(self, name: str, value: Any) -> None:
        import torch

        value = value.detach()
        if not value.is_floating_point():
            value = value.float()
        value = value.contiguous()
        # The program reads it on its own stream: what PyTorch queued must be done first.
        torch.cuda.current_stream(value.device).synchronize()
        self._session.set_dlpack(name, value.__dlpack__())

    def get(self, name: str, as_torch: bool = False) -> Any:
        """``prog[name]``, or with ``as_torch=True`` a PyTorch tensor: on a GPU a CUDA tensor
        over the program's own device memory (handed over through DLPack, never copied to
        the host), else one sharing the NumPy array's memory."""
        if not as_torch:
            return self[name]
        value = self._value(name, device=True)
        return self.query(name) if value is None else _torch_tensor(value)

    def _value(self, name: str, device: bool) -> Any:
        """A real-valued tensor's value without a copy (``None`` for what a query answers)."""
        try:
            return self._session.values([name], device=device)[0]
        except _native.RawError as e:
            raise _error(e) from None
        except KeyError:
            return None

    def memory_report(self) -> Optional[str]:
        """The GPU's memory report after the last evaluation: memory in use and at peak,
        allocations, and the bytes copied to and from the host, counted since the program's
        first evaluation (the GPU and its memory pool serve all of them); ``None`` on the
        CPU."""
        return self._session.memory_report()

    def __getitem__(self, name: str) -> Union[np.ndarray, Relation]:
        """The value of tensor ``name`` (after evaluating what it depends on): a NumPy array,
        or a :class:`Relation` for a relation. A real-valued tensor comes back without a
        copy: an array given with ``prog[name] = array`` as a read-only view of that array,
        a computed one in memory the engine hands over."""
        value = self._value(name, device=False)
        return self.query(name) if value is None else value

    def query(self, query: str) -> Union[np.ndarray, Relation]:
        """Answers one query over the program's definitions (its own commands do not run):
        ``"Ancestor(Alice, x)"``, ``"W"``, ``"Y[0, i]"``."""
        return self._instead(query.strip().rstrip("?") + "?\n")[-1]

    def run(self, on_step: Optional[Callable[[int, int, float, float], Any]] = None) -> List[Union[np.ndarray, Relation]]:
        """Runs the program's commands (queries, ``minimize``) in order and returns the
        answers; ``on_step(step, total, loss, lr)`` is called after every training step."""
        try:
            return [_answer(line) for line in self._session.run(on_step)]
        except _native.RawError as e:
            raise _error(e) from None

    def minimize(self, loss: str, optimizer: str = "adam(lr=0.01)", steps: int = 100,
                 on_step: Optional[Callable[[int, int, float, float], Any]] = None) -> None:
        """Trains the parameters ``loss`` depends on, as ``minimize LOSS with OPTIMIZER for
        STEPS steps`` would; later queries and runs see the trained values."""
        self._instead(f"minimize {loss} with {optimizer} for {int(steps)} steps\n", on_step)

    def parameters(self) -> dict:
        """The learned tensors (after training), by name, as NumPy arrays."""
        return {n: np.asarray(v, dtype=np.float64).reshape(s) for n, s, v in self._session.parameters()}

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes the learned tensors to a ``.safetensors`` file (written atomically), by
        their names, as ``"PATH" = W, B`` in the program would; PyTorch reads it with
        ``safetensors.torch.load_file``."""
        names = list(self.parameters())
        if not names:
            raise ValueError("no learned tensors yet: run or train the program first")
        path = os.path.abspath(os.fspath(path)).replace("\\", "\\\\").replace('"', '\\"')
        self._instead(f'"{path}" = {", ".join(names)}\n')

    def _instead(self, commands: str, on_step=None) -> list:
        try:
            return [_answer(line) for line in self._session.run_instead(commands, on_step)]
        except _native.RawError as e:
            raise _error(e) from None
