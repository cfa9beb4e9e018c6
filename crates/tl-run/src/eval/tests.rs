use super::*;

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
