//! Layer recursion: a recursive group whose equations write layer row `l + 1` (or `l`) from
//! rows up to it runs one pass per layer. Counts equation evaluations to show the cost is one
//! per equation and layer (linear in the depth), and checks the values against the same
//! program run as a fixpoint.

use tl_backend::cpu::CpuBackend;
use tl_backend::{Backend, DType};
use tl_run::{Engine, RunOptions};
mod common;

use common::planned;

/// A residual stack of `layers` tanh layers; `Out` is the last layer's output.
fn stack(layers: usize) -> String {
    format!(
        "param W[{layers}, 4, 4] ~ normal(0, 0.7)\n\
         V = [0.5, -1, 0.25, 2]\n\
         X[0, i] = V[i]\n\
         A[l, i] = W[l, i, j] X[l, j]\n\
         H[l, i] = tanh(A[l, i]) + X[l, i]\n\
         X[l+1, i] = H[l, i]\n\
         Out[i] = H[{}, i]\n",
        layers - 1
    )
}

/// Runs a program's definitions; returns `Out`, the number of equation evaluations, and how
/// many recursive strata the plan runs layer by layer. `layered: false` forces the fixpoint.
fn run(text: &str, layered: bool) -> (Vec<f64>, usize, usize) {
    let (checked, mut plan) = planned(text);
    if !layered {
        plan.layers.strata.clear();
    }
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        tolerance: 0.0,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    engine.evaluate_all().expect("evaluates");
    let out = checked.tensor_named("Out").expect("Out");
    let value = engine
        .dense(out, tl_syntax::Span::default())
        .expect("Out has a value");
    let host = backend.download(&value).expect("downloads");
    (
        host.data.to_f64(),
        engine.evaluations,
        plan.layers.strata.len(),
    )
}

#[test]
fn a_layer_recursion_runs_each_equation_once_per_layer() {
    for layers in [2, 3, 6, 12] {
        let (out, evaluations, strata) = run(&stack(layers), true);
        assert_eq!(strata, 1, "the stack is planned layer by layer");
        // H once per layer, X once per row (row 0 from V, rows 1..=layers from H: X holds
        // one row more than H), and Out once. A is read only by H, in the same row, so its
        // plan is spliced into H's.
        assert_eq!(evaluations, 2 * layers + 2, "{layers} layers");
        let (fixpoint, fixpoint_evaluations, _) = run(&stack(layers), false);
        for (a, b) in out.iter().zip(&fixpoint) {
            assert!(
                (a - b).abs() <= 1e-12,
                "{layers} layers: {out:?} vs {fixpoint:?}"
            );
        }
        // The fixpoint evaluates every equation over all layers in each of its rounds, and
        // needs a round per layer (plus one to see that nothing moves).
        assert!(
            fixpoint_evaluations > (layers + 1) * 3,
            "{layers} layers: {fixpoint_evaluations} fixpoint evaluations"
        );
    }
}

#[test]
fn a_read_of_a_later_layer_or_a_same_row_cycle_keeps_the_fixpoint() {
    // X[l] reads X[l+1]: not a forward recursion over layers.
    let backward = "V = [1, 2]\nW = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]\n\
                    X[l, i] = V[i] + W[l, i] X[l+1, i] / 2\nOut[i] = X[0, i]\n";
    let (_, _, strata) = run(backward, true);
    assert_eq!(strata, 0);
    // A and B read each other in the same row.
    let cycle = "V = [1, 2]\nW = [[0.1, 0.2], [0.3, 0.4]]\n\
                 A[l, i] = V[i] + W[l, i] B[l, i] / 2\nB[l, i] = A[l, i] / 3\nOut[i] = A[1, i]\n";
    let (out, _, strata) = run(cycle, true);
    assert_eq!(strata, 0);
    // A = V + W A / 6 at the fixpoint.
    let want = [1.0 / (1.0 - 0.3 / 6.0), 2.0 / (1.0 - 0.4 / 6.0)];
    for (a, b) in out.iter().zip(want) {
        assert!((a - b).abs() < 1e-9, "{out:?}");
    }
}

/// Two attention layers written as separate equations (`A = softmax(…)`, `C = A V`), with a
/// padding mask, a residual and a layer norm written out step by step; `extra` is appended to
/// the program (a query, say).
fn attention_stack(extra: &str) -> String {
    format!(
        "param Wq[2, 4, 4] ~ normal(0, 0.7)\n\
         param Wk[2, 4, 4] ~ normal(0, 0.7)\n\
         param Wv[2, 4, 4] ~ normal(0, 0.7)\n\
         param E[5, 4] ~ normal(0, 1)\n\
         M = [0, 0, 0, -1000000000, 0]\n\
         X[0, p, d] = E[p, d]\n\
         Q[l, p, k] = Wq[l, k, d] X[l, p, d]\n\
         K[l, p, k] = Wk[l, k, d] X[l, p, d]\n\
         V[l, p, k] = Wv[l, k, d] X[l, p, d]\n\
         A[l, p, p'.] = softmax(Q[l, p, k] K[l, p', k] / 2 + M[p'])\n\
         C[l, p, k] = A[l, p, p'] V[l, p', k]\n\
         R[l, p, d] = C[l, p, d] + X[l, p, d]\n\
         Mu[l, p] avg= R[l, p, d]\n\
         Z[l, p, d] = R[l, p, d] - Mu[l, p]\n\
         Va[l, p] avg= Z[l, p, d]^2\n\
         Y[l, p, d] = Z[l, p, d] / sqrt(Va[l, p] + 0.00001)\n\
         X[l+1, p, d] = Y[l, p, d]\n\
         Out[p, d] = C[1, p, d] + X[1, p, d]\n{extra}"
    )
}

#[test]
fn attention_and_layer_norm_written_step_by_step_run_as_few_nodes() {
    let text = attention_stack("");
    let (checked, plan) = planned(&text);
    let stratum = &plan.layers.strata[0];
    let row = |name: &str| {
        let t = checked.tensor_named(name).expect("tensor");
        stratum
            .equations
            .iter()
            .find(|re| re.target == t)
            .expect("row equation")
    };
    for name in ["Q", "K", "V", "A"] {
        assert!(row(name).plan.inlined, "{name} is spliced into its reader");
    }
    assert!(!row("C").plan.inlined, "C is read by X and Out");
    let fused = &row("C").plan.fused;
    assert!(
        fused
            .nodes
            .iter()
            .any(|n| matches!(n.op, tl_plan::Op::Attention { .. })),
        "C's fused plan:\n{fused}"
    );
    // The layer norm's mean, centred values and variance are spliced into the equations that
    // read them (the centred values into both of their readers), so the whole norm is one
    // row map: the mean, the variance, then the result, a row at a time.
    for name in ["Mu", "Z", "Va"] {
        assert!(row(name).plan.inlined, "{name} is spliced into its readers");
    }
    let fused = &row("Y").plan.fused;
    let work: Vec<&tl_plan::Op> = fused
        .nodes
        .iter()
        .map(|n| &n.op)
        .filter(|op| !matches!(op, tl_plan::Op::Load { .. }))
        .collect();
    assert!(
        matches!(work[..], [tl_plan::Op::MapRows { .. }]),
        "Y's fused plan:\n{fused}"
    );
    // The same values as the fixpoint, which runs every equation on its own, unfused.
    let (out, _, strata) = run(&text, true);
    assert_eq!(strata, 1);
    let (fixpoint, _, _) = run(&text, false);
    for (a, b) in out.iter().zip(&fixpoint) {
        assert!((a - b).abs() <= 1e-12, "{out:?} vs {fixpoint:?}");
    }
}

#[test]
fn a_queried_intermediate_is_kept() {
    let (checked, plan) = planned(&attention_stack("A?\n"));
    let a = checked.tensor_named("A").expect("A");
    let stratum = &plan.layers.strata[0];
    let re = stratum
        .equations
        .iter()
        .find(|re| re.target == a)
        .expect("A");
    assert!(!re.plan.inlined, "a queried tensor keeps its value");
    // Its rows are computed: each row of A sums to 1 along p'.
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    };
    let mut engine = Engine::new(&checked, &plan, &backend, options).expect("starts");
    engine.evaluate_all().expect("evaluates");
    let value = engine
        .dense(a, tl_syntax::Span::default())
        .expect("A has a value");
    let host = backend.download(&value).expect("downloads").data.to_f64();
    for row in host.chunks(5) {
        let sum: f64 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-12, "{row:?}");
    }
}

/// The same attention and layer norm written at the top level (no layer recursion).
const TOP_LEVEL: &str = "param Wq[4, 4] ~ normal(0, 0.7)\n\
     param Wk[4, 4] ~ normal(0, 0.7)\n\
     param Wv[4, 4] ~ normal(0, 0.7)\n\
     param X[5, 4] ~ normal(0, 1)\n\
     M = [0, 0, 0, -1000000000, 0]\n\
     Q[p, k] = Wq[k, d] X[p, d]\n\
     K[p, k] = Wk[k, d] X[p, d]\n\
     V[p, k] = Wv[k, d] X[p, d]\n\
     A[p, p'.] = softmax(Q[p, k] K[p', k] / 2 + M[p'])\n\
     C[p, k] = A[p, p'] V[p', k]\n";

#[test]
fn top_level_attention_is_spliced_into_its_reader() {
    let (checked, plan) = planned(&format!("{TOP_LEVEL}C?\n"));
    let eq = |name: &str| {
        let t = checked.tensor_named(name).expect("tensor");
        &plan.equations[checked.tensors[t].equations[0]]
    };
    assert!(eq("A").inlined, "A is read only by C");
    assert!(!eq("C").inlined, "C is queried");
    assert!(
        eq("C")
            .fused
            .nodes
            .iter()
            .any(|n| matches!(n.op, tl_plan::Op::Attention { .. })),
        "C's fused plan:\n{}",
        eq("C").fused
    );
    // A queried intermediate keeps its own plan and its value.
    let (checked, plan) = planned(&format!("{TOP_LEVEL}A?\nC?\n"));
    let a = checked.tensor_named("A").expect("A");
    assert!(!plan.equations[checked.tensors[a].equations[0]].inlined);
    // Values: the spliced plan gives what the equations give one by one.
    let (checked, plan) = planned(&format!("{TOP_LEVEL}C?\n"));
    let backend = CpuBackend::new();
    let options = RunOptions {
        dtype: DType::F64,
        ..RunOptions::default()
    };
    let c = checked.tensor_named("C").expect("C");
    let value = |record: bool| {
        let mut engine = Engine::new(&checked, &plan, &backend, options.clone()).expect("starts");
        engine.record = record;
        engine.evaluate_all().expect("evaluates");
        let v = engine.dense(c, tl_syntax::Span::default()).expect("C");
        backend.download(&v).expect("downloads").data.to_f64()
    };
    let (spliced, one_by_one) = (value(false), value(true));
    for (a, b) in spliced.iter().zip(&one_by_one) {
        assert!((a - b).abs() <= 1e-12, "{spliced:?} vs {one_by_one:?}");
    }
}
