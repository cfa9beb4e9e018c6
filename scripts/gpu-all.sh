#!/usr/bin/env bash
# Everything a GPU session checks and times, in one call on the GPU machine (repo root, binaries
# carried in .gpu/, built elsewhere; builds nothing), cheapest first so that a cut-off run has
# still done the checks:
#   1. the CUDA test executables (.gpu/tests/*) and every example on --device cuda
#      (scripts/gpu-check.sh);
#   2. where the time goes (scripts/gpu-profile.sh: MLP steps, gelu(X)W+b, MiniLM);
#   3. MiniLM accuracy and throughput against PyTorch (scripts/minilm-gpu.sh; needs the model in
#      examples/minilm/model or .gpu/minilm-model);
#   4. the fusion, MLP-step and closure tables against PyTorch (scripts/gpu-fusion-bench.sh).
# Each part's output goes to ${OUT:-/tmp}/<part>.log as well as to the terminal. Set
# GPU_ALL_PARTS to a subset ("check profile minilm fusion") to run fewer.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}
status=0
for part in ${GPU_ALL_PARTS:-check profile minilm fusion}; do
  case $part in
    check) script=scripts/gpu-check.sh ;;
    profile) script=scripts/gpu-profile.sh ;;
    minilm) script=scripts/minilm-gpu.sh ;;
    fusion) script=scripts/gpu-fusion-bench.sh ;;
    *) echo "unknown part: $part"; status=1; continue ;;
  esac
  echo "==== $part ($script), $(date -u +%H:%M:%S)"
  start=$SECONDS
  bash "$script" 2>&1 | tee "$out/$part.log"
  rc=${PIPESTATUS[0]}
  echo "==== $part: exit $rc after $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || status=1
done
exit $status
