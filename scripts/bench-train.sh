#!/usr/bin/env bash
# Training throughput on the CPU: steps/s of the XOR MLP (examples/learning/xor.tl's model, 2000
# vs 12000 steps) and of a 3-layer MLP with batch 256, width 512 (benches/mlp_train.tl, 20 vs 70
# steps); the difference of two run lengths cancels start-up. Also PyTorch eager on the same CPU
# and model, if torch is importable. Usage: scripts/bench-train.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p tl
tl=target/release/tl
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import sys, numpy as np
rng = np.random.default_rng(0)
np.save(sys.argv[1] + "/mlp_x.npy", rng.standard_normal((256, 512)).astype(np.float32))
np.save(sys.argv[1] + "/mlp_t.npy", rng.standard_normal((256, 10)).astype(np.float32))
PY
xor() { sed "s/for 2000 steps/for $1 steps/" <<'TL'
X = [[0, 0], [0, 1], [1, 0], [1, 1]]
T = [0, 1, 1, 0]
param W1[8, 2] ~ normal(0, 1)
param B1[8] = 0
param W2[8] ~ normal(0, 1)
param B2 = 0
H[e, h] = tanh(W1[h, i] X[e, i] + B1[h])
Y[e] = sig(W2[h] H[e, h] + B2)
Loss avg= (Y[e] - T[e])^2
minimize Loss with adam(lr=0.05) for 2000 steps
TL
}
xor 2000 > "$tmp/xor_a.tl"; xor 12000 > "$tmp/xor_b.tl"
sed 's/STEPS/20/' benches/mlp_train.tl > "$tmp/mlp_a.tl"; sed 's/STEPS/70/' benches/mlp_train.tl > "$tmp/mlp_b.tl"
python3 - "$tl" "$tmp" <<'PY'
import subprocess, sys, time
tl, d = sys.argv[1], sys.argv[2]
def best(name):
    out = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([tl, "run", "--quiet", f"{d}/{name}"], check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t)
    return min(out)
print(f"tl XOR MLP: {10000 / (best('xor_b.tl') - best('xor_a.tl')):.0f} steps/s")
print(f"tl MLP batch 256 width 512: {50 / (best('mlp_b.tl') - best('mlp_a.tl')):.1f} steps/s")
PY
python3 - "$tmp" <<'PY' || echo "PyTorch not available: no comparison"
import sys, time, numpy as np, torch
torch.set_num_threads(2)
d = sys.argv[1]
def rate(model_step, n):
    for _ in range(5): model_step()
    t = time.perf_counter()
    for _ in range(n): model_step()
    return n / (time.perf_counter() - t)
X = torch.tensor([[0., 0], [0, 1], [1, 0], [1, 1]]); T = torch.tensor([0., 1, 1, 0])
W1 = torch.randn(8, 2, requires_grad=True); B1 = torch.zeros(8, requires_grad=True)
W2 = torch.randn(8, requires_grad=True); B2 = torch.zeros((), requires_grad=True)
opt = torch.optim.Adam([W1, B1, W2, B2], lr=0.05)
def xor_step():
    opt.zero_grad(); Y = torch.sigmoid(torch.tanh(X @ W1.T + B1) @ W2 + B2); ((Y - T) ** 2).mean().backward(); opt.step()
print(f"PyTorch eager XOR MLP: {rate(xor_step, 3000):.0f} steps/s")
x = torch.tensor(np.load(d + "/mlp_x.npy")); t = torch.tensor(np.load(d + "/mlp_t.npy"))
ws = [torch.randn(512, 512) * 0.04, torch.zeros(512), torch.randn(512, 512) * 0.04, torch.zeros(512), torch.randn(10, 512) * 0.04]
ws = [w.requires_grad_() for w in ws]
opt2 = torch.optim.Adam(ws, lr=0.001)
def mlp_step():
    opt2.zero_grad()
    h1 = torch.relu(x @ ws[0].T + ws[1]); h2 = torch.relu(h1 @ ws[2].T + ws[3]); y = h2 @ ws[4].T
    ((y - t) ** 2).mean().backward(); opt2.step()
print(f"PyTorch eager MLP batch 256 width 512: {rate(mlp_step, 50):.1f} steps/s (2 threads)")
PY
