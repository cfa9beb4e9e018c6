"""The Python package against answers computed here: data round trips, relations, queries,
training, gradients against finite differences, and errors."""

import math
import os

import numpy as np
import pytest

import tensorlogic as tl

ANCESTOR = "Ancestor(x, y) <- Parent(x, y)\nAncestor(x, z) <- Ancestor(x, y), Parent(y, z)\n"


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (2, 1, 4)])
def test_arrays_round_trip_in_every_dtype_and_shape(dtype, shape):
    rng = np.random.default_rng(hash((dtype, shape)) % 2**32)
    x = rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1, 1], size=shape)
    x = x.astype(np.float32 if dtype == "f32" else np.float64)
    prog = tl.Program(source="Y = 2 X\n", dtype=dtype)
    prog["X"] = x
    got = prog["Y"]
    assert got.shape == shape
    bound = 1e-6 if dtype == "f32" else 1e-12
    np.testing.assert_allclose(got, 2 * x.astype(np.float64), rtol=bound)


def test_a_relation_from_tuples_answers_rules_and_queries():
    prog = tl.Program(source=ANCESTOR)
    prog["Parent"] = [("Alice", "Bob"), ("Bob", "Carol"), ("Carol", "Dan")]
    assert prog.query("Ancestor(Alice, x)").rows == [("Bob",), ("Carol",), ("Dan",)]
    assert prog.query("Ancestor(Bob, Dan)")
    assert not prog.query("Ancestor(Dan, Bob)")
    whole = prog["Ancestor"]
    assert len(whole) == 6 and whole.vars == ["_0", "_1"]
    assert "<table>" in whole._repr_html_()


def test_an_integer_array_is_a_relation_and_its_closure_is_exact():
    rng = np.random.default_rng(3)
    edges = rng.integers(-20, 40, size=(80, 2))
    prog = tl.Program(source="Reach(x, y) <- E(x, y)\nReach(x, z) <- Reach(x, y), E(y, z)\nN = Reach(x, y)\n")
    prog["E"] = edges
    # Reference: the transitive closure by repeated joins.
    succ = {}
    for a, b in edges.tolist():
        succ.setdefault(a, set()).add(b)
    reach = set()
    for a in succ:
        seen, todo = set(), [a]
        while todo:
            for b in succ.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        reach |= {(a, b) for b in seen}
    assert set(prog["Reach"].rows) == reach
    assert int(prog["N"]) == len(reach)


def test_a_program_file_reads_its_csv_relative_to_itself(tmp_path):
    (tmp_path / "parent.csv").write_text("Alice,Bob\nBob,Carol\n")
    (tmp_path / "family.tl").write_text('Parent = "parent.csv"\n' + ANCESTOR + "Ancestor(Alice, x)?\n")
    answers = tl.Program(path=tmp_path / "family.tl").run()
    assert answers[0].rows == [("Bob",), ("Carol",)]


def test_training_reports_every_step_and_learns_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    w = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    prog = tl.Program(source="param W[3] ~ normal(0, 0.1)\nparam B = 0\nY[n] = X[n, j] W[j] + B\n"
                             "Loss avg= (Y[n] - T[n])^2\n")
    prog["X"], prog["T"] = x, x @ w + 0.3
    steps = []
    prog.minimize("Loss", "adam(lr=0.1)", 300, on_step=lambda s, t, loss, lr: steps.append((s, t, loss, lr)))
    assert [s for s, *_ in steps] == list(range(1, 301)) and steps[0][1] == 300
    assert steps[-1][2] < 1e-3 * steps[0][2]
    p = prog.parameters()
    np.testing.assert_allclose(p["W"], w, atol=1e-3)
    assert abs(float(p["B"]) - 0.3) < 1e-3
    assert float(prog["Loss"]) < 1e-6


def test_gradients_match_central_finite_differences():
    # One SGD step with lr = 1 moves W by minus its gradient; the loss at W ± h is evaluated
    # with W given as data. Tolerance: the step subtracts in f64, 1e-6 relative.
    body = "H[n, k] = tanh(X[n, j] W[j, k])\nLoss = (H[n, k] - T[n, k])^2\n"
    rng = np.random.default_rng(5)
    x, t = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    train = tl.Program(source="param W[3, 2] = 0.3\n" + body, dtype="f64")
    train["X"], train["T"] = x, t
    # W starts at 0.3 everywhere: the gradient there, against differences around it.
    train.minimize("Loss", "sgd(lr=1)", 1)
    grad = 0.3 - train.parameters()["W"]
    data = tl.Program(source=body, dtype="f64")
    data["X"], data["T"] = x, t
    h = 1e-6
    for i in range(3):
        for j in range(2):
            up, down = np.full((3, 2), 0.3), np.full((3, 2), 0.3)
            up[i, j] += h
            down[i, j] -= h
            data["W"] = up
            f_up = float(data["Loss"])
            data["W"] = down
            f_down = float(data["Loss"])
            fd = (f_up - f_down) / (2 * h)
            assert abs(fd - grad[i, j]) <= 1e-6 * max(1.0, abs(fd)), (i, j, fd, grad[i, j])


def test_run_returns_answers_in_order_and_infinities_survive():
    answers = tl.Program(source="X = [1, 2]\nY = X[i]\nY?\nX?\nZ = log(0)\nZ?\n").run()
    assert float(answers[0]) == 3.0
    np.testing.assert_array_equal(answers[1], [1.0, 2.0])
    assert answers[2] == -math.inf


def test_errors_carry_code_place_and_rendering():
    with pytest.raises(tl.ParseError) as e:
        tl.Program(source="X = [1, 2]\nY[i] = X[i] * (\n")
    assert e.value.code == "TL0003" and e.value.line >= 2 and "Help" in e.value.rendered
    prog = tl.Program(source="X = [1, 2]\nY = [1, 2, 3]\nZ[i] = X[i] + Y[i]\nZ?\n")
    with pytest.raises(tl.CheckError) as e:
        prog.run()
    assert e.value.code.startswith("TL01") and e.value.line == 3
    assert e.value.file == "<source>"
    with pytest.raises(tl.CheckError) as e:
        tl.Program(source="X = [1, 2]\n").query("Nope[i]")
    assert e.value.file == "<python>" and e.value.line == 1
    with pytest.raises(ValueError):
        tl.Program(source="X = [1]\n", device="tpu")


def test_an_exception_in_the_step_callback_is_raised_by_the_run():
    prog = tl.Program(source="param W = 1\nLoss = (W - 3)^2\n")

    def stop(step, total, loss, lr):
        raise RuntimeError(f"stop at {step}")

    with pytest.raises(RuntimeError, match="stop at 1"):
        prog.minimize("Loss", "sgd(lr=0.1)", 5, on_step=stop)


def test_setting_data_of_a_derived_tensor_is_an_error():
    prog = tl.Program(source="X = [1, 2]\nY[i] = 2 X[i]\n")
    prog["Y"] = np.zeros(2)
    with pytest.raises(tl.CheckError):
        prog["Y"]


@pytest.mark.parametrize("readme", ["python/README.md", "README.md"])
def test_the_readme_examples_print_what_they_say(readme, tmp_path, capsys, monkeypatch):
    # Each `print(…)  # shown` line of the README's Python block must print what it shows.
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    text = open(os.path.join(root, readme), encoding="utf-8").read()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    shown = [line.split("#", 1)[1].strip() for line in code.splitlines()
             if line.startswith("print(") and "#" in line]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, readme, "exec"), {})
    printed = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert printed == shown


def test_saved_parameters_read_back_as_safetensors(tmp_path):
    import json
    import struct

    prog = tl.Program(source="param W[2, 3] ~ normal(0, 1)\nLoss = (W[i, j] - 1)^2\n", dtype="f64")
    prog.minimize("Loss", "sgd(lr=0.1)", 5)
    prog.save(tmp_path / "w.safetensors")
    raw = (tmp_path / "w.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    entry = header["W"]
    assert entry["shape"] == [2, 3]
    start, end = entry["data_offsets"]
    kind = {"F64": "<f8", "F32": "<f4"}[entry["dtype"]]
    w = np.frombuffer(raw[8 + n + start:8 + n + end], dtype=kind).reshape(2, 3)
    np.testing.assert_allclose(w, prog.parameters()["W"], rtol=1e-6)
    with pytest.raises(ValueError):
        tl.Program(source="X = [1]\n").save(tmp_path / "none.safetensors")


def test_relations_of_unclear_shape_are_clear_errors():
    prog = tl.Program(source="R(x) <- E(x, y)\nN = R(x)\n")
    with pytest.raises(ValueError, match="arity"):
        prog["E"] = []
    with pytest.raises(ValueError, match="same length"):
        prog["E"] = [(1, 2), (3,)]
    # An empty relation of two columns is accepted; with nothing else sizing its domains, the
    # checker says so when the program runs.
    prog["E"] = np.empty((0, 2), dtype=np.int64)
    with pytest.raises(tl.CheckError) as e:
        prog["R"]
    assert e.value.code == "TL0107"


def test_an_exception_in_the_step_callback_stops_training_after_that_step():
    prog = tl.Program(source="param W = 1\nLoss = (W - 3)^2\n", dtype="f64")
    seen = []

    def stop(step, total, loss, lr):
        seen.append(step)
        if step == 3:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        prog.minimize("Loss", "sgd(lr=0.1)", 50, on_step=stop)
    assert seen == [1, 2, 3]
    # Three steps of W ← W − 0.1·2(W − 3) from 1: 3 − 2·0.8³.
    assert abs(float(prog.parameters()["W"]) - (3 - 2 * 0.8**3)) < 1e-12
