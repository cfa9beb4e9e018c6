//! Replayed work on the GPU: a training run that records one step and replays it ends at the
//! same parameters and losses, bit for bit, as a run that queues every step op by op, and replayed
//! evaluations give the values of ordinary ones. Where no CUDA
//! device is usable, the tests are reported as ignored in the test summary.

use tl_backend::cuda::CudaBackend;
use tl_backend::{Backend, DType};
use tl_run::observe::{StepInfo, TrainObserver};
use tl_run::{Engine, RunOptions};
use tl_syntax::Span;

mod common;
use common::{cuda, minimize_spec, planned};

/// Records every step's loss.
struct Losses(Vec<f64>);

impl TrainObserver for Losses {
    fn step(&mut self, info: &StepInfo) {
        self.0.push(info.loss);
    }
}

/// A two-layer network with biases on a fixed input, trained with `optimizer` (a plain hidden
/// layer, or with `hidden` applied to it, e.g. `dropout(…, 0.2)`).
fn program(optimizer: &str) -> String {
    with_hidden(optimizer, "relu(W1[h, i] X[e, i] + B1[h])")
}

fn with_hidden(optimizer: &str, hidden: &str) -> String {
    format!(
        "X[e: 16, i: 9] = sin(0.3 * e + 0.7 * i)\n\
         T[e: 16, c: 3] = cos(0.2 * e - 0.5 * c)\n\
         param W1[33, 9] ~ normal(0, 0.3)\n\
         param B1[33] = 0\n\
         param W2[3, 33] ~ normal(0, 0.3)\n\
         H[e, h] = {hidden}\n\
         Y[e, c] = W2[c, h] H[e, h]\n\
         Loss avg= (Y[e, c] - T[e, c])^2\n\
         minimize Loss with {optimizer} for 25 steps\n"
    )
}

/// The losses of every step, the final parameters and the number of replayed steps.
fn train(be: &CudaBackend, optimizer: &str, replay: bool) -> (Vec<f64>, Vec<Vec<f64>>, u64) {
    train_program(be, &program(optimizer), replay)
}

fn train_program(be: &CudaBackend, src: &str, replay: bool) -> (Vec<f64>, Vec<Vec<f64>>, u64) {
    train_typed(be, src, replay, DType::F32)
}

fn train_typed(
    be: &CudaBackend,
    src: &str,
    replay: bool,
    dtype: DType,
) -> (Vec<f64>, Vec<Vec<f64>>, u64) {
    let (checked, plan) = planned(src);
    let options = RunOptions {
        dtype,
        replay,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, be, options).expect("starts");
    engine.evaluate_all().expect("evaluates");
    let spec = minimize_spec(&checked);
    let mut losses = Losses(Vec::new());
    engine.minimize(&spec, &mut losses).expect("trains");
    let params = ["W1", "B1", "W2"]
        .iter()
        .map(|n| {
            let t = checked.tensor_named(n).expect("param");
            let v = engine.dense(t, Span::default()).expect("value");
            be.download(&v).expect("downloads").data.to_f64()
        })
        .collect();
    (losses.0, params, engine.replayed_steps)
}

fn replayed_steps_train_like_steps_queued_one_by_one() {
    let Some(be) = cuda() else { return };
    for optimizer in [
        "adam(lr=0.01)",
        "adamw(lr=0.01, weight_decay=0.1)",
        "sgd(lr=0.05, momentum=0.9)",
        "sgd(lr=0.05)",
    ] {
        let (l0, p0, r0) = train(&be, optimizer, false);
        let (l1, p1, r1) = train(&be, optimizer, true);
        assert_eq!(r0, 0, "{optimizer}: no replays asked for");
        // Adam and SGD with momentum: an ordinary step first, then one updating in place,
        // then the recorded one and its replays; plain SGD needs no first step.
        let expected = if optimizer == "sgd(lr=0.05)" { 24 } else { 23 };
        assert_eq!(r1, expected, "{optimizer}: replayed steps");
        // The same kernels in the same order, recorded or not: the same numbers, bit for bit.
        assert_eq!(l0, l1, "{optimizer}: losses op by op and replayed");
        assert!(
            l1[24] < l1[0],
            "{optimizer}: it trains ({} -> {})",
            l1[0],
            l1[24]
        );
        assert_eq!(p0, p1, "{optimizer}: parameters op by op and replayed");
    }
}

/// Dropout's masks are drawn from a counter that the recorded step advances in its own
/// memory: a replayed run draws a fresh mask at every step, the same masks as a run queued op by
/// op, so the two end bit for bit alike.
fn replayed_steps_with_dropout_draw_fresh_masks() {
    let Some(be) = cuda() else { return };
    let src = with_hidden(
        "adam(lr=0.01)",
        "dropout(relu(W1[h, i] X[e, i] + B1[h]), 0.3)",
    );
    let (l0, p0, r0) = train_program(&be, &src, false);
    let (l1, p1, r1) = train_program(&be, &src, true);
    assert_eq!((r0, r1), (0, 23), "replayed steps");
    assert_eq!(l0, l1, "losses op by op and replayed");
    assert_eq!(p0, p1, "parameters op by op and replayed");
    // A replay that kept drawing its recorded step's masks would end elsewhere than the run
    // queued op by op, which draws each step's own.
    assert!(l1[24] < l1[0], "it trains ({} -> {})", l1[0], l1[24]);
}

/// In bf16 the optimiser updates f32 master copies and writes the rounded parameters in the
/// same kernel: replayed, that ends bit for bit where the steps queued op by op end.
fn replayed_bf16_steps_update_master_weights() {
    let Some(be) = cuda() else { return };
    let src = program("adam(lr=0.01)");
    let (l0, p0, r0) = train_typed(&be, &src, false, DType::BF16);
    let (l1, p1, r1) = train_typed(&be, &src, true, DType::BF16);
    assert_eq!((r0, r1), (0, 23), "replayed steps");
    assert_eq!(l0, l1, "losses op by op and replayed");
    assert_eq!(p0, p1, "parameters op by op and replayed");
    assert!(l1[24] < l1[0], "it trains ({} -> {})", l1[0], l1[24]);
}

/// Mini-batches (with a shorter last batch, and dropout) replay too: each batch length
/// records its own step, a step copies its examples into that recording's memory, and the
/// run ends bit for bit where the run queued op by op ends.
fn replayed_mini_batches_train_like_batches_queued_one_by_one() {
    let Some(be) = cuda() else { return };
    for hidden in [
        "relu(W1[h, i] X[e, i] + B1[h])",
        "dropout(relu(W1[h, i] X[e, i] + B1[h]), 0.3)",
    ] {
        let src =
            with_hidden("adam(lr=0.01)", hidden).replace("for 25 steps", "for 25 steps batch e 5");
        let (l0, p0, r0) = train_program(&be, &src, false);
        let (l1, p1, r1) = train_program(&be, &src, true);
        assert_eq!(r0, 0, "{hidden}: no replays asked for");
        assert!(r1 >= 15, "{hidden}: {r1} replayed steps");
        assert_eq!(l0, l1, "{hidden}: losses op by op and replayed");
        assert_eq!(p0, p1, "{hidden}: parameters op by op and replayed");
    }
}

/// Every value of `names` after evaluating `src` with `evaluate_again` `times` times, and the
/// plan evaluations the last two of those made.
fn evaluate_repeatedly(
    be: &CudaBackend,
    src: &str,
    names: &[&str],
    times: usize,
) -> (Vec<Vec<f64>>, usize) {
    let (checked, plan) = planned(src);
    let options = RunOptions {
        dtype: DType::F32,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, be, options).expect("starts");
    let mut before = 0;
    for k in 0..times {
        if k + 2 == times {
            before = engine.evaluations;
        }
        engine.evaluate_again().expect("evaluates");
    }
    let values = names
        .iter()
        .map(|n| {
            let t = checked.tensor_named(n).expect("tensor");
            let v = engine.dense(t, Span::default()).expect("value");
            be.download(&v).expect("downloads").data.to_f64()
        })
        .collect();
    (values, engine.evaluations - before)
}

fn replayed_evaluations_give_the_values_of_ordinary_ones() {
    let Some(be) = cuda() else { return };
    let network = "X[e: 13, i: 9] = sin(0.3 * e + 0.7 * i)\n\
                   param W[9, 17] ~ normal(0, 0.3)\n\
                   param B[17] ~ normal(0, 0.1)\n\
                   H[e, h] = gelu(X[e, i]) W[i, h] + B[h]\n\
                   P[e, h.] = softmax(H[e, h])\n";
    let (once, _) = evaluate_repeatedly(&be, network, &["H", "P"], 1);
    let (many, last_two) = evaluate_repeatedly(&be, network, &["H", "P"], 5);
    assert_eq!(
        once, many,
        "replayed values differ from the first evaluation's"
    );
    assert_eq!(
        last_two, 0,
        "the last evaluations replayed, evaluating no plan"
    );
    // A recursive rule's fixpoint reads its convergence back (on the device, that cannot be
    // recorded, and evaluations go on op by op): the same answer every time.
    let closure = "Edge(A, B)\nEdge(B, C)\nEdge(C, D)\nEdge(E, F)\n\
                   Reach(x, y) <- Edge(x, y)\n\
                   Reach(x, z) <- Reach(x, y), Edge(y, z)\n";
    let (once, _) = evaluate_repeatedly(&be, closure, &["Reach"], 1);
    let (many, _) = evaluate_repeatedly(&be, closure, &["Reach"], 4);
    assert_eq!(once, many);
}

/// Runs the tests, each ignored (visibly, in the summary) where no CUDA device is usable.
fn main() {
    common::run_gpu_tests(&[
        (
            "replayed_steps_train_like_steps_queued_one_by_one",
            replayed_steps_train_like_steps_queued_one_by_one,
        ),
        (
            "replayed_steps_with_dropout_draw_fresh_masks",
            replayed_steps_with_dropout_draw_fresh_masks,
        ),
        (
            "replayed_bf16_steps_update_master_weights",
            replayed_bf16_steps_update_master_weights,
        ),
        (
            "replayed_mini_batches_train_like_batches_queued_one_by_one",
            replayed_mini_batches_train_like_batches_queued_one_by_one,
        ),
        (
            "replayed_evaluations_give_the_values_of_ordinary_ones",
            replayed_evaluations_give_the_values_of_ordinary_ones,
        ),
    ]);
}
