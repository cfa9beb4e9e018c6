//! Loops over virtual indices (`S[i, *t+1] = …`): values against a float64 loop written out
//! here, gradients (backpropagation through time) against central finite differences in
//! float64, and memory: a query-only run keeps no steps, so a long loop fits a memory limit
//! that its steps would not.

mod common;

use common::planned;
use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, DType, HostTensor};
use tl_run::{Engine, RunOptions, Value};

fn options() -> RunOptions {
    RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    }
}

fn value_of(engine: &Engine, backend: &CpuBackend, name: &str) -> Vec<f64> {
    let t = engine.program.tensor_named(name).expect("tensor");
    let span = engine.program.tensors[t].span;
    let x = engine.dense(t, span).expect("dense");
    backend.download(&x).expect("download").data.to_f64()
}

/// Checks every parameter element's gradient of `Loss` against a central difference.
fn gradcheck(text: &str) {
    let (checked, plan) = planned(text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, options()).expect("starts");
    let loss = checked.tensor_named("Loss").expect("Loss");
    let (_, grads) = engine.loss_and_gradients(loss).expect("gradients");
    assert!(!grads.is_empty(), "no parameters in\n{text}");
    let h = 1e-6;
    for (p, g) in grads {
        let Some(Value::Dense(t)) = engine.values[p].clone() else {
            panic!("param not dense");
        };
        let base = backend.download(&t).expect("download");
        let values = base.data.to_f64();
        let exact = g.data.to_f64();
        for i in 0..values.len() {
            let mut at = |delta: f64| {
                let mut v = values.clone();
                v[i] += delta;
                let up = backend
                    .upload(&HostTensor::from_f64(base.shape.clone(), v, DType::F64))
                    .expect("upload");
                engine.values[p] = Some(Value::Dense(up));
                engine.loss_value(loss).expect("loss")
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!(
                (fd - exact[i]).abs() <= 1e-6 * fd.abs().max(1.0),
                "d Loss / d {}[{i}]: autograd {} vs finite difference {fd}\n{text}",
                checked.tensors[p].name,
                exact[i]
            );
        }
        engine.values[p] = Some(Value::Dense(t));
    }
}

const DATA: &str = "U = [[0.1, 0.2, -0.3], [0.3, -0.1, 0.2], [0.0, 0.5, 0.1], [-0.4, 0.2, 0.3], [0.2, 0.2, -0.2]]\nY = [0.3, -0.2, 0.1, 0.4]\n";

#[test]
fn an_rnn_matches_a_float64_loop() {
    let text = format!(
        "{DATA}W[i: 4, j: 4] = 0.1 (i + 1) - 0.2 j\nV[i: 4, k: 3] = 0.05 (i - k)\nS[i, *t+1] = tanh(W[i, j] S[j, *t] + V[i, k] U[t, k])\nS?"
    );
    let (checked, plan) = planned(&text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, options()).expect("starts");
    engine.evaluate_all().expect("runs");
    let u = [
        [0.1, 0.2, -0.3],
        [0.3, -0.1, 0.2],
        [0.0, 0.5, 0.1],
        [-0.4, 0.2, 0.3],
        [0.2, 0.2, -0.2],
    ];
    let mut s = [0.0f64; 4];
    for row in u {
        let mut next = [0.0; 4];
        for (i, out) in next.iter_mut().enumerate() {
            let mut z = 0.0;
            for (j, sj) in s.iter().enumerate() {
                z += (0.1 * (i as f64 + 1.0) - 0.2 * j as f64) * sj;
            }
            for (k, uk) in row.iter().enumerate() {
                z += 0.05 * (i as f64 - k as f64) * uk;
            }
            *out = z.tanh();
        }
        s = next;
    }
    let got = value_of(&engine, &backend, "S");
    for (a, b) in got.iter().zip(s) {
        assert!((a - b).abs() < 1e-12, "{got:?} vs {s:?}");
    }
}

#[test]
fn an_rnn_gradient_matches_finite_differences() {
    gradcheck(&format!(
        "{DATA}param W[4, 4] ~ normal(0, 0.5)\nparam V[4, 3] ~ normal(0, 0.5)\nparam H0[4] ~ normal(0, 0.5)\nS[i] = H0[i]\nS[i, *t+1] = tanh(W[i, j] S[j, *t] + V[i, k] U[t, k])\nLoss = (S[i] - Y[i])^2"
    ));
}

#[test]
fn two_states_and_per_step_gates_backpropagate_together() {
    // An LSTM-like cell: gates at `*t` from the state at `*t`, the cell and output at `*t+1`.
    gradcheck(&format!(
        "{DATA}param Wf[4, 4] ~ normal(0, 0.5)\nparam Uf[4, 3] ~ normal(0, 0.5)\nparam Wg[4, 4] ~ normal(0, 0.5)\nparam Ug[4, 3] ~ normal(0, 0.5)\nF[i, *t] = sig(Wf[i, j] H[j, *t] + Uf[i, k] U[t, k])\nG[i, *t] = tanh(Wg[i, j] H[j, *t] + Ug[i, k] U[t, k])\nC[i, *t+1] = F[i, *t] C[i, *t] + (1 - F[i, *t]) G[i, *t]\nH[i, *t+1] = tanh(C[i, *t+1])\nLoss = (H[i] - Y[i])^2 + C[i]^2"
    ));
}

#[test]
fn rows_a_step_reads_pass_their_gradients_back() {
    // The input sequence is computed from a parameter, so each row read at a step gets a
    // gradient; the step also reads the next row and uses the step as a number.
    gradcheck(&format!(
        "{DATA}param E[3, 3] ~ normal(0, 0.5)\nparam W[4, 4] ~ normal(0, 0.5)\nX[t, k] = E[k, m] U[t, m]\nS[i, *t+1] = tanh(0.5 W[i, j] S[j, *t] + X[t, i % 3] - X[t+1, 0] + 0.01 t)\nLoss = (S[i] - Y[i])^2"
    ));
}

#[test]
fn an_earlier_step_is_kept_as_long_as_it_is_read() {
    let text = "F[*t+1: 10] = F[*t] + F[*t-1] + 1\nF?";
    let (checked, plan) = planned(text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, options()).expect("starts");
    engine.evaluate_all().expect("runs");
    // F(-1) = F(0) = 0 before the loop; then 1, 2, 4, 7, 12, 20, 33, 54, 88, 143.
    assert_eq!(value_of(&engine, &backend, "F"), vec![143.0]);
}

/// Default options under a memory limit of `bytes`.
fn within(bytes: u64) -> RunOptions {
    RunOptions {
        max_memory: Some(bytes),
        ..RunOptions::default()
    }
}

#[test]
fn a_query_only_run_keeps_no_steps() {
    let text = "param W[64, 64] ~ normal(0, 0.05)\nS[i, *t+1: 20000] = tanh(W[i, j] S[j, *t] + 0.1)\nY = S[i]";
    let (checked, plan) = planned(text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, within(64 << 20)).expect("starts");
    engine.evaluate_all().expect("runs within the limit");
    assert!(engine.loop_tapes.is_empty());
    let s = checked.tensor_named("S").expect("S");
    assert!(matches!(&engine.values[s], Some(Value::Dense(x)) if x.shape() == [64]));
    let slots = plan.layers.slot_shapes.len();
    let held = engine.values[2 * checked.tensors.len()..]
        .iter()
        .filter(|v| v.is_some())
        .count();
    assert_eq!(held, 0, "{slots} slots, {held} still holding a step");
}

#[test]
fn a_recorded_loop_longer_than_memory_allows_is_an_error_not_an_abort() {
    // Each step keeps three 64-wide results: 20 000 steps are 15 MB, past an 8 MB limit.
    let text = "param W[64, 64] ~ normal(0, 0.05)\nS[i, *t+1: 20000] = tanh(W[i, j] S[j, *t] + 0.1)\nLoss = S[i] S[i]";
    let (checked, plan) = planned(text);
    let backend = CpuBackend::new();
    let mut engine = Engine::new(&checked, &plan, &backend, within(8 << 20)).expect("starts");
    let loss = checked.tensor_named("Loss").expect("Loss");
    let err = engine
        .loss_and_gradients(loss)
        .expect_err("too many steps to keep");
    assert!(
        err.to_string().contains("backpropagation through time"),
        "{err}"
    );
}
