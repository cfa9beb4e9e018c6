#!/usr/bin/env bash
# The language on the GPU: from the repo root of the GPU machine, with .gpu/ carried, built by
#   GPU_TESTS="cuda replay gpu_rules semirings weighted placement dropout hostile" GPU_PACK=1 \
#     ../shared/tools/gpu-bundle --workspace
# Builds nothing. Runs
#   1. scripts/gpu-check.sh: every carried test executable and every example in examples/ on
#      `--device cuda`; the integration tests that run `tl` on program texts (min/max
#      semirings, weighted relations, placement and concat, dropout, hostile input) run with
#      TL_TEST_DEVICE=cuda and TL_BIN=.gpu/tl, so their answers come from the GPU;
#   2. the Soufflé example on `--device cuda`: its output files must equal
#      examples/souffle/expected/ byte for byte; and timetable.dl (arithmetic, aggregates),
#      whose printed relations must equal its .expected.jsonl.
# Writes logs under $OUT (default target/gpu-language). Exit status 0 when everything passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu-language}
mkdir -p "$OUT"
[ -f .gpu/bundle.tgz ] && tar xzf .gpu/bundle.tgz -C .gpu
status=0

export TL_BIN="$PWD/.gpu/tl" TL_TEST_DEVICE=cuda
bash scripts/gpu-check.sh > "$OUT/check.log" 2>&1 || status=1
grep -E "^(ok|FAIL|==)|passed|failed" "$OUT/check.log"

echo "== Soufflé example on --device cuda"
rm -rf "$OUT/souffle" && mkdir -p "$OUT/souffle"
if .gpu/tl run --device cuda examples/souffle/routes.dl -F examples/souffle -D "$OUT/souffle" \
    2> "$OUT/souffle.stderr"; then
  for want in examples/souffle/expected/*; do
    got="$OUT/souffle/$(basename "$want")"
    if cmp -s "$want" "$got"; then echo "ok   $(basename "$want") ($(wc -l < "$got") rows, identical)"
    else echo "FAIL $(basename "$want") differs"; diff "$want" "$got" | head -10; status=1
    fi
  done
else
  echo "FAIL routes.dl"; tail -20 "$OUT/souffle.stderr"; status=1
fi
cat "$OUT/souffle.stderr"

echo "== Soufflé arithmetic and aggregates on --device cuda"
if .gpu/tl run --json --device cuda examples/souffle/timetable.dl -F examples/souffle -D - \
    > "$OUT/timetable.jsonl" 2> "$OUT/timetable.stderr" \
  && python3 -c 'import json,sys; a=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; b=[json.loads(l) for l in open(sys.argv[2]) if l.strip()]; sys.exit(a != b)' \
    "$OUT/timetable.jsonl" examples/souffle/timetable.expected.jsonl; then
  echo "ok   timetable.dl ($(wc -l < "$OUT/timetable.jsonl") relations, as expected)"
else
  echo "FAIL timetable.dl"; tail -20 "$OUT/timetable.stderr"; status=1
fi
cat "$OUT/timetable.stderr"
exit $status
