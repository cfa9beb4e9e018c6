#!/usr/bin/env bash
# GPU acceptance run, from the repo root on the GPU machine, with the binaries carried in .gpu/
# (built elsewhere by the gpu-bundle tool: .gpu/tl, .gpu/tests/*, .gpu/run-tests.sh).
# Builds nothing. Prints the GPU's name, runs every test executable, then runs every example
# in examples/ (not examples/errors) that has a .expected.jsonl with `--device cuda --json` and
# compares the answers: relations exactly, numbers within 1e-4 relative (or the absolute
# "tolerance" an expected answer carries), as crates/tl/tests/examples.rs does on the CPU.
# Exit status: 0 when everything passed. GPU_CHECK_SKIP_TESTS=1 runs the examples only.
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null \
  || echo "nvidia-smi not available"

status=0
echo "== test executables"
if [ -n "${GPU_CHECK_SKIP_TESTS:-}" ]; then
  echo "skipped (GPU_CHECK_SKIP_TESTS is set)"
elif [ -f .gpu/run-tests.sh ]; then
  bash .gpu/run-tests.sh || status=1
else
  echo "no .gpu/run-tests.sh (run the gpu-bundle tool first)"; status=1
fi

echo "== examples on --device cuda"
if [ ! -x .gpu/tl ]; then
  echo "no .gpu/tl binary"; exit 1
fi
pass=0; fail=0
while IFS= read -r prog; do
  expected="${prog%.tl}.expected.jsonl"
  [ -f "$expected" ] || continue
  got=$(mktemp); err=$(mktemp)
  if ! .gpu/tl run --device cuda --json "$prog" >"$got" 2>"$err"; then
    echo "FAIL $prog (exit status $?)"; sed 's/^/     /' "$err" | tail -15
    fail=$((fail+1)); rm -f "$got" "$err"; continue
  fi
  if python3 - "$got" "$expected" <<'PY'
import json, math, sys

def close(g, w, tol):
    if isinstance(w, bool) or isinstance(g, bool):
        return g == w
    if isinstance(g, (int, float)) and isinstance(w, (int, float)):
        bound = tol if tol is not None else 1e-4 * max(abs(w), 1.0)
        return abs(g - w) <= bound
    if isinstance(g, list) and isinstance(w, list):
        return len(g) == len(w) and all(close(a, b, tol) for a, b in zip(g, w))
    if isinstance(g, dict) and isinstance(w, dict):
        return len(g) == len(w) and all(k in g and close(g[k], v, tol) for k, v in w.items())
    return g == w

def answer(g, w):
    if isinstance(w, dict) and isinstance(w.get("tolerance"), (int, float)):
        w = dict(w); tol = float(w.pop("tolerance"))
        return close(g, w, tol)
    return close(g, w, None)

def lines(path):
    return [l for l in open(path, encoding="utf-8").read().splitlines() if l.strip()]

raw = lines(sys.argv[1])
try:
    got = [json.loads(l) for l in raw]
except ValueError as e:
    print(f"     output is not JSON lines: {e}"); sys.exit(1)
want = [json.loads(l) for l in lines(sys.argv[2])]
if len(got) != len(want):
    print(f"     {len(got)} answers, expected {len(want)}"); sys.exit(1)
bad = [(g, w) for g, w in zip(got, want) if not answer(g, w)]
for g, w in bad[:3]:
    print(f"     got  {json.dumps(g)[:300]}\n     want {json.dumps(w)[:300]}")
sys.exit(1 if bad else 0)
PY
  then echo "ok   $prog"; pass=$((pass+1))
  else echo "FAIL $prog"; fail=$((fail+1))
  fi
  rm -f "$got" "$err"
done < <(find examples -name '*.tl' -not -path 'examples/errors/*' | sort)

echo "examples: $pass passed, $fail failed"
[ $fail -eq 0 ] || status=1
exit $status
