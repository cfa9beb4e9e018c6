//! What lowering makes of common equation shapes: broadcast products are elementwise maps,
//! results come out in the left-hand side's index order, a mean of one factor is one
//! reduction, and a square is a product.

use tl_core::{BinaryFn, MapExpr, ReduceOp};
use tl_plan::{EquationPlan, Op};

/// The unfused plan of the last equation of `text`.
fn last_plan(text: &str) -> EquationPlan {
    let mut sources = tl_syntax::SourceMap::new();
    let (program, diags) =
        tl_syntax::load_source("t.tl", text, &mut sources, std::path::Path::new("."));
    assert!(diags.is_empty(), "{diags:?}");
    let checked = match tl_check::check(&program, &sources) {
        Ok(c) => c,
        Err(e) => panic!("{e:?}"),
    };
    let mut plan = match tl_plan::plan(&checked) {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    };
    plan.equations
        .pop()
        .unwrap_or_else(|| panic!("no equation"))
}

fn ops(plan: &EquationPlan) -> Vec<&Op> {
    plan.graph.nodes.iter().map(|n| &n.op).collect()
}

#[test]
fn a_gain_times_a_tensor_is_a_map_in_the_head_order() {
    let plan = last_plan(
        "param G[4] ~ normal(0, 1)\nparam Z[3, 4] ~ normal(0, 1)\nparam R[3] ~ normal(0, 1)\n\
         H[s, o] = G[o] Z[s, o] R[s]\n",
    );
    assert!(
        !ops(&plan)
            .iter()
            .any(|op| matches!(op, Op::Contract { .. })),
        "{}",
        plan.graph
    );
    // The root is already in [s, o] order: no transposing copy at the end.
    let root = &plan.graph.nodes[plan.root];
    assert_eq!(root.shape, vec![3, 4]);
    assert!(
        !matches!(
            &root.op,
            Op::Map {
                expr: MapExpr::Input(0),
                ..
            }
        ),
        "{}",
        plan.graph
    );
}

#[test]
fn a_product_lays_its_result_out_in_the_head_order() {
    // W[f, i] H[s, i] summed over i: the head's order is [s, f], the first factor's [f, s].
    let plan = last_plan(
        "param W[5, 4] ~ normal(0, 1)\nparam H[3, 4] ~ normal(0, 1)\nF[s, f] = W[f, i] H[s, i]\n",
    );
    let root = &plan.graph.nodes[plan.root];
    assert!(matches!(root.op, Op::Contract { .. }), "{}", plan.graph);
    assert_eq!(root.shape, vec![3, 5]);
}

#[test]
fn a_mean_of_a_square_is_one_mean_of_a_product() {
    let plan = last_plan("param Z[3, 4] ~ normal(0, 1)\nV[s] avg= Z[s, o]^2\n");
    let ops = ops(&plan);
    assert!(
        ops.iter().any(|op| matches!(
            op,
            Op::Reduce {
                op: ReduceOp::Mean,
                ..
            }
        )),
        "{}",
        plan.graph
    );
    assert!(
        ops.iter().any(|op| matches!(
            op,
            Op::Map { expr: MapExpr::Binary(BinaryFn::Mul, a, b), .. }
                if **a == MapExpr::Input(0) && **b == MapExpr::Input(0)
        )),
        "{}",
        plan.graph
    );
    assert!(
        !ops.iter().any(|op| matches!(
            op,
            Op::Map {
                expr: MapExpr::Binary(BinaryFn::Pow, ..),
                ..
            }
        )),
        "{}",
        plan.graph
    );
}
