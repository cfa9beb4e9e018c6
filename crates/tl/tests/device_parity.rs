//! The same program gives the same answers on every device: training programs run in float64
//! on the CPU and on the device under test (`TL_TEST_DEVICE`, `cuda` on a GPU machine), and
//! every answer — the loss before and after training, the parameters, values derived from the
//! trained parameters — must agree within 1e-9. On a machine without a GPU the device is the
//! CPU and the test checks that two runs agree exactly (runs are deterministic).

mod common;

/// One recurrent step written out per time step (no virtual index), sequences of 5 bits.
fn unrolled(optimizer: &str) -> String {
    let mut p = String::from(
        "X[e: 16, t: 5] = step(sin(0.9 e t + 1.3 e + 2.1 t))\nCount[e] = X[e, t]\nparam Wh[6, 6] ~ normal(0, 0.3)\nparam Wx[6] ~ normal(0, 0.5)\nparam B[6] = 0\nparam Wo[6] ~ normal(0, 0.3)\nparam Bo = 0\nH0[e, i] = 0 Wx[i] X[e, 0]\n",
    );
    for t in 0..5 {
        p.push_str(&format!(
            "H{}[e, i] = tanh(Wh[i, j] H{t}[e, j] + Wx[i] X[e, {t}] + B[i])\n",
            t + 1
        ));
    }
    p.push_str(&format!(
        "Y[e] = Wo[i] H5[e, i] + Bo\nLoss avg= (Y[e] - Count[e])^2\nLoss?\nminimize Loss with {optimizer}\nLoss?\nWh?\nWx?\nB?\nWo?\nBo?\nH3?\nY?\n"
    ));
    p
}

/// The same network over a virtual index, with answers derived from the trained network.
const VIRTUAL: &str = "X[e: 16, t: 5] = step(sin(0.9 e t + 1.3 e + 2.1 t))\nCount[e] = X[e, t]\nparam Wh[6, 6] ~ normal(0, 0.3)\nparam Wx[6] ~ normal(0, 0.5)\nparam B[6] = 0\nparam Wo[6] ~ normal(0, 0.3)\nparam Bo = 0\nH[e, i, *t+1] = tanh(Wh[i, j] H[e, j, *t] + Wx[i] X[e, t] + B[i])\nY[e] = Wo[i] H[e, i] + Bo\nLoss avg= (Y[e] - Count[e])^2\nLoss?\nminimize Loss with adam(lr=0.03) for 40 steps\nRight[e] = step(0.5 - abs(Y[e] - Count[e]))\nCorrect = Right[e]\nCorrect?\nLoss?\nY?\n";

/// The answers of `tl run --json --dtype f64 --device DEVICE` on `text`, one JSON value each.
fn answers(text: &str, device: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let prog = dir.path().join("p.tl");
    std::fs::write(&prog, text).expect("written");
    let prog = prog.to_string_lossy().into_owned();
    common::tl_json(&["run", "--json", "--dtype", "f64", "--device", device, &prog])
}

/// Asserts that the device's answers equal the CPU's within 1e-9 (relative, or absolute
/// below 1).
fn same_on_both(text: &str) {
    let device = common::device();
    if device == "cpu" {
        eprintln!("TL_TEST_DEVICE is not set: comparing two CPU runs");
    }
    let cpu = answers(text, "cpu");
    let dev = answers(text, &device);
    assert_eq!(cpu.len(), dev.len(), "answer count\n{text}");
    for (c, d) in cpu.iter().zip(&dev) {
        assert_eq!(c["query"], d["query"]);
        let (x, y) = (common::data(c), common::data(d));
        assert_eq!(x.len(), y.len(), "{}", c["query"]);
        for (k, (a, b)) in x.iter().zip(&y).enumerate() {
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                "{}[{k}]: cpu {a}, {device} {b}\n{text}",
                c["query"]
            );
        }
    }
}

#[test]
fn one_sgd_step_leaves_the_same_network_and_loss() {
    same_on_both(&unrolled("sgd(lr=0.05) for 1 steps"));
}

#[test]
fn adam_steps_leave_the_same_network_and_loss() {
    same_on_both(&unrolled("adam(lr=0.03) for 40 steps"));
}

#[test]
fn a_trained_recurrence_over_steps_answers_the_same() {
    same_on_both(VIRTUAL);
}

/// A convolution by index arithmetic (read past the edges: a padded copy seen as a view), batch
/// norm as equations, max pooling by `y / 2` (a view reduced) and mini-batches (index vectors
/// kept from step to step).
const CONVOLUTION: &str = "X[e: 8, y: 6, x: 6] = sin(0.7 e + 1.3 y - 0.4 x)\nT[e] = step(X[e, 2, 3])\nparam K[3, 3, 3] ~ normal(0, 0.5)\nC[e, c, y, x] = K[c, dy, dx] X[e, y + dy - 1, x + dx - 1]\nM[c] avg= C[e, c, y, x]\nD[e, c, y, x] = C[e, c, y, x] - M[c]\nV[c] avg= D[e, c, y, x] D[e, c, y, x]\nH[e, c, y, x] = relu(D[e, c, y, x] / sqrt(V[c] + 0.00001))\nP[e, c, y / 2, x / 2] max= H[e, c, y, x]\nparam W[3, 3, 3] ~ normal(0, 0.3)\nY[e] = W[c, y, x] P[e, c, y, x]\nLoss avg= (Y[e] - T[e])^2\nLoss?\nminimize Loss with adam(lr=0.05) for 6 steps batch e 4\nLoss?\nK?\nW?\nP?\n";

#[test]
fn a_convolution_with_pooling_trained_in_batches_answers_the_same() {
    same_on_both(CONVOLUTION);
}

/// Dropout: the CPU and the device draw the same masks (one counter-based generator), so a
/// network trained with dropout, full-batch (replayed on a device that records) and in
/// mini-batches, ends the same on both.
const DROPOUT: &str = "X[e: 12, i: 5] = sin(0.3 e + 0.7 i)\nT[e] = cos(0.4 e)\nparam W[8, 5] ~ normal(0, 0.4)\nparam B[8] = 0\nparam V[8] ~ normal(0, 0.4)\nH[e, h] = dropout(relu(W[h, i] X[e, i] + B[h]), 0.25)\nY[e] = V[h] H[e, h]\nLoss avg= (Y[e] - T[e])^2\nminimize Loss with adam(lr=0.03) for 30 steps\nLoss?\nW?\nV?\nminimize Loss with adam(lr=0.01) for 9 steps batch e 5\nLoss?\nW?\n";

#[test]
fn a_network_trained_with_dropout_answers_the_same() {
    same_on_both(DROPOUT);
}
