use super::*;
use tl_backend::ReduceOp;
use tl_check::IndexExpr;

#[test]
fn alignment_orders_axes_by_target_position() {
    let (perm, pos) = alignment(&[5, 2], &[2, 7, 5]);
    assert_eq!(perm, vec![1, 0]);
    assert_eq!(pos, vec![0, 2]);
}

fn var(name: &str, extent: usize) -> VarInfo {
    VarInfo {
        name: name.into(),
        domain: 0,
        extent,
    }
}

#[test]
fn affine_reads_are_views_and_others_are_not() {
    use tl_backend::{Backend, HostTensor};
    use tl_syntax::ast::IndexOp::{Add, Mul};
    let be = tl_backend::cpu::CpuBackend::new();
    // W[l: 2, 6, 5] read as W[l, 3*h + k, i] with h < 2, k < 3, i < 5.
    let data: Vec<f32> = (0..60).map(|x| x as f32).collect();
    let w = be
        .upload(&HostTensor::from_f32(vec![2, 6, 5], data.clone()))
        .unwrap();
    let vars = vec![var("l", 2), var("h", 2), var("k", 3), var("i", 5)];
    let e = IndexExpr::Binary(
        Add,
        Box::new(IndexExpr::Binary(
            Mul,
            Box::new(IndexExpr::Const(3)),
            Box::new(IndexExpr::Var(1)),
        )),
        Box::new(IndexExpr::Var(2)),
    );
    let ix = [Index::Var(0), Index::Expr(e.clone()), Index::Var(3)];
    let v = affine_view(&w, &ix, &[0, 1, 2, 3], &vars).unwrap();
    assert_eq!(v.shape(), &[2, 2, 3, 5]);
    let got = be.download(&v).unwrap().data.to_f64();
    let want = index_vector(&vars, &[0, 1, 2, 3], &ix, &[2, 6, 5]);
    let want: Vec<f64> = want.iter().map(|&j| f64::from(data[j as usize])).collect();
    assert_eq!(got, want);
    // One row of a constant index, in another label order.
    let row = [Index::Const(1), Index::Var(2), Index::Var(3)];
    let v = affine_view(&w, &row, &[3, 2], &vars).unwrap();
    let got = be.download(&v).unwrap().data.to_f64();
    let want = index_vector(&vars, &[3, 2], &row, &[2, 6, 5]);
    let want: Vec<f64> = want.iter().map(|&j| f64::from(data[j as usize])).collect();
    assert_eq!(got, want);
    // Reads that can leave the axis (k + 4 reaches 6) need a gather, as do products of
    // variables.
    let past = IndexExpr::Binary(
        Add,
        Box::new(IndexExpr::Var(2)),
        Box::new(IndexExpr::Const(4)),
    );
    let ix = [Index::Var(0), Index::Expr(past), Index::Var(3)];
    assert!(affine_view(&w, &ix, &[0, 2, 3], &vars).is_none());
    let square = IndexExpr::Binary(
        Mul,
        Box::new(IndexExpr::Var(2)),
        Box::new(IndexExpr::Var(1)),
    );
    let ix = [Index::Var(0), Index::Expr(square), Index::Var(3)];
    assert!(affine_view(&w, &ix, &[0, 1, 2, 3], &vars).is_none());
}

#[test]
fn index_vector_marks_reads_outside_as_negative() {
    let vars = vec![VarInfo {
        name: "i".into(),
        domain: 0,
        extent: 3,
    }];
    let e = tl_check::IndexExpr::Binary(
        tl_syntax::ast::IndexOp::Add,
        Box::new(tl_check::IndexExpr::Var(0)),
        Box::new(tl_check::IndexExpr::Const(1)),
    );
    assert_eq!(
        index_vector(&vars, &[0], &[Index::Expr(e)], &[3]),
        vec![1, 2, -1]
    );
}

#[test]
fn reads_past_the_edges_are_views_of_a_padded_copy() {
    use tl_backend::{Backend, HostTensor};
    use tl_syntax::ast::IndexOp::{Add, Mul, Sub};
    let be = tl_backend::cpu::CpuBackend::new();
    // S[5, 7] read as S[y + dy - 1, 2*x + dx - 2] over y < 5, dy < 3, x < 4, dx < 4: one row
    // of padding above and below, two columns before and one after.
    let data: Vec<f32> = (0..35).map(|x| (x as f32) * 0.5 - 3.0).collect();
    let s = be
        .upload(&HostTensor::from_f32(vec![5, 7], data.clone()))
        .unwrap();
    let vars = vec![var("y", 5), var("dy", 3), var("x", 4), var("dx", 4)];
    let v = |k| Box::new(IndexExpr::Var(k));
    let c = |k| Box::new(IndexExpr::Const(k));
    let row = IndexExpr::Binary(Sub, Box::new(IndexExpr::Binary(Add, v(0), v(1))), c(1));
    let twice = Box::new(IndexExpr::Binary(Mul, c(2), v(2)));
    let col = IndexExpr::Binary(Sub, Box::new(IndexExpr::Binary(Add, twice, v(3))), c(2));
    let ix = [Index::Expr(row), Index::Expr(col)];
    assert!(affine_view(&s, &ix, &[0, 1, 2, 3], &vars).is_none());
    let pads = views::padding(&s, &ix, &vars).unwrap();
    assert_eq!(pads, vec![(1, 1), (2, 1)]);
    let idx = views::pad_index(&[5, 7], &pads);
    let padded = be
        .gather_shared(
            &s,
            &std::sync::Arc::new(idx),
            &views::padded_shape(&[5, 7], &pads),
        )
        .unwrap();
    for labels in [vec![0, 1, 2, 3], vec![2, 0, 3, 1]] {
        let view = views::padded_view(&padded, &ix, &labels, &vars, &pads).unwrap();
        let got = be.download(&view).unwrap().data.to_f64();
        let want: Vec<f64> = index_vector(&vars, &labels, &ix, &[5, 7])
            .iter()
            .map(|&j| {
                if j < 0 {
                    0.0
                } else {
                    f64::from(data[j as usize])
                }
            })
            .collect();
        assert_eq!(got, want, "labels {labels:?}");
    }
    // A margin wider than the axis is left to the gather.
    let far = IndexExpr::Binary(Add, v(0), c(9));
    assert!(views::padding(&s, &[Index::Expr(far), Index::Var(2)], &vars).is_none());
}

#[test]
fn pooling_placements_reduce_a_view_as_the_scatter_would() {
    use tl_backend::{Backend, HostTensor};
    use tl_syntax::ast::IndexOp::Div;
    let be = tl_backend::cpu::CpuBackend::new();
    // Root over (y: 6, c: 2, x: 4), placed at P[c, y / 3, x / 2].
    let data: Vec<f32> = (0..48).map(|x| ((x * 37 % 19) as f32) - 9.0).collect();
    let root = be
        .upload(&HostTensor::from_f32(vec![6, 2, 4], data))
        .unwrap();
    let vars = vec![var("y", 6), var("c", 2), var("x", 4)];
    let div = |v, k| {
        Index::Expr(IndexExpr::Binary(
            Div,
            Box::new(IndexExpr::Var(v)),
            Box::new(IndexExpr::Const(k)),
        ))
    };
    let ix = [Index::Var(1), div(0, 3), div(2, 2)];
    let target = [2usize, 2, 2];
    let idx = std::sync::Arc::new(index_vector(&vars, &[0, 1, 2], &ix, &target));
    for op in [ReduceOp::Max, ReduceOp::Min, ReduceOp::Sum, ReduceOp::Mean] {
        let (view, axes) = views::pooled(&root, &[0, 1, 2], &ix, &vars, &target).unwrap();
        let got = be
            .download(&be.reduce(&view, &axes, op).unwrap())
            .unwrap()
            .data
            .to_f64();
        let want = be.scatter_shared(&root, &idx, &target, op).unwrap();
        assert_eq!(got, be.download(&want).unwrap().data.to_f64(), "{op:?}");
    }
    // An extent that does not divide, a variable read twice, or another target shape: no view.
    let odd = vec![var("y", 6), var("c", 2), var("x", 4)];
    assert!(views::pooled(
        &root,
        &[0, 1, 2],
        &[Index::Var(1), div(0, 4), div(2, 2)],
        &odd,
        &[2, 1, 2]
    )
    .is_none());
    assert!(views::pooled(
        &root,
        &[0, 1, 2],
        &[Index::Var(1), div(1, 3), div(2, 2)],
        &vars,
        &target
    )
    .is_none());
    assert!(views::pooled(&root, &[0, 1, 2], &ix, &vars, &[2, 3, 2]).is_none());
}
