//! Every form of [`Kernel`] and every elementwise function of the table, checked against a
//! float64 reference computed here, on each device (`test_device!`: the CPU, CUDA where there
//! is one, and the CPU behind a launch log), on random nonzero data at odd shapes.

use tl_backend::devices::launches;
use tl_backend::profiled::ProfiledBackend;
use tl_backend::{
    test_device, Backend, BinaryFn, Body, Calls, DType, HostTensor, Kernel, MapExpr, NormFn,
    ReduceOp, Result, Tensor, UnaryFn,
};

/// Values in ±[0.1, 2], never zero, from a seed.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let mag = 0.1 + 1.9 * ((s >> 11) as f64 / (1u64 << 53) as f64);
            if s & 1 == 0 {
                mag
            } else {
                -mag
            }
        })
        .collect()
}

fn upload(be: &dyn Backend, shape: &[usize], data: &[f64], dtype: DType) -> Result<Tensor> {
    be.upload(&HostTensor::from_f64(shape.to_vec(), data.to_vec(), dtype))
}

fn fetch(be: &dyn Backend, t: &Tensor) -> Result<Vec<f64>> {
    Ok(be.download(t)?.data.to_f64())
}

/// Relative error bound of a computation in `dtype` against float64.
fn bound(dtype: DType) -> f64 {
    match dtype {
        DType::F64 => 1e-12,
        _ => 1e-5,
    }
}

#[track_caller]
fn assert_close(what: &str, got: &[f64], want: &[f64], dtype: DType) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= bound(dtype) * w.abs().max(1.0) || (g.is_nan() && w.is_nan());
        assert!(ok, "{what}[{k}]: {g} vs {w} ({dtype})");
    }
}

const SHAPES: &[&[usize]] = &[&[1], &[7], &[129], &[3, 5, 7], &[13, 129]];

/// A positive argument for the functions defined only there.
fn domain(f: UnaryFn, x: f64) -> f64 {
    match f {
        UnaryFn::Log | UnaryFn::Sqrt => x.abs() + 0.5,
        _ => x,
    }
}

fn every_function(be: &dyn Backend) -> Result<()> {
    for dtype in [DType::F32, DType::F64] {
        for (s, shape) in SHAPES.iter().enumerate() {
            let n: usize = shape.iter().product();
            let x = values(n, 11 + s as u64);
            let y = values(n, 29 + s as u64);
            for f in UnaryFn::ALL {
                let xs: Vec<f64> = x.iter().map(|&v| domain(*f, v)).collect();
                let want: Vec<f64> = xs.iter().map(|&v| f.eval(v)).collect();
                let tx = upload(be, shape, &xs, dtype)?;
                let e = MapExpr::Unary(*f, Box::new(MapExpr::Input(0)));
                let got = fetch(be, &be.map(&e, &[&tx], shape, dtype)?)?;
                assert_close(&format!("{f:?} {shape:?}"), &got, &want, dtype);
            }
            for f in BinaryFn::ALL {
                let a: Vec<f64> = if *f == BinaryFn::Pow {
                    x.iter().map(|v| v.abs() + 0.5).collect()
                } else {
                    x.clone()
                };
                let want: Vec<f64> = a.iter().zip(&y).map(|(&p, &q)| f.eval(p, q)).collect();
                let (ta, ty) = (upload(be, shape, &a, dtype)?, upload(be, shape, &y, dtype)?);
                let e =
                    MapExpr::Binary(*f, Box::new(MapExpr::Input(0)), Box::new(MapExpr::Input(1)));
                let got = fetch(be, &be.map(&e, &[&ta, &ty], shape, dtype)?)?;
                assert_close(&format!("{f:?} {shape:?}"), &got, &want, dtype);
            }
        }
    }
    Ok(())
}

test_device!(each_function_matches_its_f64_row, every_function);

/// `exp(x) * y + 0.5`, the expression the kernel forms below compute.
fn expr() -> MapExpr {
    MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Unary(UnaryFn::Exp, Box::new(MapExpr::Input(0)))),
            Box::new(MapExpr::Input(1)),
        )),
        Box::new(MapExpr::Const(0.5)),
    )
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// The f64 reduction of `v` (of `shape`) over `axes`.
fn reduce_ref(v: &[f64], shape: &[usize], axes: &[usize], op: ReduceOp) -> Vec<f64> {
    let kept: Vec<usize> = (0..shape.len()).filter(|a| !axes.contains(a)).collect();
    let out_shape: Vec<usize> = kept.iter().map(|&a| shape[a]).collect();
    let out_n: usize = out_shape.iter().product();
    let (st, ost) = (strides(shape), strides(&out_shape));
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); out_n];
    for (i, &x) in v.iter().enumerate() {
        let o: usize = kept
            .iter()
            .enumerate()
            .map(|(j, &a)| (i / st[a]) % shape[a] * ost[j])
            .sum();
        groups[o].push(x);
    }
    groups
        .iter()
        .map(|g| match op {
            ReduceOp::Sum => g.iter().sum(),
            ReduceOp::Mean => g.iter().sum::<f64>() / g.len() as f64,
            ReduceOp::Max => g.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            ReduceOp::Min => g.iter().cloned().fold(f64::INFINITY, f64::min),
        })
        .collect()
}

fn reductions(be: &dyn Backend) -> Result<()> {
    let shape = [3usize, 5, 7];
    let n = 105;
    let (x, y) = (values(n, 3), values(n, 4));
    let mapped: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a.exp() * b + 0.5).collect();
    let e = expr();
    for dtype in [DType::F32, DType::F64] {
        let (tx, ty) = (
            upload(be, &shape, &x, dtype)?,
            upload(be, &shape, &y, dtype)?,
        );
        let tm = upload(be, &shape, &mapped, dtype)?;
        for axes in [&[2usize][..], &[1, 2], &[0], &[0, 2], &[0, 1, 2]] {
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
                let want = reduce_ref(&mapped, &shape, axes, op);
                let body = Body::Reduce { expr: &e, axes, op };
                let inputs = [&tx, &ty];
                let got = be.kernel(&Kernel::new(&inputs, &shape, dtype, body))?;
                let what = format!("{op:?} of an expression over {axes:?}");
                assert_close(&what, &fetch(be, &got[0])?, &want, dtype);
                let plain = fetch(be, &be.reduce(&tm, axes, op)?)?;
                assert_close(&format!("{op:?} over {axes:?}"), &plain, &want, dtype);
            }
        }
    }
    Ok(())
}

test_device!(reductions_of_expressions_over_any_axes, reductions);

/// Softmax and layer norm along `axis` of `v` (of `shape`), in f64.
fn normalize_ref(v: &[f64], shape: &[usize], axis: usize, func: NormFn) -> Vec<f64> {
    let st = strides(shape);
    let mut out = vec![0.0; v.len()];
    for i in 0..v.len() {
        if !(i / st[axis]).is_multiple_of(shape[axis]) {
            continue;
        }
        let row: Vec<usize> = (0..shape[axis]).map(|k| i + k * st[axis]).collect();
        let xs: Vec<f64> = row.iter().map(|&j| v[j]).collect();
        let len = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / len;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / len;
        let mx = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = xs.iter().map(|x| (x - mx).exp()).sum();
        for (&j, &x) in row.iter().zip(&xs) {
            out[j] = match func {
                NormFn::Softmax => (x - mx).exp() / z,
                NormFn::LayerNorm => (x - mean) / (var + 1e-5).sqrt(),
            };
        }
    }
    out
}

fn normalisations(be: &dyn Backend) -> Result<()> {
    let shape = [4usize, 9, 6];
    let n = 216;
    let (x, y) = (values(n, 5), values(n, 6));
    let mapped: Vec<f64> = x.iter().zip(&y).map(|(a, b)| a.exp() * b + 0.5).collect();
    let e = expr();
    for dtype in [DType::F32, DType::F64] {
        let (tx, ty) = (
            upload(be, &shape, &x, dtype)?,
            upload(be, &shape, &y, dtype)?,
        );
        for axis in 0..3 {
            for func in [NormFn::Softmax, NormFn::LayerNorm] {
                let want = normalize_ref(&mapped, &shape, axis, func);
                let got = be.map_normalize(&e, &[&tx, &ty], &shape, axis, func, dtype)?;
                let what = format!("{func:?} of an expression along {axis}");
                assert_close(&what, &fetch(be, &got)?, &want, dtype);
                let plain = be.normalize(&upload(be, &shape, &mapped, dtype)?, axis, func)?;
                let what = format!("{func:?} along {axis}");
                assert_close(&what, &fetch(be, &plain)?, &want, dtype);
            }
        }
    }
    Ok(())
}

test_device!(
    normalisations_of_expressions_along_each_axis,
    normalisations
);

fn rows_fills_and_conversions(be: &dyn Backend) -> Result<()> {
    // x − mean(x) along axis 1, divided by the row's largest |x − mean| (two reductions, the
    // second reading the first).
    let shape = [5usize, 11];
    let x = values(55, 9);
    let centred = MapExpr::Binary(
        BinaryFn::Sub,
        Box::new(MapExpr::Input(0)),
        Box::new(MapExpr::Input(1)),
    );
    let reductions = [
        (MapExpr::Input(0), ReduceOp::Mean),
        (
            MapExpr::Unary(UnaryFn::Abs, Box::new(centred.clone())),
            ReduceOp::Max,
        ),
    ];
    let scaled = MapExpr::Binary(
        BinaryFn::Div,
        Box::new(centred),
        Box::new(MapExpr::Input(2)),
    );
    let mut want = Vec::new();
    for row in x.chunks(11) {
        let mean = row.iter().sum::<f64>() / 11.0;
        let top = row.iter().map(|v| (v - mean).abs()).fold(0.0, f64::max);
        want.extend(row.iter().map(|v| (v - mean) / top));
    }
    for dtype in [DType::F32, DType::F64] {
        let tx = upload(be, &shape, &x, dtype)?;
        let inputs = [&tx];
        let body = Body::Rows {
            expr: &scaled,
            reductions: &reductions,
            axis: 1,
        };
        let got = be.kernel(&Kernel::new(&inputs, &shape, dtype, body))?;
        assert_close("row map", &fetch(be, &got[0])?, &want, dtype);
        let filled = fetch(be, &be.full(&[3, 4], -1.25, dtype)?)?;
        assert_eq!(filled, vec![-1.25; 12]);
    }
    // A conversion between integer types is exact, beyond what a double holds.
    let big = [(1i64 << 53) + 1, -(1i64 << 60) - 3, 7];
    let t = be.upload(&HostTensor {
        shape: vec![3],
        data: tl_backend::HostData::I64(big.to_vec().into()),
    })?;
    let back = be.download(&be.cast(&t, DType::I64)?)?;
    assert_eq!(back.data, tl_backend::HostData::I64(big.to_vec().into()));
    Ok(())
}

test_device!(
    row_maps_fills_and_exact_conversions,
    rows_fills_and_conversions
);

/// Several outputs of one map are one launch where a backend fuses them, never more than one
/// per output; a reduction of an expression is one call.
#[test]
fn a_launch_log_counts_one_call_per_kernel() -> Result<()> {
    let cpu = tl_backend::cpu::CpuBackend::new();
    let log = ProfiledBackend::new(&cpu);
    let shape = [4usize, 6];
    let x = upload(&log, &shape, &values(24, 1), DType::F32)?;
    let y = upload(&log, &shape, &values(24, 2), DType::F32)?;
    log.enable();
    let exprs = [expr(), MapExpr::Input(1)];
    log.map_many(&exprs, &[&x, &y], &shape, DType::F32)?;
    assert_eq!(launches(&log), 1);
    log.map_reduce(&expr(), &[&x, &y], &shape, 1, ReduceOp::Sum, DType::F32)?;
    assert_eq!(launches(&log), 2);
    log.contract(&x, &[0, 1], &y, &[2, 1], &[0, 2])?;
    assert_eq!(launches(&log), 3);
    Ok(())
}

/// Contractions in which nothing is summed (a broadcast multiply, as gradients often are),
/// against an f64 reference: `C[n, c, y] = G[c] D[n, c, y]`, the operands in either order and
/// with permuted labels, and a Hadamard product.
fn products_that_sum_nothing(be: &dyn Backend) -> Result<()> {
    let (n, c, y) = (3usize, 5, 7);
    let (g, d) = (values(c, 11), values(n * c * y, 12));
    let want: Vec<f64> = (0..n * c * y).map(|i| g[(i / y) % c] * d[i]).collect();
    for dtype in [DType::F32, DType::F64] {
        let tg = upload(be, &[c], &g, dtype)?;
        let td = upload(be, &[n, c, y], &d, dtype)?;
        let got = be.contract(&tg, &[1], &td, &[0, 1, 2], &[0, 1, 2])?;
        assert_close("G[c] D[n, c, y]", &fetch(be, &got)?, &want, dtype);
        let swapped = be.contract(&td, &[0, 1, 2], &tg, &[1], &[0, 1, 2])?;
        assert_close("D[n, c, y] G[c]", &fetch(be, &swapped)?, &want, dtype);
        // The result laid out as [y, n, c].
        let permuted = be.contract(&tg, &[1], &td, &[0, 1, 2], &[2, 0, 1])?;
        let want_p: Vec<f64> = (0..n * c * y)
            .map(|k| {
                let (yy, rest) = (k / (n * c), k % (n * c));
                let (nn, cc) = (rest / c, rest % c);
                want[(nn * c + cc) * y + yy]
            })
            .collect();
        assert_close("[y, n, c]", &fetch(be, &permuted)?, &want_p, dtype);
        let square = be.contract(&td, &[0, 1, 2], &td, &[0, 1, 2], &[0, 1, 2])?;
        let want_sq: Vec<f64> = d.iter().map(|x| x * x).collect();
        assert_close("D D", &fetch(be, &square)?, &want_sq, dtype);
    }
    Ok(())
}

test_device!(
    products_that_sum_nothing_are_broadcast_multiplies,
    products_that_sum_nothing
);
