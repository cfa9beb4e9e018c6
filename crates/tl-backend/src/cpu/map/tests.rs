use crate::cpu::fixtures::*;
use crate::cpu::CpuBackend;
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::host::HostData;
use crate::ops::{BinaryFn, MapExpr, ReduceOp, UnaryFn};
use crate::{Backend, Calls};

/// A fused expression touching every function, reading three inputs.
fn big_expr() -> MapExpr {
    use MapExpr::*;
    let x = || Box::new(Input(0));
    let y = || Box::new(Input(1));
    let z = || Box::new(Input(2));
    let mut e = Binary(BinaryFn::Mul, x(), y());
    for f in [
        UnaryFn::Neg,
        UnaryFn::Sigmoid,
        UnaryFn::Tanh,
        UnaryFn::Gelu,
        UnaryFn::Sin,
    ] {
        e = Binary(BinaryFn::Add, Box::new(e), Box::new(Unary(f, z())));
    }
    let pos = || {
        Box::new(Binary(
            BinaryFn::Add,
            Box::new(Unary(UnaryFn::Abs, x())),
            Box::new(Const(0.5)),
        ))
    };
    for f in [
        UnaryFn::Log,
        UnaryFn::Sqrt,
        UnaryFn::Recip,
        UnaryFn::Exp,
        UnaryFn::Cos,
        UnaryFn::Relu,
        UnaryFn::Step,
    ] {
        e = Binary(BinaryFn::Sub, Box::new(e), Box::new(Unary(f, pos())));
    }
    for f in [
        BinaryFn::Div,
        BinaryFn::Max,
        BinaryFn::Min,
        BinaryFn::SigmoidT,
        BinaryFn::Pow,
    ] {
        e = Binary(BinaryFn::Add, Box::new(e), Box::new(Binary(f, pos(), y())));
    }
    Binary(
        BinaryFn::Pow,
        Box::new(Binary(BinaryFn::Mul, Box::new(e), Box::new(Const(0.1)))),
        Box::new(Const(2.0)),
    )
}

#[test]
fn map_reduce_equals_a_map_then_a_reduction() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(13);
    let e = big_expr();
    let cases: &[(&[usize], usize)] = &[
        (&[7], 1),
        (&[3, 5, 7], 1),
        (&[3, 5, 7], 2),
        (&[3, 5, 7], 3),
        (&[2, 5000], 1),
        (&[9000], 1),
        (&[4, 0], 1),
        (&[0, 4], 1),
    ];
    for dtype in [DType::F32, DType::F64] {
        for &(shape, reduced) in cases {
            let (x, _) = input(&mut rng, shape, dtype);
            let (y, _) = input(&mut rng, shape, dtype);
            let (z, _) = input(&mut rng, shape, dtype);
            let axes: Vec<usize> = (shape.len() - reduced..shape.len()).collect();
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
                let got = be.map_reduce(&e, &[&x, &y, &z], shape, reduced, op, dtype)?;
                let values = be.map(&e, &[&x, &y, &z], shape, dtype)?;
                let want = be.reduce(&values, &axes, op)?;
                let (gs, gv) = fetch(&be, &got)?;
                let (ws, wv) = fetch(&be, &want)?;
                assert_eq!(gs, ws, "{op:?} {shape:?}");
                for (g, w) in gv.iter().zip(&wv) {
                    assert!(
                        (g - w).abs() <= 1e-5 * w.abs().max(1.0),
                        "{op:?} {dtype} {shape:?} last {reduced}: {g} vs {w}"
                    );
                }
            }
        }
    }
    Ok(())
}

#[test]
fn map_many_equals_one_map_per_expression() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(12);
    let exprs = [
        big_expr(),
        MapExpr::Input(1),
        MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(3.0)),
        ),
    ];
    for dtype in FLOATS {
        for shape in SHAPES.iter().chain(&[&[3usize, 4096, 3][..], &[0, 4][..]]) {
            let (x, _) = input(&mut rng, shape, dtype);
            let (y, _) = input(&mut rng, shape, dtype);
            let (z, _) = input(&mut rng, shape, dtype);
            let many = be.map_many(&exprs, &[&x, &y, &z], shape, dtype)?;
            assert_eq!(many.len(), exprs.len());
            for (e, got) in exprs.iter().zip(&many) {
                let want = be.map(e, &[&x, &y, &z], shape, dtype)?;
                assert_eq!(fetch(&be, got)?, fetch(&be, &want)?, "{e:?} {shape:?}");
            }
        }
    }
    Ok(())
}

#[test]
fn map_matches_reference_with_broadcasting() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(10);
    let expr = big_expr();
    for dtype in FLOATS {
        for shape in SHAPES.iter().chain(&[&[3usize, 4096, 3][..]]) {
            let (x, xd) = input(&mut rng, shape, dtype);
            // y broadcasts along axis 0 (or is a scalar view), z through a stride-0 view.
            let ys: Vec<usize> = shape
                .iter()
                .enumerate()
                .map(|(a, &n)| if a == 0 { 1 } else { n })
                .collect();
            let (y, yd0) = input(&mut rng, &ys, dtype);
            let bc: Vec<usize> = if shape.len() > 1 {
                vec![shape.len() - 1]
            } else {
                vec![]
            };
            let (z, zd) = broadcast_view(&mut rng, shape, &bc, dtype);
            let n: usize = shape.iter().product();
            let want: Vec<f64> = (0..n)
                .map(|i| {
                    let mut idx = unravel(i, shape);
                    let (xv, zv) = (xd[i], zd[i]);
                    if !idx.is_empty() {
                        idx[0] = 0;
                    }
                    expr.eval(&[xv, yd0[ravel(&idx, &ys)], zv])
                })
                .collect();
            for out in [dtype, DType::F64] {
                let got = be.map(&expr, &[&x, &y, &z], shape, out)?;
                assert_eq!(got.dtype, out);
                let (gs, gv) = fetch(&be, &got)?;
                assert_eq!(&gs[..], *shape);
                check(&format!("map {shape:?}"), &gv, &want, dtype);
            }
        }
    }
    let x = tensor(&[2], &[1.0, 2.0], DType::F32);
    let y = tensor(&[3], &[1.0, 2.0, 3.0], DType::F32);
    let e = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Input(1)),
    );
    assert!(matches!(
        be.map(&e, &[&x, &y], &[2], DType::F32),
        Err(BackendError::Shape { .. })
    ));
    assert!(matches!(
        be.map(&e, &[&x], &[2], DType::F32),
        Err(BackendError::Shape { .. })
    ));
    let c = be.map(
        &MapExpr::Unary(UnaryFn::Step, Box::new(MapExpr::Input(0))),
        &[&x],
        &[2],
        DType::Bool,
    )?;
    assert_eq!(be.download(&c)?.data, HostData::Bool(vec![1, 1].into()));
    Ok(())
}
