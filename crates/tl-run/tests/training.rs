//! What a training step recomputes: only the derived tensors that depend on a parameter.
//! Counts equation evaluations over runs of different lengths, so that the per-step cost shows
//! and the fixed costs (the first evaluation, the final one) cancel.

use tl_backend::cpu::CpuBackend;
use tl_backend::DType;
use tl_run::observe::Silent;
use tl_run::{Engine, RunOptions};

mod common;
use common::{minimize_spec, planned};

/// `X` is data computed by an equation (no parameter in it); `Y` and `Loss` depend on `W`.
const PROGRAM: &str = "X[e: 4, i: 3] = sin(0.3 * e + 0.7 * i)\n\
                       param W[3] ~ normal(0, 0.5)\n\
                       Y[e] = W[i] X[e, i]\n\
                       Loss avg= Y[e]^2\n\
                       minimize Loss with sgd(lr=0.1) for 1 steps\n";

/// Equation evaluations of `minimize` with `steps` steps, and the loss after it.
fn train(steps: u64) -> (usize, f64) {
    let (checked, plan) = planned(PROGRAM);
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    engine.evaluate_all().expect("evaluates");
    let mut spec = minimize_spec(&checked);
    spec.count = steps;
    let before = engine.evaluations;
    engine.minimize(&spec, &mut Silent).expect("trains");
    let loss = checked.tensor_named("Loss").expect("Loss");
    let value = engine
        .dense(loss, tl_syntax::Span::default())
        .expect("Loss has a value");
    let host = tl_backend::Backend::download(&backend, &value).expect("downloads");
    (engine.evaluations - before, host.data.to_f64()[0])
}

#[test]
fn a_step_recomputes_only_what_depends_on_a_parameter() {
    let (one, loss_one) = train(1);
    let (three, loss_three) = train(3);
    // Two more steps evaluate `Y` and `Loss` twice more each; `X` is kept from the first.
    assert_eq!(
        three - one,
        2 * 2,
        "evaluations: {one} for 1 step, {three} for 3"
    );
    // And training still trains.
    assert!(
        loss_three < loss_one,
        "loss {loss_one} after 1 step, {loss_three} after 3"
    );
}
