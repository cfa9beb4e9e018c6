#!/usr/bin/env bash
# GPU run of the logic work, from the repo root on the GPU machine, with what it needs carried in:
#   .gpu/bundle.tgz            the gpu-bundle tool's output (GPU_PACK=1), with the test executables
#                              `cuda` and `gpu_rules` (GPU_TESTS="cuda gpu_rules")
#   target/ascent-peer/release/ascent_peer
#   target/logic-bench/inputs  (GEN_ONLY=1 scripts/bench-logic.sh)
# Builds nothing. Writes logs into $OUT (or ./gpu-out). In order:
#   1. the test executables (the CUDA backend against the CPU, device strata against the tuple
#      engine), then the examples on --device cuda (scripts/gpu-check.sh);
#   2. where a CUDA process's start-up goes (scripts/cuda_startup.py), the fixed cost of a CUDA
#      run (a one-fact program, and its system calls where strace is installed), and
#      `--profile` of closures and same-generation programs on cuda and on the cpu;
#   3. scripts/gpu-logic.sh on the quick workloads (TL cuda, TL cpu, ascent_par! on every core),
#      then on the heavy ones (ascent_par! within TIMEOUT) and the largest (TL only).
# PARTS (default "tests profiles quick heavy largest") picks which of these to run.
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-tests profiles quick heavy largest}
want() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
out=${OUT:-gpu-out}
mkdir -p "$out"
[ -f .gpu/bundle.tgz ] && tar xzf .gpu/bundle.tgz -C .gpu
export TL=.gpu/tl PEER=target/ascent-peer/release/ascent_peer IN_DIR=target/logic-bench/inputs

if want tests; then
echo "== 1. tests and examples"
bash scripts/gpu-check.sh 2>&1 | tee "$out/check.log" | tail -25
for t in .gpu/*.log; do cp "$t" "$out/" 2>/dev/null; done
fi

if want profiles; then
echo "== 2. fixed cost and profiles"
python3 scripts/cuda_startup.py 3 2>&1 | tee "$out/startup.log"
printf 'A(1)\nA(x)?\n' > /tmp/one.tl
for i in 1 2 3; do /usr/bin/time -f "one fact, cuda: %e s, %M KB" "$TL" run --device cuda /tmp/one.tl >/dev/null; done
"$TL" run --profile --device cuda /tmp/one.tl 2>&1 | grep phases
# Where the rest of a one-fact CUDA process goes: every system call with its time of day.
command -v strace >/dev/null &&
  strace -f -tt -T -o "$out/strace-one.txt" "$TL" run --device cuda /tmp/one.tl >/dev/null 2>&1
for w in tc-rand-1e4-5e4 sg-rand-1e4 tc-rand-1e5 sg-rand-3e4 sg-rand-5e4; do
  for d in ${PROFILE_DEVICES:-cuda cpu}; do
    echo "-- $w on $d"
    /usr/bin/time -f "   whole process: %e s, %M KB" "$TL" run --profile --device "$d" "$IN_DIR/$w/prog.tl" 2>&1
  done
done 2>&1 | tee "$out/profiles.log"
fi

echo "== 3. benchmark"
want quick && RUNS=${RUNS:-3} QUICK=1 RESULTS="$out/quick.jsonl" bash scripts/gpu-logic.sh 2>&1 | tail -30
want heavy && RUNS=1 TIMEOUT=${TIMEOUT:-60} ONLY=tc-rand-1e4-5e4,tc-chain-1e4,sg-rtree-2e4,sg-words \
  RESULTS="$out/heavy.jsonl" bash scripts/gpu-logic.sh 2>&1 | tail -10
want largest && RUNS=${LARGEST_RUNS:-3} ONLY=tc-rand-5e4,sg-rand-3e4,tc-rand-1e5,sg-rand-5e4 SYSTEMS="${LARGEST_SYSTEMS:-cuda cpu}" RESULTS="$out/largest.jsonl" \
  bash scripts/gpu-logic.sh 2>&1 | tail -8
