#!/usr/bin/env bash
# Writes the benchmark MLP at batch B, width W into DIR: its data mlp_B_W_x.npy and
# mlp_B_W_t.npy (sine patterns, the same that scripts/bench_fusion_torch.py reads) and the
# program mlp_BxW.tl (three layers, MSE loss, one Adam step). Usage: write_mlp.sh DIR B W
set -euo pipefail
dir=$1 b=$2 w=$3
python3 - "$dir" "$b" "$w" <<'PY'
import sys
import numpy as np
d, b, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
e = np.arange(b)[:, None]; i = np.arange(w)[None, :]
np.save(f"{d}/mlp_{b}_{w}_x.npy", np.sin(e * 0.37 + i * 0.11).astype(np.float32))
np.save(f"{d}/mlp_{b}_{w}_t.npy", np.sin(e * 0.37 + i * 0.11 + 0.5).astype(np.float32))
PY
cat > "$dir/mlp_${b}x${w}.tl" <<TL
X = "mlp_${b}_${w}_x.npy"
T = "mlp_${b}_${w}_t.npy"
param W1[$w, $w] ~ normal(0, 0.03)
param B1[$w] = 0
param W2[$w, $w] ~ normal(0, 0.03)
param B2[$w] = 0
param W3[$w, $w] ~ normal(0, 0.03)
param B3[$w] = 0
H1[e, h] = relu(W1[h, i] X[e, i] + B1[h])
H2[e, g] = relu(W2[g, h] H1[e, h] + B2[g])
Y[e, c] = W3[c, g] H2[e, g] + B3[c]
Loss avg= (Y[e, c] - T[e, c])^2
minimize Loss with adam(lr=0.001, eps=0.0001) for 1 steps
TL
