//! Map, reduce, normalize, gather, scatter, cast and data movement checked against float64
//! references computed naively here.

use super::testutil::*;
use super::CpuBackend;
use crate::dtype::DType;
use crate::error::{BackendError, Result};
use crate::host::{HostData, HostTensor};
use crate::ops::{BinaryFn, MapExpr, NormFn, ReduceOp, UnaryFn};
use crate::tensor::Tensor;
use crate::Backend;

const SHAPES: &[&[usize]] = &[
    &[1],
    &[7],
    &[129],
    &[7, 129],
    &[129, 1, 7],
    &[3, 7, 5, 2],
    &[],
];
const FLOATS: [DType; 2] = [DType::F32, DType::F64];

/// A contiguous or randomly permuted tensor of random contents.
fn input(rng: &mut Rng, shape: &[usize], dtype: DType) -> (Tensor, Vec<f64>) {
    let d = rng.values(shape.iter().product(), dtype);
    let t = if rng.below(2) == 0 {
        tensor(shape, &d, dtype)
    } else {
        let p = rng.perm(shape.len());
        permuted_view(shape, &d, dtype, &p)
    };
    (t, d)
}

#[test]
fn upload_download_full_cast() -> Result<()> {
    let be = CpuBackend::new();
    assert!(be.name().starts_with("cpu ("));
    let h = HostTensor::from_f64(
        vec![2, 3],
        vec![1.0, -2.0, 3.5, 0.25, 5.0, -6.0],
        DType::F32,
    );
    let t = be.upload(&h)?;
    assert_eq!(be.download(&t)?, h);
    let tt = t.permuted(&[1, 0]);
    assert_eq!(fetch(&be, &tt)?.1, vec![1.0, 0.25, -2.0, 5.0, 3.5, -6.0]);
    let bad = HostTensor {
        shape: vec![4],
        data: HostData::F32(vec![1.0]),
    };
    assert!(matches!(be.upload(&bad), Err(BackendError::Shape { .. })));
    for dtype in [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::Bool,
        DType::I64,
    ] {
        let f = be.full(&[3, 2], 2.0, dtype)?;
        assert_eq!(f.dtype, dtype);
        assert_eq!(
            fetch(&be, &f)?.1,
            vec![if dtype == DType::Bool { 1.0 } else { 2.0 }; 6]
        );
        let c = be.cast(&tt, dtype)?;
        assert_eq!(be.download(&c)?.data, be.download(&tt)?.data.convert(dtype));
    }
    be.synchronize()
}

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
    assert_eq!(be.download(&c)?.data, HostData::Bool(vec![1, 1]));
    Ok(())
}

#[test]
fn reduce_matches_reference() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(11);
    for dtype in FLOATS {
        for shape in SHAPES
            .iter()
            .chain(&[&[129usize, 300][..], &[300, 129][..]])
        {
            let r = shape.len();
            for mask in 0..(1usize << r) {
                let axes: Vec<usize> = (0..r).filter(|a| mask >> a & 1 == 1).collect();
                let (t, d) = input(&mut rng, shape, dtype);
                let kept: Vec<usize> = (0..r).filter(|a| !axes.contains(a)).collect();
                let oshape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
                for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                    let m: usize = oshape.iter().product();
                    let mut acc: Vec<Vec<f64>> = vec![Vec::new(); m];
                    for (i, &v) in d.iter().enumerate() {
                        let idx = unravel(i, shape);
                        let o: Vec<usize> = kept.iter().map(|&a| idx[a]).collect();
                        acc[ravel(&o, &oshape)].push(v);
                    }
                    let want: Vec<f64> = acc
                        .iter()
                        .map(|v| match op {
                            ReduceOp::Sum => v.iter().sum(),
                            ReduceOp::Mean => v.iter().sum::<f64>() / v.len() as f64,
                            ReduceOp::Max => v.iter().fold(f64::MIN, |a, &b| a.max(b)),
                            ReduceOp::Min => v.iter().fold(f64::MAX, |a, &b| a.min(b)),
                        })
                        .collect();
                    let got = be.reduce(&t, &axes, op)?;
                    assert_eq!(got.dtype, dtype);
                    let (gs, gv) = fetch(&be, &got)?;
                    assert_eq!(gs, oshape);
                    check(
                        &format!("reduce {op:?} {shape:?} {axes:?}"),
                        &gv,
                        &want,
                        dtype,
                    );
                }
            }
        }
    }
    let e = tensor(&[3, 0], &[], DType::F16);
    let (s, v) = fetch(&be, &be.reduce(&e, &[1], ReduceOp::Max)?)?;
    assert_eq!((s, v), (vec![3], vec![0.0; 3]));
    assert!(matches!(
        be.reduce(&e, &[2], ReduceOp::Sum),
        Err(BackendError::Shape { .. })
    ));
    Ok(())
}

#[test]
fn normalize_matches_reference() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(12);
    for dtype in FLOATS {
        for shape in SHAPES.iter().filter(|s| !s.is_empty()) {
            for axis in 0..shape.len() {
                let (t, d) = input(&mut rng, shape, dtype);
                let n = shape[axis];
                let inner: usize = shape[axis + 1..].iter().product();
                for func in [NormFn::Softmax, NormFn::LayerNorm] {
                    let mut want = d.clone();
                    for (s, slab) in want.chunks_mut(n * inner).enumerate() {
                        for j in 0..inner {
                            let col: Vec<f64> =
                                (0..n).map(|i| d[s * n * inner + i * inner + j]).collect();
                            let mean = col.iter().sum::<f64>() / n as f64;
                            let var =
                                col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
                            let mx = col.iter().fold(f64::MIN, |a, &b| a.max(b));
                            let z: f64 = col.iter().map(|x| (x - mx).exp()).sum();
                            for (i, &x) in col.iter().enumerate() {
                                slab[i * inner + j] = match func {
                                    NormFn::Softmax => (x - mx).exp() / z,
                                    NormFn::LayerNorm => (x - mean) / (var + 1e-5).sqrt(),
                                };
                            }
                        }
                    }
                    let got = be.normalize(&t, axis, func)?;
                    let (gs, gv) = fetch(&be, &got)?;
                    assert_eq!(&gs[..], *shape);
                    check(
                        &format!("{func:?} {shape:?} axis {axis}"),
                        &gv,
                        &want,
                        dtype,
                    );
                }
            }
        }
    }
    let big = tensor(
        &[2, 3],
        &[1000.0, 1001.0, 999.0, -5.0, 0.0, 5.0],
        DType::F32,
    );
    let (_, v) = fetch(&be, &be.normalize(&big, 1, NormFn::Softmax)?)?;
    assert!(v.iter().all(|x| x.is_finite()));
    assert!(matches!(
        be.normalize(&big, 2, NormFn::Softmax),
        Err(BackendError::Shape { .. })
    ));
    Ok(())
}

#[test]
fn gather_and_scatter_match_reference() -> Result<()> {
    let be = CpuBackend::new();
    let mut rng = Rng::new(13);
    for dtype in FLOATS {
        for shape in SHAPES {
            let (t, d) = input(&mut rng, shape, dtype);
            let n = d.len();
            let m = 1 + rng.below(2 * n + 3);
            let index: Vec<i64> = (0..m)
                .map(|_| rng.below(n + 2) as i64 - 1)
                .map(|i| i.min(n as i64 - 1))
                .collect();
            let want: Vec<f64> = index
                .iter()
                .map(|&i| if i < 0 { 0.0 } else { d[i as usize] })
                .collect();
            let g = be.gather(&t, &index, &[m])?;
            assert_eq!(g.dtype, dtype);
            check("gather", &fetch(&be, &g)?.1, &want, dtype);
            // Scatter the gathered values back with every combining op.
            let (vals, vd) = input(&mut rng, &[m], dtype);
            for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                let mut cells: Vec<Vec<f64>> = vec![Vec::new(); n];
                for (&i, &v) in index.iter().zip(&vd) {
                    if i >= 0 {
                        cells[i as usize].push(v);
                    }
                }
                let want: Vec<f64> = cells
                    .iter()
                    .map(|c| match (c.is_empty(), op) {
                        (true, _) => 0.0,
                        (_, ReduceOp::Sum) => c.iter().sum(),
                        (_, ReduceOp::Mean) => c.iter().sum::<f64>() / c.len() as f64,
                        (_, ReduceOp::Max) => c.iter().fold(f64::MIN, |a, &b| a.max(b)),
                        (_, ReduceOp::Min) => c.iter().fold(f64::MAX, |a, &b| a.min(b)),
                    })
                    .collect();
                let s = be.scatter(&vals, &index, shape, op)?;
                let (ss, sv) = fetch(&be, &s)?;
                assert_eq!(&ss[..], *shape);
                check(&format!("scatter {op:?}"), &sv, &want, dtype);
            }
        }
    }
    let b = be.upload(&HostTensor {
        shape: vec![3],
        data: HostData::Bool(vec![1, 0, 1]),
    })?;
    let g = be.gather(&b, &[2, -1, 1, 0], &[2, 2])?;
    assert_eq!(be.download(&g)?.data, HostData::Bool(vec![1, 0, 0, 1]));
    let x = tensor(&[3], &[1.0, 2.0, 3.0], DType::F32);
    assert!(matches!(
        be.gather(&x, &[3], &[1]),
        Err(BackendError::Shape { .. })
    ));
    assert!(matches!(
        be.gather(&x, &[0, 1], &[1]),
        Err(BackendError::Shape { .. })
    ));
    assert!(matches!(
        be.scatter(&x, &[0, 1, 5], &[4], ReduceOp::Sum),
        Err(BackendError::Shape { .. })
    ));
    Ok(())
}
