use super::*;
use tl_core::{BinaryFn, UnaryFn};

/// The fused graph, every pass having kept it well formed.
fn fused(g: &Graph, root: NodeId) -> (Graph, NodeId) {
    fuse(g, root).unwrap_or_else(|broken| panic!("{broken}"))
}

fn add(a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(BinaryFn::Add, Box::new(a), Box::new(b))
}

fn un(f: UnaryFn, a: MapExpr) -> MapExpr {
    MapExpr::Unary(f, Box::new(a))
}

/// `relu(X[i,k] W[k,j] + B[j] + R[i,j])` as the lowering builds it.
fn dense_layer() -> (Graph, NodeId) {
    let mut g = Graph::default();
    let x = g.push(Op::Load { tensor: 0 }, vec![0, 2], vec![4, 3]);
    let w = g.push(Op::Load { tensor: 1 }, vec![2, 1], vec![3, 5]);
    let c = g.push(Op::Contract { a: x, b: w }, vec![0, 1], vec![4, 5]);
    let b = g.push(Op::Load { tensor: 2 }, vec![1], vec![5]);
    let r = g.push(Op::Load { tensor: 3 }, vec![0, 1], vec![4, 5]);
    let sum = add(add(MapExpr::Input(0), MapExpr::Input(1)), MapExpr::Input(2));
    let m = g.push(
        Op::Map {
            expr: sum,
            inputs: vec![c, b, r],
        },
        vec![0, 1],
        vec![4, 5],
    );
    let root = g.push(
        Op::Map {
            expr: un(UnaryFn::Relu, MapExpr::Input(0)),
            inputs: vec![m],
        },
        vec![0, 1],
        vec![4, 5],
    );
    (g, root)
}

#[test]
fn a_dense_layer_becomes_one_contraction_with_its_epilogue() {
    let (g, root) = dense_layer();
    assert_eq!(g.kernel_count(), 3);
    let (f, froot) = fused(&g, root);
    assert_eq!(f.verify(), Ok(()));
    assert_eq!(f.kernel_count(), 1);
    let Op::ContractMap { expr, inputs, .. } = &f.nodes[froot].op else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    assert_eq!(inputs.len(), 2);
    // product 1.5, bias -4, residual 2: relu(1.5 - 4 + 2) = 0; with residual 3: 0.5.
    assert_eq!(expr.eval(&[1.5, -4.0, 2.0]), 0.0);
    assert_eq!(expr.eval(&[1.5, -4.0, 3.0]), 0.5);
}

#[test]
fn shared_values_are_not_fused_away() {
    let (mut g, root) = dense_layer();
    // A second user of the pre-activation sum keeps it a separate node.
    let sum_node = root - 1;
    let both = g.push(
        Op::Map {
            expr: add(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![root, sum_node],
        },
        vec![0, 1],
        vec![4, 5],
    );
    let (f, froot) = fused(&g, both);
    assert_eq!(f.verify(), Ok(()));
    // The sum (now the contraction's epilogue) and one map reading it twice over.
    assert_eq!(f.kernel_count(), 2);
    assert!(matches!(f.nodes[froot].op, Op::Map { .. }));
}

#[test]
fn a_chain_of_maps_is_one_map_with_the_same_values() {
    let mut g = Graph::default();
    let x = g.push(Op::Load { tensor: 0 }, vec![0], vec![3]);
    let y = g.push(Op::Load { tensor: 1 }, vec![0], vec![3]);
    let a = g.push(
        Op::Map {
            expr: un(UnaryFn::Tanh, MapExpr::Input(0)),
            inputs: vec![x],
        },
        vec![0],
        vec![3],
    );
    let b = g.push(
        Op::Map {
            expr: MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Input(1)),
            ),
            inputs: vec![a, y],
        },
        vec![0],
        vec![3],
    );
    let root = g.push(
        Op::Map {
            expr: add(un(UnaryFn::Exp, MapExpr::Input(0)), MapExpr::Input(1)),
            inputs: vec![b, x],
        },
        vec![0],
        vec![3],
    );
    let (f, froot) = fused(&g, root);
    assert_eq!(f.kernel_count(), 1);
    let Op::Map { expr, inputs } = &f.nodes[froot].op else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    // x is read twice but passed once.
    assert_eq!(inputs.len(), 2);
    let (xv, yv) = (0.3f64, -1.7f64);
    let want = (xv.tanh() * yv).exp() + xv;
    let vals: Vec<f64> = inputs
        .iter()
        .map(|&i| match f.nodes[i].op {
            Op::Load { tensor: 0 } => xv,
            _ => yv,
        })
        .collect();
    assert!((expr.eval(&vals) - want).abs() < 1e-12);
}

fn mul(a: MapExpr, b: MapExpr) -> MapExpr {
    MapExpr::Binary(BinaryFn::Mul, Box::new(a), Box::new(b))
}

#[test]
fn a_layer_norm_line_is_one_kernel_with_its_constants_inside() {
    // G[o] Z[s, o] / sqrt(V[s] + 1e-12) + B[o], lowered as maps and a constant.
    let mut g = Graph::default();
    let gain = g.push(Op::Load { tensor: 0 }, vec![1], vec![4]);
    let z = g.push(Op::Load { tensor: 1 }, vec![0, 1], vec![3, 4]);
    let v = g.push(Op::Load { tensor: 2 }, vec![0], vec![3]);
    let eps = g.push(Op::Const(1e-12), vec![], vec![]);
    let inv = g.push(
        Op::Map {
            expr: un(
                UnaryFn::Recip,
                un(UnaryFn::Sqrt, add(MapExpr::Input(0), MapExpr::Input(1))),
            ),
            inputs: vec![v, eps],
        },
        vec![0],
        vec![3],
    );
    let gz = g.push(
        Op::Map {
            expr: mul(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![z, gain],
        },
        vec![0, 1],
        vec![3, 4],
    );
    let scaled = g.push(
        Op::Map {
            expr: mul(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![gz, inv],
        },
        vec![0, 1],
        vec![3, 4],
    );
    let b = g.push(Op::Load { tensor: 3 }, vec![1], vec![4]);
    let root = g.push(
        Op::Map {
            expr: add(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![scaled, b],
        },
        vec![0, 1],
        vec![3, 4],
    );
    let (f, froot) = fused(&g, root);
    assert_eq!(f.verify(), Ok(()));
    assert_eq!(f.kernel_count(), 1, "{f:?}");
    let Op::Map { expr, inputs } = &f.nodes[froot].op else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    assert!(inputs
        .iter()
        .all(|&i| matches!(f.nodes[i].op, Op::Load { .. })));
    let value = |t: usize| [2.0, -1.5, 0.25, 0.5][t];
    let vals: Vec<f64> = inputs
        .iter()
        .map(|&i| match f.nodes[i].op {
            Op::Load { tensor } => value(tensor),
            _ => f64::NAN,
        })
        .collect();
    let want = 2.0 * -1.5 / (0.25f64 + 1e-12).sqrt() + 0.5;
    assert!((expr.eval(&vals) - want).abs() < 1e-12);
}

#[test]
fn a_constant_factor_of_an_operand_moves_into_the_epilogue() {
    // (Q[i, k] * 0.5) K[j, k]: one product whose epilogue scales by 0.5.
    let mut g = Graph::default();
    let q = g.push(Op::Load { tensor: 0 }, vec![0, 2], vec![3, 4]);
    let half = g.push(Op::Const(0.5), vec![], vec![]);
    let qs = g.push(
        Op::Map {
            expr: mul(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![q, half],
        },
        vec![0, 2],
        vec![3, 4],
    );
    let k = g.push(Op::Load { tensor: 1 }, vec![1, 2], vec![5, 4]);
    let root = g.push(Op::Contract { a: qs, b: k }, vec![0, 1], vec![3, 5]);
    let (f, froot) = fused(&g, root);
    assert_eq!(f.verify(), Ok(()));
    assert_eq!(f.kernel_count(), 1);
    let Op::ContractMap {
        a, expr, inputs, ..
    } = &f.nodes[froot].op
    else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    assert!(matches!(f.nodes[*a].op, Op::Load { tensor: 0 }));
    assert!(inputs.is_empty());
    assert_eq!(expr.eval(&[3.0]), 1.5);
}

#[test]
fn a_map_of_constants_only_is_computed_once_here() {
    let mut g = Graph::default();
    let c = g.push(Op::Const(32.0), vec![], vec![]);
    let root = g.push(
        Op::Map {
            expr: un(UnaryFn::Recip, un(UnaryFn::Sqrt, MapExpr::Input(0))),
            inputs: vec![c],
        },
        vec![],
        vec![],
    );
    let (f, froot) = fused(&g, root);
    assert_eq!(f.nodes[froot].op, Op::Const(1.0 / 32f64.sqrt()));
}

#[test]
fn a_reduction_of_a_map_is_one_node_over_the_map_s_labels() {
    // V[s] avg= (Z[o, s] - M[s])^2: the squares are never stored.
    let mut g = Graph::default();
    let z = g.push(Op::Load { tensor: 0 }, vec![1, 0], vec![4, 3]);
    let m = g.push(Op::Load { tensor: 1 }, vec![0], vec![3]);
    let two = g.push(Op::Const(2.0), vec![], vec![]);
    let sq = g.push(
        Op::Map {
            expr: MapExpr::Binary(
                BinaryFn::Pow,
                Box::new(MapExpr::Binary(
                    BinaryFn::Sub,
                    Box::new(MapExpr::Input(0)),
                    Box::new(MapExpr::Input(1)),
                )),
                Box::new(MapExpr::Input(2)),
            ),
            inputs: vec![z, m, two],
        },
        vec![1, 0],
        vec![4, 3],
    );
    let root = g.push(
        Op::Reduce {
            input: sq,
            op: tl_core::ReduceOp::Mean,
        },
        vec![0],
        vec![3],
    );
    let (f, froot) = fused(&g, root);
    assert_eq!(f.verify(), Ok(()));
    assert_eq!(f.kernel_count(), 1);
    let Op::MapReduce {
        expr,
        inputs,
        over,
        over_shape,
        op,
    } = &f.nodes[froot].op
    else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    assert_eq!(
        (over.as_slice(), over_shape.as_slice()),
        (&[0, 1][..], &[3, 4][..])
    );
    assert_eq!(*op, tl_core::ReduceOp::Mean);
    assert_eq!(inputs.len(), 2);
    assert_eq!(expr.eval(&[5.0, 2.0]), 9.0);
}

#[test]
fn attention_scores_scale_in_the_product_and_mask_in_the_softmax() {
    // softmax(Q[p, k] K[q, k] / 4 + Pad[q]) along q.
    let mut g = Graph::default();
    let qn = g.push(Op::Load { tensor: 0 }, vec![0, 2], vec![3, 8]);
    let quarter = g.push(Op::Const(0.25), vec![], vec![]);
    let qs = g.push(
        Op::Map {
            expr: mul(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![qn, quarter],
        },
        vec![0, 2],
        vec![3, 8],
    );
    let kn = g.push(Op::Load { tensor: 1 }, vec![1, 2], vec![5, 8]);
    let scores = g.push(Op::Contract { a: qs, b: kn }, vec![0, 1], vec![3, 5]);
    let pad = g.push(Op::Load { tensor: 2 }, vec![1], vec![5]);
    let masked = g.push(
        Op::Map {
            expr: add(MapExpr::Input(0), MapExpr::Input(1)),
            inputs: vec![scores, pad],
        },
        vec![0, 1],
        vec![3, 5],
    );
    let root = g.push(
        Op::Normalize {
            input: masked,
            axis: 1,
            func: tl_core::NormFn::Softmax,
        },
        vec![0, 1],
        vec![3, 5],
    );
    let (f, froot) = fused(&g, root);
    assert_eq!(f.verify(), Ok(()));
    assert_eq!(f.kernel_count(), 2, "{f}");
    let Op::MapNormalize { expr, inputs, .. } = &f.nodes[froot].op else {
        panic!("root is {:?}", f.nodes[froot].op);
    };
    assert_eq!(expr.eval(&[1.0, -2.0]), -1.0);
    let Op::ContractMap { a, expr, .. } = &f.nodes[inputs[0]].op else {
        panic!("the scores are {:?}", f.nodes[inputs[0]].op);
    };
    assert!(matches!(f.nodes[*a].op, Op::Load { tensor: 0 }));
    assert_eq!(expr.eval(&[2.0]), 0.5);
}
