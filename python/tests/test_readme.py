"""The Python examples of README.md and python/README.md run as written and print what their
comments say: each `print(...)  # expected` line's output must equal `expected`."""

import contextlib
import io
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def blocks(readme, start=None, end=None):
    text = (ROOT / readme).read_text(encoding="utf-8")
    if start:
        text = text[text.index(start):text.index(end)]
    return text.split("```python\n")[1:]


def expected(code):
    return [m.group(1).strip() for m in re.finditer(r"^print\(.*\)\s+#\s*(.+)$", code, re.M)]


def run(code, tmp_path):
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<readme>", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(cwd)
    return [line.strip() for line in out.getvalue().splitlines()]


CASES = [("README.md", b) for b in blocks("README.md", "## From Python", "## Editors")]
CASES += [("python/README.md", b) for b in blocks("python/README.md")]


@pytest.mark.parametrize("readme,block", [(r, b.split("```")[0]) for r, b in CASES])
def test_the_readme_examples_print_what_they_say(readme, block, tmp_path):
    if "import torch" in block and not os.environ.get("TL_TORCH_REQUIRED"):
        pytest.importorskip("torch")
    want = expected(block)
    assert want, f"an example of {readme} without expected output"
    got = run(block, tmp_path)
    assert got == want, f"{readme}: printed {got}, the comments say {want}"
