#!/usr/bin/env python3
"""Runs the peer conformance suite of the `datalog-conformance` package against `tl`.

Each case (a YAML file of facts, rules in Datalog text and expected answers) becomes a Soufflé
program: one `.decl` per relation (each attribute `symbol` or `number`, inferred from the facts
and constants and propagated through the variables of the rules), the facts as tab-separated
`.facts` files read with `.input`, the rules as written (`not` becomes Soufflé's `!`), and an
`.output` for every relation the case expects. `tl run case.dl -F DIR -D - --json` prints the
relations, and every expected relation must equal the printed one exactly, as a set of tuples
(numbers as numbers, strings as strings). A case that expects an error passes when `tl` stops
with a diagnostic (a non-zero exit and a `[TL0…]` code, no crash).

Cases outside what a Datalog engine can answer are listed in EXCEPTIONS (by name, with the
reason) or are defeasible-logic theories (defeasible rules, defeaters, superiority: another
logic); both are reported, never counted as passes. A strict-only theory (facts and strict
rules) is Datalog: its `definitely` and `defeasibly` conclusions are both the least model.

Usage: scripts/conformance.py [--tl PATH] [-v]. Exit status 0 when every other case passes,
1 when one fails, 2 when the package is missing.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

# Cases whose YAML lost information when it was collected from another engine's test suite,
# so that no Datalog engine can produce the expected answer from what the case holds.
STRINGLY = ("harvested from Soufflé's minmax test with its numbers turned into strings: the "
            "rules compare `number` attributes (from `succ`) with the string \"6\", a type "
            "error in Soufflé and in tl's front end (TL0039)")
EXCEPTIONS: dict[str, str] = {
    "souffle_minmax_minimum": STRINGLY,
    "souffle_minmax_maximum": STRINGLY,
    "strict_only_souffle_minmax_minimum": STRINGLY,
    "strict_only_souffle_minmax_maximum": STRINGLY,
}

# Dialect notes, applied when a case is turned into a Soufflé program:
# - Nemo reads a variable that occurs only in a negated atom as existentially quantified
#   inside the negation (`not s3(X, P, P)`: no `P` with `s3(X, P, P)`); in Soufflé a named
#   variable there is an error, so the atom becomes a relation of its own:
#   `neg1(X) :- s3(X, P, P).` and `!neg1(X)`.
NEMO_SOURCE = "nemo"
# - Defeasible theories write `~p` for the literal "not p" (a literal of its own, strong
#   negation) and `p` for a proposition; Soufflé has no `~`, and writes `p()`.
STRONG_NEGATION = "neg_"


def relation(name: str) -> str:
    """A theory's predicate name as a Soufflé relation name (`~p` is `neg_p`)."""
    name = name.strip()
    return STRONG_NEGATION + name[1:].strip() if name.startswith("~") else name


def literal(text: str) -> str:
    """A theory's literal (`~flies(X)`, `p`) in Soufflé's syntax (`neg_flies(X)`, `p()`)."""
    text = text.strip()
    negated = text.startswith("not ")
    if negated:
        text = text[4:].strip()
    name, paren, rest = text.partition("(")
    out = relation(name) + (paren + rest if paren else "()")
    return ("!" if negated else "") + out


def find_cases():
    """Every case of the installed package: (category, case), in the package's order."""
    try:
        from datalog_conformance.plugin import discover_yaml_tests, get_tests_dir
    except ImportError as exc:
        print(f"datalog-conformance is not installed ({exc}); pip install datalog-conformance",
              file=sys.stderr)
        sys.exit(2)
    root = get_tests_dir()
    for path, case in discover_yaml_tests():
        yield str(path.relative_to(root).parent), case


ATOM = re.compile(r"(~?)([A-Za-z_][A-Za-z0-9_]*)\s*\(")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INT = re.compile(r"^-?\d+$")


def split_args(text: str, start: int) -> tuple[list[str], int]:
    """The arguments of an atom whose `(` is at `start - 1`, and the index after its `)`."""
    args, depth, cur, i, quoted = [], 0, "", start, False
    while i < len(text):
        c = text[i]
        if quoted:
            cur += c
            if c == "\\" and i + 1 < len(text):
                cur += text[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted, cur = True, cur + c
        elif c == "(":
            depth, cur = depth + 1, cur + c
        elif c == ")" and depth == 0:
            if cur.strip() or args:
                args.append(cur.strip())
            return args, i + 1
        elif c == ")":
            depth, cur = depth - 1, cur + c
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    return args, i


def atoms(text: str) -> list[tuple[str, list[str], int, int]]:
    """(name, args, start, end) of every atom in a rule's text, outside string literals."""
    out, i = [], 0
    while True:
        m = ATOM.search(text, i)
        if not m:
            return out
        if text[: m.start()].count('"') % 2 == 1:
            i = m.end()
            continue
        args, end = split_args(text, m.end())
        out.append((m.group(2), args, m.start(), end))
        i = end


class Types:
    """Union-find over relation columns and rule variables; each class symbol or number."""

    def __init__(self) -> None:
        self.parent: dict[tuple, tuple] = {}
        self.kind: dict[tuple, set[str]] = collections.defaultdict(set)

    def find(self, x: tuple) -> tuple:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: tuple, b: tuple) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb
            self.kind[rb] |= self.kind.pop(ra, set())

    def mark(self, x: tuple, kind: str) -> None:
        self.kind[self.find(x)].add(kind)

    def of(self, x: tuple) -> str:
        kinds = self.kind.get(self.find(x), set())
        return "number" if kinds == {"number"} else "symbol"


def value_kind(v) -> str:
    return "number" if isinstance(v, int) and not isinstance(v, bool) else "symbol"


def term_kind(arg: str) -> str | None:
    if arg.startswith('"'):
        return "symbol"
    if INT.match(arg) or re.search(r"[-+*/%]", arg):
        return "number"
    return None


def souffle_rules(rule: str, nemo: bool, helpers: list[str]) -> str:
    """A rule's text in Soufflé's dialect; Nemo's negations may add rules to `helpers`."""
    text = rule.strip()
    text = re.sub(r"\bnot\s+", "!", text)
    if not text.endswith("."):
        text += "."
    if nemo:
        found = atoms(text)
        negated = [a for a in found if text[: a[2]].rstrip().endswith("!")]
        positive_text = text
        for a in sorted(negated, key=lambda a: -a[2]):
            positive_text = positive_text[: a[2]] + positive_text[a[3]:]
        used = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", positive_text))
        for name, args, start, end in sorted(negated, key=lambda a: -a[2]):
            local = [x for x in args if IDENT.match(x) and x not in used and x != "_"]
            if not local:
                continue
            kept = list(dict.fromkeys(x for x in args if IDENT.match(x) and x in used))
            helper = f"neg{len(helpers) + 1}_{name}"
            helpers.append(f"{helper}({', '.join(kept)}) :- {name}({', '.join(args)}).")
            text = text[:start] + f"{helper}({', '.join(kept)})" + text[end:]
    return text


def program(case, facts: dict, rules: list[str], expected: list[str], folder: Path) -> Path:
    """Writes the case as `case.dl` with its `.facts` files into `folder`."""
    nemo = NEMO_SOURCE in case.source.lower()
    helpers: list[str] = []
    rules = [souffle_rules(r, nemo, helpers) for r in rules]
    rules += helpers
    types = Types()
    arity: dict[str, int] = {}
    for rel, rows in facts.items():
        for row in rows:
            arity.setdefault(rel, len(row))
            for i, v in enumerate(row):
                types.mark(("col", rel, i), value_kind(v))
    for k, rule in enumerate(rules):
        for name, args, _, _ in atoms(rule):
            arity.setdefault(name, len(args))
            for i, arg in enumerate(args):
                col = ("col", name, i)
                kind = term_kind(arg)
                if kind:
                    types.mark(col, kind)
                for v in re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", re.sub(r'"[^"]*"', "", arg)):
                    if v != "_":
                        types.union(col, ("var", k, v))
        for a, b in re.findall(r"\b([A-Za-z_]\w*)\s*(?:<=|>=|!=|=|<|>)\s*([A-Za-z_]\w*)\b", rule):
            types.union(("var", k, a), ("var", k, b))
        for a in re.findall(r"\b([A-Za-z_]\w*)\s*(?:<=|>=|<|>)", rule):
            types.mark(("var", k, a), "number")
    for rel in expected:
        arity.setdefault(rel, 0)
    lines = []
    for rel, n in arity.items():
        cols = ", ".join(f"c{i}: {types.of(('col', rel, i))}" for i in range(n))
        lines.append(f".decl {rel}({cols})")
    for rel, rows in facts.items():
        plain = arity[rel] > 0 and all(
            len(row) == arity[rel]
            and all("\t" not in str(v) and "\n" not in str(v) and str(v) for v in row)
            for row in rows
        )
        if plain and rows:
            text = "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
            (folder / f"{rel}.facts").write_text(text, encoding="utf-8")
            lines.append(f".input {rel}")
        else:
            for row in rows:
                args = ", ".join(str(v) if value_kind(v) == "number" else json.dumps(str(v))
                                 for v in row)
                lines.append(f"{rel}({args}).")
    lines.extend(rules)
    lines.extend(f".output {rel}" for rel in expected)
    path = folder / "case.dl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_tl(tl: str, path: Path) -> tuple[int, str, str]:
    try:
        out = subprocess.run(
            [tl, "run", "--json", "--device", "cpu", "-F", str(path.parent), "-D", "-", str(path)],
            capture_output=True, text=True, timeout=600,
        )
    except subprocess.TimeoutExpired:
        return -1, "", "timed out after 600 s"
    return out.returncode, out.stdout, out.stderr


def answers(stdout: str) -> dict[str, set[tuple]]:
    got: dict[str, set[tuple]] = {}
    for line in stdout.splitlines():
        if line.strip():
            obj = json.loads(line)
            got[obj["query"]] = {tuple(row) for row in obj.get("rows", [])}
    return got


def as_program(case):
    """(facts, rules, expected sections) of a Datalog case, or None with the reason it is not."""
    if case.program is not None:
        return case.program.facts, case.program.rules, {"": case.expect or {}}
    t = case.theory
    if t is None:
        return None, "a KLM property of defeasible reasoning policies, not a Datalog model"
    if t.defeasible_rules or t.defeaters or t.superiority:
        return None, ("defeasible logic (defeasible rules, defeaters, superiority) is another "
                      "logic than Datalog")
    if case.expect_per_policy:
        return None, "answers per defeasible reasoning policy"
    rules = [f"{literal(r.head)} :- {', '.join(literal(b) for b in r.body)}." if r.body
             else f"{literal(r.head)}." for r in t.strict_rules]
    sections = {k: {relation(p): rows for p, rows in v.items()}
                for k, v in (case.expect or {}).items()}
    unknown = set(sections) - {"definitely", "defeasibly"}
    if unknown:
        return None, f"defeasible-logic sections {sorted(unknown)}"
    return {relation(p): rows for p, rows in t.facts.items()}, rules, sections


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_tl = Path(__file__).resolve().parent.parent / "target" / "release" / "tl"
    ap.add_argument("--tl", default=os.environ.get("TL", str(default_tl)))
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this")
    opts = ap.parse_args()
    tally = collections.defaultdict(collections.Counter)
    failures, excepted = [], []
    cache: dict[str, tuple[int, str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n, (category, case) in enumerate(find_cases()):
            if opts.only not in case.name:
                continue
            if case.name in EXCEPTIONS:
                tally[category]["excepted"] += 1
                excepted.append((category, case.name, EXCEPTIONS[case.name]))
                continue
            translated = as_program(case)
            if translated[0] is None:
                tally[category]["excepted"] += 1
                excepted.append((category, case.name, translated[1]))
                continue
            facts, rules, sections = translated
            expected_rels = sorted({p for s in sections.values() for p in s})
            key = json.dumps([facts, rules, expected_rels, case.source], sort_keys=True,
                             default=str)
            if key not in cache:
                folder = Path(tmp) / f"case{n}"
                folder.mkdir()
                path = program(case, facts, rules, expected_rels, folder)
                cache[key] = run_tl(opts.tl, path)
            code, stdout, stderr = cache[key]
            problem = None
            if case.expect_error is not None:
                if code <= 0 or "[TL0" not in stderr or "panicked" in stderr:
                    problem = f"expected an error ({case.expect_error}), got exit {code}"
            elif code != 0:
                headers = [x for x in stderr.splitlines() if "Error" in x or "error" in x]
                problem = f"exit {code}: {' / '.join(headers[:3]) or stderr.strip()[:300]}"
            else:
                got = answers(stdout)
                for section, preds in sections.items():
                    for pred, rows in preds.items():
                        want = {tuple(r) for r in rows}
                        have = got.get(pred, set())
                        if want != have:
                            problem = (f"{section + ' ' if section else ''}{pred}: missing "
                                       f"{sorted(want - have, key=str)[:5]}, extra "
                                       f"{sorted(have - want, key=str)[:5]}")
                            break
                    if problem:
                        break
            if problem:
                tally[category]["failed"] += 1
                failures.append((category, case.name, problem))
            else:
                tally[category]["passed"] += 1
                if opts.verbose:
                    print(f"ok   {category}/{case.name}")
    print("datalog-conformance against tl:")
    for category in sorted(tally):
        c = tally[category]
        print(f"  {category:<24} passed {c['passed']:>3}  failed {c['failed']:>3}  "
              f"excepted {c['excepted']:>3}")
    total = sum(tally.values(), collections.Counter())
    print(f"  {'total':<24} passed {total['passed']:>3}  failed {total['failed']:>3}  "
          f"excepted {total['excepted']:>3}")
    if excepted:
        print("exceptions:")
        for category, name, reason in excepted:
            print(f"  {category}/{name}: {reason}")
    if failures:
        print("FAILURES:")
        for category, name, problem in failures:
            print(f"  {category}/{name}: {problem}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
