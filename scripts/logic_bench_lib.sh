# Shared by scripts/bench-logic.sh and scripts/gpu-logic.sh (sourced, not run).
#
# Expects: RUNS, TIMEOUT, RESULTS, MEM_LIMIT_MB (0: none) and a scratch folder in $scratch.
# Each measured process runs as
#   ( ulimit -v <MEM_LIMIT_MB in KiB>; /usr/bin/time -f '%e %M %U %S' timeout -k 10 $TIMEOUT CMD )
# so GNU time reports the wall seconds and the peak RSS of CMD (the largest RSS of timeout's
# waited-for children is folded into timeout's own by the kernel), also when it is killed. The
# address-space cap makes a runaway process fail its allocation instead of pushing the machine
# into the OOM killer; it is recorded as `oom`. Besides GNU time's wall seconds (10 ms steps) each
# record has clock_s, bash's clock around the whole wrapper (a few ms of fork/exec more).

logic_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# measure SYSTEM THREADS NAME PROGRAM NODES EDGES -- CMD...
# One warm-up and RUNS timed processes of CMD, each appended to $RESULTS; a timeout, an oom or
# an error is recorded once and ends the repetitions (the table shows it in place of a time).
measure() {
  local system=$1 threads=$2 name=$3 program=$4 nodes=$5 edges=$6 i rc t0 t1
  shift 7
  local extra=()
  [ "$threads" != "-" ] && extra=(--threads "$threads")
  for ((i = 0; i <= RUNS; i++)); do
    rc=0
    t0=$EPOCHREALTIME
    (
      [ "${MEM_LIMIT_MB:-0}" -gt 0 ] && ulimit -v $((MEM_LIMIT_MB * 1024))
      exec /usr/bin/time -f '%e %M %U %S' -o "$scratch/time" \
        timeout -k 10 "$TIMEOUT" "$@" < /dev/null > "$scratch/out" 2> "$scratch/err"
    ) || rc=$?
    t1=$EPOCHREALTIME
    python3 "$logic_here/logic_report.py" record "$RESULTS" --system "$system" \
      --workload "$name" --program "$program" --nodes "$nodes" --edges "$edges" --run "$i" \
      --rc "$rc" --time "$scratch/time" --stdout "$scratch/out" --stderr "$scratch/err" \
      --clock-s "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')" \
      --timeout "$TIMEOUT" --mem-limit-mb "${MEM_LIMIT_MB:-0}" "${extra[@]}" || break
  done
}

# machine_summary: one line on the CPU, for the tables' headers.
machine_summary() {
  local model
  model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)
  echo "$(nproc) cores${model:+ ($model)}, $(free -g 2>/dev/null | awk '/Mem:/ {print $2}') GiB"
}
