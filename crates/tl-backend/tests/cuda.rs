//! The CUDA backend against the CPU backend's f64 results, for every primitive and element
//! type, on random (never zero) data at awkward shapes and through permuted/broadcast views.
//! On a machine without a usable CUDA device every test is reported as ignored in the test
//! summary, with the reason printed once (the tests run under libtest-mimic for that).

use std::sync::{Arc, OnceLock};
use tl_backend::cpu::CpuBackend;
use tl_backend::cuda::CudaBackend;
use tl_backend::Calls;
use tl_backend::{
    Backend, BackendError, BinaryFn, DType, HostTensor, Layout, MapExpr, NormFn, ReduceOp,
    RowMapArgs, Tensor, UnaryFn,
};

type R = Result<(), BackendError>;

/// The shared CUDA backend, or `None` (after saying why) when there is none.
fn cuda_or_skip() -> Option<&'static CudaBackend> {
    static BE: OnceLock<Result<CudaBackend, String>> = OnceLock::new();
    match BE.get_or_init(|| CudaBackend::open().map_err(|e| e.to_string())) {
        Ok(be) => Some(be),
        Err(why) => {
            eprintln!("skipped: no CUDA driver ({why})");
            None
        }
    }
}

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
const SHAPES: &[&[usize]] = &[
    &[1],
    &[7],
    &[129],
    &[1000],
    &[3, 5, 7],
    &[2, 1, 9, 4],
    &[13, 129],
];

/// A small deterministic generator of values in ±[0.1, 2] (never zero).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let u = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
        let mag = 0.1 + 1.9 * u;
        if self.0 & 1 == 0 {
            mag
        } else {
            -mag
        }
    }
    fn vec(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn tol(d: DType) -> f64 {
    match d {
        DType::F64 => 1e-10,
        DType::F32 => 1e-5,
        _ => 1e-2,
    }
}

/// The same random data on the GPU (as `dtype`) and on the CPU (as f64 of the rounded values).
fn pair(
    be: &CudaBackend,
    rng: &mut Rng,
    shape: &[usize],
    dtype: DType,
) -> Result<(Tensor, Tensor), BackendError> {
    let n = shape.iter().product();
    let h = HostTensor::from_f64(shape.to_vec(), rng.vec(n), dtype);
    let r = HostTensor {
        shape: shape.to_vec(),
        data: h.data.convert(DType::F64),
    };
    Ok((be.upload(&h)?, CpuBackend::new().upload(&r)?))
}

/// Relative norm error of the GPU tensor against the CPU one, asserted below `bound`.
fn close(be: &CudaBackend, got: &Tensor, want: &Tensor, bound: f64, what: &str) -> R {
    let g = be.download(got)?;
    let w = CpuBackend::new().download(want)?;
    assert_eq!(g.shape, w.shape, "{what}: shape");
    let (g, w) = (g.data.to_f64(), w.data.to_f64());
    let mut num = 0.0;
    let mut den = 0.0;
    for (x, y) in g.iter().zip(&w) {
        assert_eq!(x.is_nan(), y.is_nan(), "{what}: NaN mismatch ({x} vs {y})");
        if !x.is_nan() {
            num += (x - y) * (x - y);
            den += y * y;
        }
    }
    let err = num.sqrt() / den.sqrt().max(1e-300);
    assert!(
        err <= bound || num == 0.0,
        "{what}: relative error {err:e} > {bound:e}"
    );
    Ok(())
}

/// A broadcast view: `t` (shape `[n]`) repeated `m` times along a new leading axis.
fn broadcast_rows(t: &Tensor, m: usize) -> Tensor {
    Tensor {
        layout: Layout {
            shape: vec![m, t.shape()[0]],
            strides: vec![0, t.layout.strides[0]],
            offset: t.layout.offset,
        },
        dtype: t.dtype,
        storage: t.storage.clone(),
    }
}

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
        UnaryFn::GeluGrad,
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
        BinaryFn::SigmoidTGradA,
        BinaryFn::SigmoidTGradT,
        BinaryFn::Pow,
    ] {
        e = Binary(BinaryFn::Add, Box::new(e), Box::new(Binary(f, pos(), y())));
    }
    Binary(
        BinaryFn::Add,
        Box::new(Binary(BinaryFn::Mul, Box::new(e), Box::new(Const(0.1)))),
        Box::new(Binary(BinaryFn::Pow, y(), Box::new(Const(2.0)))),
    )
}

fn upload_download_full_and_cast() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(7);
    let all = DType::ALL;
    for &d in &all {
        let h = HostTensor::from_f64(
            vec![3, 129],
            rng.vec(387).iter().map(|x| x * 50.0).collect(),
            d,
        );
        let t = be.upload(&h)?;
        assert_eq!(be.download(&t)?, h, "{d} round trip");
        let tt = t.permuted(&[1, 0]);
        let ct = cpu.upload(&h)?.permuted(&[1, 0]);
        assert_eq!(
            be.download(&tt)?,
            cpu.download(&ct)?,
            "{d} permuted download"
        );
        let f = be.full(&[7, 3], -2.5, d)?;
        assert_eq!(
            be.download(&f)?,
            cpu.download(&cpu.full(&[7, 3], -2.5, d)?)?,
            "{d} full"
        );
        for &to in &all {
            let g = be.download(&be.cast(&tt, to)?)?;
            let w = cpu.download(&cpu.cast(&ct, to)?)?;
            assert_eq!(g.shape, w.shape);
            let (g, w) = (g.data.to_f64(), w.data.to_f64());
            for (x, y) in g.iter().zip(&w) {
                assert!(
                    (x - y).abs() <= 1e-2 * y.abs(),
                    "cast {d} -> {to}: {x} vs {y}"
                );
            }
        }
    }
    be.synchronize()
}

fn map_matches_cpu_for_every_function_and_layout() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(11);
    let e = big_expr();
    for &d in &FLOATS {
        for &shape in SHAPES {
            let (g0, c0) = pair(be, &mut rng, shape, d)?;
            let (g1, c1) = pair(be, &mut rng, shape, d)?;
            let (g2, c2) = pair(be, &mut rng, shape, d)?;
            let got = be.map(&e, &[&g0, &g1, &g2], shape, d)?;
            let want = cpu.map(&e, &[&c0, &c1, &c2], shape, DType::F64)?;
            close(be, &got, &want, tol(d), &format!("map {d} {shape:?}"))?;
        }
        // Permuted and broadcast inputs (rows of 129, and of 128: four at a time).
        for width in [129, 128] {
            let (a, ca) = pair(be, &mut rng, &[width, 7], d)?;
            let (b, cb) = pair(be, &mut rng, &[width], d)?;
            let (s, cs) = pair(be, &mut rng, &[1, 1], d)?;
            let out = [7, width];
            let got = be.map(
                &e,
                &[&a.permuted(&[1, 0]), &broadcast_rows(&b, 7), &s],
                &out,
                d,
            )?;
            let want = cpu.map(
                &e,
                &[&ca.permuted(&[1, 0]), &broadcast_rows(&cb, 7), &cs],
                &out,
                DType::F64,
            )?;
            close(be, &got, &want, tol(d), &format!("map views {d} {width}"))?;
        }
        let (a, ca) = pair(be, &mut rng, &[129, 7], d)?;
        let (b, cb) = pair(be, &mut rng, &[129], d)?;
        let (s, cs) = pair(be, &mut rng, &[1, 1], d)?;
        let out = [7, 129];
        // Reductions of an expression over its last axes, without storing its values.
        // (Rows past 65536 elements over several axes reduce in two passes.)
        for (shape, reduced) in [
            (&[7usize, 129][..], 1),
            (&[3, 5, 7], 2),
            (&[2, 5000], 1),
            (&[3, 300, 301], 2),
            (&[2, 129, 1000], 3),
        ] {
            let (x, cx) = pair(be, &mut rng, shape, d)?;
            let mut bshape = shape.to_vec();
            bshape[0] = 1;
            let (y, cy) = pair(be, &mut rng, &bshape, d)?;
            let (s1, cs1) = pair(be, &mut rng, &vec![1; shape.len()], d)?;
            for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
                let got = be.map_reduce(&e, &[&x, &y, &s1], shape, reduced, op, d)?;
                let want = cpu.map_reduce(&e, &[&cx, &cy, &cs1], shape, reduced, op, DType::F64)?;
                close(
                    be,
                    &got,
                    &want,
                    tol(d).max(1e-5),
                    &format!("map_reduce {op:?} {d} {shape:?} last {reduced}"),
                )?;
            }
        }
        // Softmax and layer norm of an expression, without storing its values; the inputs
        // broadcast along other axes, along the normalised one, and are permuted views.
        for (shape, axis) in [
            (&[7usize, 129][..], 1),
            (&[3, 5, 7], 1),
            (&[2, 5000], 1),
            (&[4, 3, 33], 2),
            (&[3, 2, 128], 2),
            (&[5, 256], 1),
        ] {
            let (x, cx) = pair(be, &mut rng, shape, d)?;
            let mut bshape = shape.to_vec();
            bshape[0] = 1;
            let (y, cy) = pair(be, &mut rng, &bshape, d)?;
            let mut ashape = shape.to_vec();
            ashape[axis] = 1;
            let (z, cz) = pair(be, &mut rng, &ashape, d)?;
            let reversed: Vec<usize> = shape.iter().rev().copied().collect();
            let (w, cw) = pair(be, &mut rng, &reversed, d)?;
            let back: Vec<usize> = (0..shape.len()).rev().collect();
            let (w, cw) = (w.permuted(&back), cw.permuted(&back));
            let sum = MapExpr::Binary(
                BinaryFn::Add,
                Box::new(MapExpr::Binary(
                    BinaryFn::Add,
                    Box::new(MapExpr::Input(0)),
                    Box::new(MapExpr::Input(1)),
                )),
                Box::new(MapExpr::Binary(
                    BinaryFn::Mul,
                    Box::new(MapExpr::Input(2)),
                    Box::new(MapExpr::Input(3)),
                )),
            );
            for f in [NormFn::Softmax, NormFn::LayerNorm] {
                let got = be.map_normalize(&sum, &[&x, &y, &z, &w], shape, axis, f, d)?;
                let want =
                    cpu.map_normalize(&sum, &[&cx, &cy, &cz, &cw], shape, axis, f, DType::F64)?;
                close(
                    be,
                    &got,
                    &want,
                    tol(d).max(1e-5),
                    &format!("map_normalize {f:?} {d} {shape:?} axis {axis}"),
                )?;
            }
        }
        // Several outputs from one pass over the same (viewed) inputs.
        let exprs = [
            e.clone(),
            MapExpr::Input(1),
            MapExpr::Unary(UnaryFn::Tanh, Box::new(MapExpr::Input(0))),
        ];
        let views = [&a.permuted(&[1, 0]), &broadcast_rows(&b, 7), &s];
        let cviews = [&ca.permuted(&[1, 0]), &broadcast_rows(&cb, 7), &cs];
        let got = be.map_many(&exprs, &views, &out, d)?;
        assert_eq!(got.len(), 3);
        for (k, (g, x)) in got.iter().zip(&exprs).enumerate() {
            assert_eq!(g.dtype, d);
            let want = cpu.map(x, &cviews, &out, DType::F64)?;
            close(be, g, &want, tol(d), &format!("map_many output {k} {d}"))?;
        }
        // A rank-3 view with a broadcast middle axis.
        let (c, cc) = pair(be, &mut rng, &[5, 1, 3], d)?;
        let (x, cx) = pair(be, &mut rng, &[3, 4, 5], d)?;
        let sum = MapExpr::Binary(
            BinaryFn::Add,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Input(1)),
        );
        let got = be.map(&sum, &[&c.permuted(&[2, 1, 0]), &x], &[3, 4, 5], d)?;
        let want = cpu.map(
            &sum,
            &[&cc.permuted(&[2, 1, 0]), &cx],
            &[3, 4, 5],
            DType::F64,
        )?;
        close(
            be,
            &got,
            &want,
            tol(d),
            &format!("map rank-3 broadcast {d}"),
        )?;
    }
    // Bool and i64 inputs, Bool output.
    let bits = HostTensor::from_f64(
        vec![129],
        (0..129).map(|i| f64::from(i % 3 == 0)).collect(),
        DType::Bool,
    );
    let ints = HostTensor::from_f64(
        vec![129],
        (0..129).map(|i| f64::from(i - 64)).collect(),
        DType::I64,
    );
    let e = MapExpr::Unary(
        UnaryFn::Step,
        Box::new(MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Input(1)),
        )),
    );
    let got = be.map(
        &e,
        &[&be.upload(&bits)?, &be.upload(&ints)?],
        &[129],
        DType::Bool,
    )?;
    let want = cpu.map(
        &e,
        &[&cpu.upload(&bits)?, &cpu.upload(&ints)?],
        &[129],
        DType::Bool,
    )?;
    assert_eq!(be.download(&got)?, cpu.download(&want)?);
    Ok(())
}

fn reduce_matches_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(13);
    let cases: &[(&[usize], &[&[usize]])] = &[
        (&[1], &[&[], &[0]]),
        (&[1000], &[&[0]]),
        (&[13, 129], &[&[0], &[1], &[0, 1]]),
        (&[3, 5, 7], &[&[0], &[1], &[2], &[0, 2], &[0, 1, 2]]),
        (&[2, 1, 9, 4], &[&[1, 3], &[2]]),
        (&[3, 40000], &[&[1]]),
        // Long rows are split over blocks, with a partial last chunk.
        (&[1_000_003], &[&[0]]),
        (&[517, 301], &[&[0, 1]]),
        // A warp per row up to 4096, a block beyond.
        (&[5, 4096], &[&[1]]),
        (&[5, 4097], &[&[1]]),
        // Columns of many rows: chunks of rows per thread, combined by a second pass.
        (&[4099, 67], &[&[0]]),
    ];
    for &d in &FLOATS {
        for &(shape, axes_list) in cases {
            let (g, c) = pair(be, &mut rng, shape, d)?;
            for &axes in axes_list {
                for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Mean] {
                    let got = be.reduce(&g, axes, op)?;
                    let want = cpu.reduce(&c, axes, op)?;
                    close(
                        be,
                        &got,
                        &want,
                        tol(d).max(1e-5),
                        &format!("reduce {op:?} {d} {shape:?} {axes:?}"),
                    )?;
                }
            }
        }
        let (g, c) = pair(be, &mut rng, &[7, 129], d)?;
        let got = be.reduce(&g.permuted(&[1, 0]), &[1], ReduceOp::Sum)?;
        let want = cpu.reduce(&c.permuted(&[1, 0]), &[1], ReduceOp::Sum)?;
        close(
            be,
            &got,
            &want,
            tol(d).max(1e-5),
            &format!("reduce permuted {d}"),
        )?;
    }
    let e = be.full(&[3, 0], 1.0, DType::F32)?;
    let r = be.download(&be.reduce(&e, &[1], ReduceOp::Max)?)?;
    assert_eq!(r.data.to_f64(), vec![0.0; 3]);
    Ok(())
}

fn normalize_matches_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(17);
    for &d in &FLOATS {
        for &shape in SHAPES {
            let (g, c) = pair(be, &mut rng, shape, d)?;
            for axis in 0..shape.len() {
                for f in [NormFn::Softmax, NormFn::LayerNorm] {
                    let got = be.normalize(&g, axis, f)?;
                    let want = cpu.normalize(&c, axis, f)?;
                    close(
                        be,
                        &got,
                        &want,
                        tol(d).max(1e-5),
                        &format!("{f:?} {d} {shape:?} axis {axis}"),
                    )?;
                }
            }
        }
        // Rows longer than a warp handles go to the one-block-per-row kernel.
        let (g, c) = pair(be, &mut rng, &[3, 5003], d)?;
        for axis in 0..2 {
            for f in [NormFn::Softmax, NormFn::LayerNorm] {
                let got = be.normalize(&g, axis, f)?;
                let want = cpu.normalize(&c, axis, f)?;
                close(
                    be,
                    &got,
                    &want,
                    tol(d).max(1e-5),
                    &format!("{f:?} {d} long rows, axis {axis}"),
                )?;
            }
        }
        let (g, c) = pair(be, &mut rng, &[129, 7], d)?;
        let got = be.normalize(&g.permuted(&[1, 0]), 1, NormFn::Softmax)?;
        let want = cpu.normalize(&c.permuted(&[1, 0]), 1, NormFn::Softmax)?;
        close(
            be,
            &got,
            &want,
            tol(d).max(1e-5),
            &format!("softmax permuted {d}"),
        )?;
    }
    Ok(())
}

fn gather_and_scatter_match_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(19);
    for &d in &FLOATS {
        let (g, c) = pair(be, &mut rng, &[13, 129], d)?;
        let n = 13 * 129;
        let index: Vec<i64> = (0..1000)
            .map(|k| if k % 7 == 3 { -1 } else { (k * 37 % n) as i64 })
            .collect();
        for (gv, cv) in [
            (g.clone(), c.clone()),
            (g.permuted(&[1, 0]), c.permuted(&[1, 0])),
        ] {
            let got = be.gather_once(&gv, &index, &[10, 100])?;
            let want = cpu.gather_once(&cv, &index, &[10, 100])?;
            close(be, &got, &want, tol(d).max(1e-6), &format!("gather {d}"))?;
        }
        let (v, cvals) = pair(be, &mut rng, &[1000], d)?;
        // Collisions (k % 129), negatives, and cells that receive nothing (129..200).
        let sidx: Vec<i64> = (0..1000)
            .map(|k| if k % 11 == 0 { -1 } else { (k % 129) as i64 })
            .collect();
        for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
            let got = be.scatter_once(&v, &sidx, &[200], op)?;
            let want = cpu.scatter_once(&cvals, &sidx, &[200], op)?;
            close(
                be,
                &got,
                &want,
                tol(d).max(1e-5),
                &format!("scatter {op:?} {d}"),
            )?;
        }
    }
    let bits = HostTensor::from_f64(
        vec![7],
        vec![1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0],
        DType::Bool,
    );
    let idx = [6, -1, 0, 1, 1];
    let got = be.gather_once(&be.upload(&bits)?, &idx, &[5])?;
    let want = cpu.gather_once(&cpu.upload(&bits)?, &idx, &[5])?;
    assert_eq!(be.download(&got)?, cpu.download(&want)?);
    assert!(matches!(
        be.gather_once(&got, &[5], &[1]),
        Err(BackendError::Shape { .. })
    ));
    Ok(())
}

fn contract_matches_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(23);
    // (a shape, a labels, b shape, b labels, out labels)
    type Case = (
        &'static [usize],
        &'static [u32],
        &'static [usize],
        &'static [u32],
        &'static [u32],
    );
    let cases: &[Case] = &[
        (&[129, 7], &[0, 1], &[7, 1000], &[1, 2], &[0, 2]),
        (&[1, 1], &[0, 1], &[1, 1], &[1, 2], &[0, 2]),
        (&[1000], &[0], &[1000], &[0], &[]),
        (&[7], &[0], &[129], &[1], &[1, 0]),
        (&[3, 5, 7], &[0, 1, 2], &[3, 7, 4], &[0, 2, 3], &[0, 1, 3]),
        (&[3, 5, 7], &[0, 1, 2], &[7, 4, 3], &[2, 3, 0], &[3, 1, 0]),
        (&[2, 9, 4], &[0, 1, 2], &[4, 5], &[2, 3], &[3]),
        (&[13, 129], &[0, 1], &[129, 13], &[1, 0], &[]),
        // Operands stored transposed (read in place) and results computed transposed.
        (&[129, 7], &[0, 1], &[1000, 7], &[2, 1], &[0, 2]),
        (&[7, 129], &[1, 0], &[7, 1000], &[1, 2], &[0, 2]),
        (&[129, 7], &[0, 1], &[7, 1000], &[1, 2], &[2, 0]),
        (&[3, 5, 7], &[0, 1, 2], &[3, 4, 7], &[0, 3, 2], &[0, 1, 3]),
        (&[3, 7, 5], &[0, 2, 1], &[3, 7, 4], &[0, 2, 3], &[0, 3, 1]),
    ];
    for &d in &FLOATS {
        for &(sa, la, sb, lb, lo) in cases {
            let (a, ca) = pair(be, &mut rng, sa, d)?;
            let (b, cb) = pair(be, &mut rng, sb, d)?;
            let got = be.contract(&a, la, &b, lb, lo)?;
            let want = cpu.contract(&ca, la, &cb, lb, lo)?;
            close(
                be,
                &got,
                &want,
                tol(d).max(1e-5),
                &format!("contract {d} {sa:?}{la:?} {sb:?}{lb:?} -> {lo:?}"),
            )?;
        }
        // Permuted and broadcast operands.
        let (a, ca) = pair(be, &mut rng, &[7, 129], d)?;
        let (b, cb) = pair(be, &mut rng, &[129], d)?;
        let got = be.contract(
            &a.permuted(&[1, 0]),
            &[0, 1],
            &broadcast_rows(&b, 7),
            &[1, 2],
            &[2, 0],
        )?;
        let want = cpu.contract(
            &ca.permuted(&[1, 0]),
            &[0, 1],
            &broadcast_rows(&cb, 7),
            &[1, 2],
            &[2, 0],
        )?;
        close(
            be,
            &got,
            &want,
            tol(d).max(1e-5),
            &format!("contract views {d}"),
        )?;
    }
    Ok(())
}

fn contract_map_epilogues_match_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(29);
    use MapExpr::*;
    let add = |a: MapExpr, b: MapExpr| Binary(BinaryFn::Add, Box::new(a), Box::new(b));
    let relu = |a: MapExpr| Unary(UnaryFn::Relu, Box::new(a));
    let exprs = [
        relu(add(add(Input(0), Input(1)), Input(2))),
        add(Input(2), Input(0)),
        relu(add(Input(1), Input(0))),
        relu(Input(0)),
        Unary(UnaryFn::Gelu, Box::new(add(Input(0), Input(1)))),
        add(
            Binary(BinaryFn::Mul, Box::new(Input(0)), Box::new(Input(2))),
            Input(1),
        ),
        // A scaled product (cuBLASLt's alpha), with and without a bias and ReLU.
        Binary(BinaryFn::Mul, Box::new(Input(0)), Box::new(Const(0.17))),
        relu(add(
            Binary(BinaryFn::Mul, Box::new(Const(-1.5)), Box::new(Input(0))),
            Input(1),
        )),
    ];
    for &d in &FLOATS {
        for &(m, k, n) in &[(1, 1, 1), (7, 129, 13), (129, 7, 1000), (64, 64, 64)] {
            for b_transposed in [false, true] {
                let (x, cx) = pair(be, &mut rng, &[m, k], d)?;
                let (w, cw, lw) = if b_transposed {
                    let (w, cw) = pair(be, &mut rng, &[n, k], d)?;
                    (w, cw, [2u32, 1])
                } else {
                    let (w, cw) = pair(be, &mut rng, &[k, n], d)?;
                    (w, cw, [1u32, 2])
                };
                let (bias, cbias) = pair(be, &mut rng, &[n], d)?;
                let (res, cres) = pair(be, &mut rng, &[m, n], d)?;
                let (gb, cb) = (broadcast_rows(&bias, m), broadcast_rows(&cbias, m));
                // The GPU's `expr(x·w, bias, residual)` against the CPU's in float64.
                let check = |expr: &MapExpr, bias: (&Tensor, &Tensor), label: String| -> R {
                    let got =
                        be.contract_map(&x, &[0, 1], &w, &lw, &[0, 2], expr, &[bias.0, &res], d)?;
                    let want = cpu.contract_map(
                        &cx,
                        &[0, 1],
                        &cw,
                        &lw,
                        &[0, 2],
                        expr,
                        &[bias.1, &cres],
                        DType::F64,
                    )?;
                    assert_eq!(got.dtype, d, "{label} result type");
                    let label = format!("{label} {d} {m}x{k}x{n} transposed {b_transposed}");
                    close(be, &got, &want, tol(d).max(1e-5), &label)
                };
                for (e, expr) in exprs.iter().enumerate() {
                    check(expr, (&gb, &cb), format!("epilogue {e}"))?;
                }
                // Terms broadcast along the columns are no bias vector: a scalar (seen with
                // size-1 axes, as a plan passes it) and a value per row.
                let (s, cs) = pair(be, &mut rng, &[], d)?;
                let (col, ccol) = pair(be, &mut rng, &[m], d)?;
                let views = [
                    (s.expanded_to_rank(&[], 2), cs.expanded_to_rank(&[], 2)),
                    (
                        col.expanded_to_rank(&[0], 2),
                        ccol.expanded_to_rank(&[0], 2),
                    ),
                ];
                let biased = [add(Input(0), Input(1)), exprs[2].clone(), exprs[7].clone()];
                for (v, (g, c)) in views.iter().enumerate() {
                    for (e, expr) in biased.iter().enumerate() {
                        check(expr, (g, c), format!("broadcast term {v}, epilogue {e}"))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn boolean_contractions_count_paths_exactly() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(31);
    for &(m, k, n) in &[(1, 1, 1), (129, 300, 77), (7, 1000, 13)] {
        let mut bits =
            |len: usize| -> Vec<u8> { (0..len).map(|_| u8::from(rng.next() > 0.0)).collect() };
        let a = HostTensor {
            shape: vec![m, k],
            data: tl_backend::HostData::Bool(bits(m * k).into()),
        };
        let b = HostTensor {
            shape: vec![k, n],
            data: tl_backend::HostData::Bool(bits(k * n).into()),
        };
        let got = be.contract(&be.upload(&a)?, &[0, 1], &be.upload(&b)?, &[1, 2], &[0, 2])?;
        let want = cpu.contract(
            &cpu.upload(&a)?,
            &[0, 1],
            &cpu.upload(&b)?,
            &[1, 2],
            &[0, 2],
        )?;
        let (g, w) = (be.download(&got)?, cpu.download(&want)?);
        assert_eq!(g.data.to_f64(), w.data.to_f64(), "boolean {m}x{k}x{n}");
    }
    Ok(())
}

fn shared_index_vectors_are_reused_and_still_checked() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let mut rng = Rng(37);
    let (x, _) = pair(be, &mut rng, &[1000], DType::F32)?;
    let index: Arc<Vec<i64>> = Arc::new(
        (0..129i64)
            .map(|k| if k % 5 == 0 { -1 } else { k * 7 % 1000 })
            .collect(),
    );
    let reversed: Arc<Vec<i64>> = Arc::new((0..1000).rev().collect());
    let plain = be
        .download(&be.gather_once(&x, &index, &[129])?)?
        .data
        .to_f64();
    let plain_back = be
        .download(&be.scatter_once(&x, &reversed, &[1000], ReduceOp::Sum)?)?
        .data
        .to_f64();
    for _ in 0..3 {
        let shared = be.download(&be.gather_shared(&x, &index, &[129])?)?;
        assert_eq!(shared.data.to_f64(), plain);
        let back = be.scatter_shared(&x, &reversed, &[1000], ReduceOp::Sum)?;
        assert_eq!(be.download(&back)?.data.to_f64(), plain_back);
    }
    // A 16-bit result of mixed operands (f32 · bf16) is multiplied in f32, then narrowed.
    let (a32, ca) = pair(be, &mut rng, &[36, 32], DType::F32)?;
    let (b16, cb) = pair(be, &mut rng, &[32, 36], DType::BF16)?;
    let id = MapExpr::Input(0);
    let got = be.contract_map(&a32, &[0, 1], &b16, &[1, 2], &[0, 2], &id, &[], DType::BF16)?;
    assert_eq!(got.dtype, DType::BF16);
    let want = CpuBackend::new().contract(&ca, &[0, 1], &cb, &[1, 2], &[0, 2])?;
    close(be, &got, &want, 1e-2, "mixed f32 · bf16 into bf16")?;
    // The cached copy is still checked against each call's tensor.
    let (small, _) = pair(be, &mut rng, &[10], DType::F32)?;
    assert!(be.gather_shared(&small, &index, &[129]).is_err());
    Ok(())
}

fn tf32_contract_is_within_1e3() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let tf = CudaBackend::open().map_err(|e| BackendError::Device(e.to_string()))?;
    tf.set_tf32(true);
    assert!(tf.tf32() && !be.tf32());
    let cpu = CpuBackend::new();
    let mut rng = Rng(29);
    let (a, ca) = pair(&tf, &mut rng, &[129, 1000], DType::F32)?;
    let (b, cb) = pair(&tf, &mut rng, &[1000, 7], DType::F32)?;
    let got = tf.contract(&a, &[0, 1], &b, &[1, 2], &[0, 2])?;
    let want = cpu.contract(&ca, &[0, 1], &cb, &[1, 2], &[0, 2])?;
    close(&tf, &got, &want, 1e-3, "tf32 contract")
}

/// Held by tests that synchronise the whole device (emptying the cache) or capture a stream:
/// a device-wide synchronisation while another stream is being captured breaks the capture.
static DEVICE_WIDE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn device_wide() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_WIDE.lock().unwrap_or_else(|e| e.into_inner())
}

fn a_recording_replays_its_work_over_the_same_memory() -> R {
    let Some(_) = cuda_or_skip() else {
        return Ok(());
    };
    let _serial = device_wide();
    // A backend (stream) of its own, so that only this test's work is captured.
    let be = CudaBackend::open().map_err(|e| BackendError::Device(e.to_string()))?;
    assert!(be.can_record());
    let mut rng = Rng(0x5eed_1234);
    for d in [DType::F32, DType::BF16] {
        let (x, cx) = pair(&be, &mut rng, &[7, 129], d)?;
        let (y, cy) = pair(&be, &mut rng, &[7, 129], d)?;
        let (w, cw) = pair(&be, &mut rng, &[129, 5], d)?;
        let cpu = CpuBackend::new();
        // x ← 0.5·x + y in place, then z = x·w and s = Σ tanh(z): once outside the recording
        // (compiling the kernels), then recorded and replayed three times.
        let update = MapExpr::Binary(
            BinaryFn::Add,
            Box::new(MapExpr::Binary(
                BinaryFn::Mul,
                Box::new(MapExpr::Input(0)),
                Box::new(MapExpr::Const(0.5)),
            )),
            Box::new(MapExpr::Input(1)),
        );
        let tanh = MapExpr::Unary(UnaryFn::Tanh, Box::new(MapExpr::Input(0)));
        let step = |be: &dyn Backend,
                    x: &Tensor,
                    y: &Tensor,
                    w: &Tensor|
         -> Result<(Tensor, Tensor), BackendError> {
            be.map_many_into(std::slice::from_ref(&update), &[x, y], &[7, 129], &[x])?;
            let z = be.contract(x, &[0, 1], w, &[1, 2], &[0, 2])?;
            let s = be.map_reduce(&tanh, &[&z], &[7, 5], 2, ReduceOp::Sum, d)?;
            Ok((z, s))
        };
        step(&be, &x, &y, &w)?;
        be.begin_recording()?;
        let (z, s) = step(&be, &x, &y, &w)?;
        let rec = be.end_recording()?;
        for _ in 0..3 {
            be.replay(&rec)?;
        }
        // The reference: four updates of x (one before the recording, three replays).
        let mut cx = cx;
        for _ in 0..4 {
            cx = cpu.map(&update, &[&cx, &cy], &[7, 129], DType::F64)?;
        }
        let cz = cpu.contract(&cx, &[0, 1], &cw, &[1, 2], &[0, 2])?;
        let cs = cpu.map_reduce(&tanh, &[&cz], &[7, 5], 2, ReduceOp::Sum, DType::F64)?;
        let bound = if d == DType::F32 { 1e-5 } else { 2e-2 };
        close(&be, &x, &cx, bound, &format!("{d} x after replays"))?;
        close(&be, &z, &cz, bound, &format!("{d} z after replays"))?;
        close(&be, &s, &cs, bound, &format!("{d} s after replays"))?;
        drop(rec);
        // The recording's memory is free again and the stream runs ordinary work.
        let t = be.full(&[3], 2.0, DType::F32)?;
        assert_eq!(be.download(&t)?.data.to_f64(), vec![2.0; 3]);
    }
    // Host data cannot be copied in while recording (the copy would read freed memory at a
    // later replay): an error.
    be.begin_recording()?;
    assert!(be
        .upload(&HostTensor::from_f64(vec![2], vec![1.0, 2.0], DType::F32))
        .is_err());
    drop(be.end_recording());
    // Reading back while recording cannot be recorded: an error, and the stream recovers.
    be.begin_recording()?;
    let t = be.full(&[3], 1.0, DType::F32)?;
    assert!(be.download(&t).is_err());
    assert!(be.end_recording().is_err());
    let t = be.full(&[3], 4.0, DType::F32)?;
    assert_eq!(be.download(&t)?.data.to_f64(), vec![4.0; 3]);
    Ok(())
}

fn non_finite_flag_finds_one_bad_element_among_many_tensors() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let mut rng = Rng(77);
    let cpu = CpuBackend::new();
    for d in FLOATS {
        let mut tensors = Vec::new();
        for shape in [&[129, 1000][..], &[7], &[3, 5, 7], &[1]] {
            tensors.push(pair(be, &mut rng, shape, d)?.0);
        }
        // A permuted view too.
        tensors.push(tensors[2].permuted(&[2, 0, 1]));
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let flag = be.download(&be.non_finite_flag(&refs)?)?.data.to_f64();
        assert_eq!(flag, vec![0.0], "{d}: all finite");
        let want = cpu.download(&cpu.non_finite_flag(&[])?)?.data.to_f64();
        assert_eq!(want, vec![0.0]);
        for (k, bad) in [
            (0usize, f64::NAN),
            (0, f64::INFINITY),
            (1, f64::NEG_INFINITY),
            (4, f64::NAN),
        ] {
            // The last element of the big tensor, or one of the others (through the view).
            let src = if k == 4 { 2 } else { k };
            let host = be.download(&tensors[src])?;
            let mut v = host.data.to_f64();
            let at = if k == 0 { v.len() - 1 } else { v.len() / 2 };
            v[at] = bad;
            let mut swapped = tensors.clone();
            let replaced = be.upload(&HostTensor::from_f64(host.shape.clone(), v, d))?;
            if k == 4 {
                swapped[2] = replaced.clone();
                swapped[4] = replaced.permuted(&[2, 0, 1]);
            } else {
                swapped[k] = replaced;
            }
            let refs: Vec<&Tensor> = if k == 4 {
                vec![&swapped[0], &swapped[4]]
            } else {
                swapped.iter().collect()
            };
            let flag = be.download(&be.non_finite_flag(&refs)?)?.data.to_f64();
            assert!(flag[0].is_nan(), "{d}: {bad} in tensor {k} not found");
        }
    }
    Ok(())
}

fn map_many_into_rejects_views_and_wrong_shapes() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let x = be.full(&[4], 1.0, DType::F32)?;
    let wide = be.full(&[2, 4], 1.0, DType::F32)?;
    let e = [MapExpr::Input(0)];
    assert!(be.map_many_into(&e, &[&x], &[2, 4], &[&x]).is_err());
    let view = broadcast_rows(&x, 2);
    assert!(be.map_many_into(&e, &[&wide], &[2, 4], &[&view]).is_err());
    be.map_many_into(&e, &[&x], &[4], &[&x])?;
    Ok(())
}

fn allocator_reuses_freed_blocks() -> R {
    let Some(_) = cuda_or_skip() else {
        return Ok(());
    };
    let _serial = device_wide();
    // A backend of its own, so no other test takes the freed block in between.
    let be = CudaBackend::open().map_err(|e| BackendError::Device(e.to_string()))?;
    let before = be.memory_stats();
    let a = be.allocate_raw(3_000_000)?;
    drop(a);
    let _b = be.allocate_raw(3_000_000)?;
    let after = be.memory_stats();
    assert_eq!(after.cache_hits, before.cache_hits + 1, "{after:?}");
    assert_eq!(after.allocations, before.allocations + 2);
    assert!(after.reserved >= 3_000_000 && after.peak >= after.in_use);
    be.empty_cache();
    Ok(())
}

fn out_of_memory_is_an_error() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let _serial = device_wide();
    match be.allocate_raw(1 << 50) {
        Err(BackendError::OutOfMemory { requested, .. }) => assert_eq!(requested, 1 << 50),
        other => panic!("expected OutOfMemory, got {other:?}"),
    }
    // Still usable afterwards.
    let t = be.full(&[4], 1.0, DType::F32)?;
    assert_eq!(be.download(&t)?.data.to_f64(), vec![1.0; 4]);
    Ok(())
}

/// Attention in one kernel against the composed f64 computation on the CPU: heads laid out
/// `[s, p, h, k]` (the projections' natural order), a padding mask, odd query and key counts,
/// every supported feature count class, one, two and no batch axes.
fn attention_kernel_matches_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(41);
    // (sentences, heads, queries, keys, key features, value features)
    let cases: &[(usize, usize, usize, usize, usize, usize)] = &[
        (2, 3, 128, 128, 32, 32),
        (1, 2, 37, 77, 16, 8),
        (3, 1, 130, 65, 64, 24),
        (1, 1, 5, 200, 128, 128),
        (2, 4, 129, 1, 32, 16),
    ];
    let scaled_plus_mask = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Binary(
            BinaryFn::Mul,
            Box::new(MapExpr::Input(0)),
            Box::new(MapExpr::Const(0.3)),
        )),
        Box::new(MapExpr::Input(1)),
    );
    for &d in &[DType::BF16, DType::F16, DType::F32] {
        for &(s, h, m, n, dk, dv) in cases {
            let (q, cq) = pair(be, &mut rng, &[s, m, h, dk], d)?;
            let (k, ck) = pair(be, &mut rng, &[s, n, h, dk], d)?;
            let (v, cv) = pair(be, &mut rng, &[s, n, h, dv], d)?;
            let mask: Vec<f64> = (0..s * n)
                .map(|i| {
                    if (i * 7) % 5 == 0 && i % n != 0 {
                        -1e9
                    } else {
                        0.0
                    }
                })
                .collect();
            let hm = HostTensor::from_f64(vec![s, 1, 1, n], mask, d);
            let cm = HostTensor {
                shape: hm.shape.clone(),
                data: hm.data.convert(DType::F64),
            };
            let (gm, cm) = (be.upload(&hm)?, cpu.upload(&cm)?);
            // Labels: s 0, h 1, p 2, p' 3, k 4, value feature 5.
            let args = |q, k, v, extra, dtype| tl_backend::AttentionArgs {
                q: (q, &[0, 2, 1, 4]),
                k: (k, &[0, 3, 1, 4]),
                v: (v, &[0, 3, 1, 5]),
                scores: &[0, 1, 2, 3],
                key: 3,
                expr: &scaled_plus_mask,
                extra,
                out: &[0, 2, 1, 5],
                dtype,
            };
            let what = format!("attention {d} s{s} h{h} m{m} n{n} dk{dk} dv{dv}");
            let (cpu_mask, gpu_mask) = ([&cm], [&gm]);
            let want = cpu.attention(&args(&cq, &ck, &cv, &cpu_mask, DType::F64))?;
            let fused = be.fused_attention(&args(&q, &k, &v, &gpu_mask, d))?;
            assert_eq!(fused.is_some(), d != DType::F32, "{what}: kernel taken");
            let got = be.attention(&args(&q, &k, &v, &gpu_mask, d))?;
            close(be, &got, &want, tol(d).max(1e-5), &what)?;
            if let Some(f) = fused {
                close(be, &f, &want, tol(d), &what)?;
            }
        }
    }
    // One batch axis (heads), no mask; and none at all.
    for batch in [true, false] {
        let d = DType::BF16;
        let (h, m, n, dk) = (if batch { 3 } else { 1 }, 50, 90, 48);
        let (shape_q, shape_k): (Vec<usize>, Vec<usize>) = if batch {
            (vec![h, m, dk], vec![h, n, dk])
        } else {
            (vec![m, dk], vec![n, dk])
        };
        let (q, cq) = pair(be, &mut rng, &shape_q, d)?;
        let (k, ck) = pair(be, &mut rng, &shape_k, d)?;
        let (v, cv) = pair(be, &mut rng, &shape_k, d)?;
        // Labels (q, k, v, scores, out), with the heads' label 1 or without it.
        let labels: [&[u32]; 5] = if batch {
            [&[1, 2, 4], &[1, 3, 4], &[1, 3, 5], &[1, 2, 3], &[1, 2, 5]]
        } else {
            [&[2, 4], &[3, 4], &[3, 5], &[2, 3], &[2, 5]]
        };
        let [lq, lk, lv, ls, lo] = labels;
        let args = |q, k, v, dtype| tl_backend::AttentionArgs {
            q: (q, lq),
            k: (k, lk),
            v: (v, lv),
            scores: ls,
            key: 3,
            expr: &MapExpr::Input(0),
            extra: &[],
            out: lo,
            dtype,
        };
        let want = cpu.attention(&args(&cq, &ck, &cv, DType::F64))?;
        let got = be.fused_attention(&args(&q, &k, &v, d))?;
        let got = got.expect("kernel taken");
        close(be, &got, &want, tol(d), &format!("attention batch {batch}"))?;
    }
    Ok(())
}

/// `map_rows` on the GPU (inputs `gpu`, element type `d`) against the CPU in f64 (inputs
/// `cpu`), the same map and reductions.
fn rows_match(
    (be, gpu): (&CudaBackend, &[&Tensor]),
    (cpu_be, cpu): (&CpuBackend, &[&Tensor]),
    (expr, reductions): (&MapExpr, &[(MapExpr, ReduceOp)]),
    (shape, axis, d): (&[usize], usize, DType),
    what: &str,
) -> R {
    let args = |inputs, dtype| RowMapArgs {
        expr,
        inputs,
        reductions,
        shape,
        axis,
        dtype,
    };
    let got = be.map_rows(&args(gpu, d))?;
    let want = cpu_be.map_rows(&args(cpu, DType::F64))?;
    close(be, &got, &want, tol(d).max(1e-5), what)
}

/// Maps reading reductions of their own inputs along one axis (the steps of a hand-written
/// layer norm, a max-shifted exponential) against the default reduce-then-map in f64 on the
/// CPU, along first, middle and last axes, with broadcast inputs.
fn map_rows_matches_cpu() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(53);
    let x = || Box::new(MapExpr::Input(0));
    let centred = MapExpr::Binary(BinaryFn::Sub, x(), Box::new(MapExpr::Input(2)));
    let normalised = MapExpr::Binary(
        BinaryFn::Add,
        Box::new(MapExpr::Binary(
            BinaryFn::Div,
            Box::new(MapExpr::Binary(
                BinaryFn::Mul,
                x(),
                Box::new(MapExpr::Input(1)),
            )),
            Box::new(MapExpr::Unary(
                UnaryFn::Sqrt,
                Box::new(MapExpr::Binary(
                    BinaryFn::Add,
                    Box::new(MapExpr::Input(2)),
                    Box::new(MapExpr::Const(1e-5)),
                )),
            )),
        )),
        Box::new(MapExpr::Input(3)),
    );
    let shifted_exp = MapExpr::Unary(
        UnaryFn::Exp,
        Box::new(MapExpr::Binary(
            BinaryFn::Sub,
            x(),
            Box::new(MapExpr::Input(2)),
        )),
    );
    let square = MapExpr::Binary(BinaryFn::Mul, x(), x());
    for &d in &FLOATS {
        for (shape, axis) in [
            (vec![3, 5, 384], 2),
            (vec![129, 7], 0),
            (vec![2, 9, 4, 3], 1),
            (vec![5, 1000], 1),
        ] {
            let rank = shape.len();
            let (g, c) = pair(be, &mut rng, &shape, d)?;
            // A gain broadcast along every axis but `axis`.
            let mut gain_shape = vec![1; rank];
            gain_shape[axis] = shape[axis];
            let (gg, cg) = pair(be, &mut rng, &gain_shape, d)?;
            let cases = [
                (
                    "centre",
                    &centred,
                    vec![(MapExpr::Input(0), ReduceOp::Mean)],
                    1,
                ),
                (
                    "normalise",
                    &normalised,
                    vec![(square.clone(), ReduceOp::Mean)],
                    2,
                ),
                (
                    "shifted exp",
                    &shifted_exp,
                    vec![(MapExpr::Input(0), ReduceOp::Max)],
                    1,
                ),
            ];
            for (what, e, reductions, gains) in cases {
                // Inputs: x, then the gain where the map reads one (Input(1)); the reductions
                // follow them; a bias (Input(3)) is the gain again.
                let (mut gi, mut ci): (Vec<&Tensor>, Vec<&Tensor>) = (vec![&g], vec![&c]);
                if gains == 2 {
                    gi.push(&gg);
                    ci.push(&cg);
                }
                let e = if gains == 2 {
                    e.clone()
                } else {
                    e.substitute(&|k| MapExpr::Input(if k == 2 { 1 } else { k }))
                };
                let e = if gains == 2 {
                    e.substitute(&|k| MapExpr::Input(if k == 3 { 1 } else { k }))
                } else {
                    e
                };
                rows_match(
                    (be, &gi),
                    (&cpu, &ci),
                    (&e, &reductions),
                    (&shape, axis, d),
                    &format!("map_rows {what} {d} {shape:?} axis {axis}"),
                )?;
            }
            // A whole layer norm: the variance reads the mean, both from the same input
            // passed twice; gain and bias are the gain.
            let centred_twice = MapExpr::Binary(
                BinaryFn::Sub,
                Box::new(MapExpr::Input(1)),
                Box::new(MapExpr::Input(3)),
            );
            let whole = [
                (MapExpr::Input(0), ReduceOp::Mean),
                (
                    MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(centred_twice.clone()),
                        Box::new(centred_twice),
                    ),
                    ReduceOp::Mean,
                ),
            ];
            let norm = MapExpr::Binary(
                BinaryFn::Add,
                Box::new(MapExpr::Binary(
                    BinaryFn::Div,
                    Box::new(MapExpr::Binary(
                        BinaryFn::Mul,
                        Box::new(MapExpr::Input(2)),
                        Box::new(MapExpr::Binary(
                            BinaryFn::Sub,
                            x(),
                            Box::new(MapExpr::Input(3)),
                        )),
                    )),
                    Box::new(MapExpr::Unary(
                        UnaryFn::Sqrt,
                        Box::new(MapExpr::Binary(
                            BinaryFn::Add,
                            Box::new(MapExpr::Input(4)),
                            Box::new(MapExpr::Const(1e-5)),
                        )),
                    )),
                )),
                Box::new(MapExpr::Input(2)),
            );
            rows_match(
                (be, &[&g, &g, &gg]),
                (&cpu, &[&c, &c, &cg]),
                (&norm, &whole),
                (&shape, axis, d),
                &format!("map_rows layer norm {d} {shape:?} axis {axis}"),
            )?;
            // The same view passed twice is read once, and the expressions still see both.
            let twice = MapExpr::Binary(
                BinaryFn::Sub,
                Box::new(MapExpr::Binary(
                    BinaryFn::Mul,
                    x(),
                    Box::new(MapExpr::Input(1)),
                )),
                Box::new(MapExpr::Input(2)),
            );
            let reductions = [(MapExpr::Input(1), ReduceOp::Sum)];
            rows_match(
                (be, &[&g, &g]),
                (&cpu, &[&c, &c]),
                (&twice, &reductions),
                (&shape, axis, d),
                &format!("map_rows twice {d} {shape:?} axis {axis}"),
            )?;
        }
    }
    Ok(())
}

/// Sums of hundreds of inputs and constants, more than one kernel's arguments hold, through
/// `map`, `map_reduce` and `map_normalize`: the backend cuts them into pieces.
fn expressions_past_one_kernel_are_cut_into_pieces() -> R {
    let Some(be) = cuda_or_skip() else {
        return Ok(());
    };
    let cpu = CpuBackend::new();
    let mut rng = Rng(0x5eed_0bad);
    for (shape, terms) in [
        (&[7usize][..], 700usize),
        (&[3, 129][..], 300),
        (&[1][..], 600),
    ] {
        for d in [DType::F32, DType::F64] {
            let mut gpu = Vec::new();
            let mut host = Vec::new();
            for _ in 0..terms.min(400) {
                let (g, h) = pair(be, &mut rng, shape, d)?;
                gpu.push(g);
                host.push(h);
            }
            // Σ_k c_k · x_{k mod inputs}, each constant its own argument word.
            let mut e = MapExpr::Input(0);
            for k in 1..terms {
                let term = MapExpr::Binary(
                    BinaryFn::Mul,
                    Box::new(MapExpr::Input(k % gpu.len())),
                    Box::new(MapExpr::Const(0.01 + (k % 7) as f64 * 0.005)),
                );
                e = MapExpr::Binary(BinaryFn::Add, Box::new(e), Box::new(term));
            }
            let e = MapExpr::Unary(UnaryFn::Tanh, Box::new(e));
            let g: Vec<&Tensor> = gpu.iter().collect();
            let h: Vec<&Tensor> = host.iter().collect();
            let what = format!("{terms} terms {d} {shape:?}");
            let got = be.map(&e, &g, shape, d)?;
            let want = cpu.map(&e, &h, shape, DType::F64)?;
            close(be, &got, &want, tol(d), &what)?;
            let last = shape.len() - 1;
            let got = be.map_reduce(&e, &g, shape, 1, ReduceOp::Sum, d)?;
            let want = cpu.map_reduce(&e, &h, shape, 1, ReduceOp::Sum, DType::F64)?;
            close(be, &got, &want, tol(d), &format!("{what} map_reduce"))?;
            let got = be.map_normalize(&e, &g, shape, last, NormFn::Softmax, d)?;
            let want = cpu.map_normalize(&e, &h, shape, last, NormFn::Softmax, DType::F64)?;
            close(be, &got, &want, tol(d), &format!("{what} map_normalize"))?;
        }
    }
    Ok(())
}

/// Runs the tests, each ignored (visibly, in the summary) where no CUDA device is usable.
fn main() {
    let args = libtest_mimic::Arguments::from_args();
    type Test = (&'static str, fn() -> R);
    let tests: &[Test] = &[
        (
            "upload_download_full_and_cast",
            upload_download_full_and_cast,
        ),
        (
            "map_matches_cpu_for_every_function_and_layout",
            map_matches_cpu_for_every_function_and_layout,
        ),
        ("reduce_matches_cpu", reduce_matches_cpu),
        ("normalize_matches_cpu", normalize_matches_cpu),
        ("gather_and_scatter_match_cpu", gather_and_scatter_match_cpu),
        ("contract_matches_cpu", contract_matches_cpu),
        (
            "contract_map_epilogues_match_cpu",
            contract_map_epilogues_match_cpu,
        ),
        (
            "boolean_contractions_count_paths_exactly",
            boolean_contractions_count_paths_exactly,
        ),
        (
            "shared_index_vectors_are_reused_and_still_checked",
            shared_index_vectors_are_reused_and_still_checked,
        ),
        ("tf32_contract_is_within_1e3", tf32_contract_is_within_1e3),
        (
            "a_recording_replays_its_work_over_the_same_memory",
            a_recording_replays_its_work_over_the_same_memory,
        ),
        (
            "non_finite_flag_finds_one_bad_element_among_many_tensors",
            non_finite_flag_finds_one_bad_element_among_many_tensors,
        ),
        (
            "map_many_into_rejects_views_and_wrong_shapes",
            map_many_into_rejects_views_and_wrong_shapes,
        ),
        (
            "allocator_reuses_freed_blocks",
            allocator_reuses_freed_blocks,
        ),
        ("out_of_memory_is_an_error", out_of_memory_is_an_error),
        ("attention_kernel_matches_cpu", attention_kernel_matches_cpu),
        ("map_rows_matches_cpu", map_rows_matches_cpu),
        (
            "expressions_past_one_kernel_are_cut_into_pieces",
            expressions_past_one_kernel_are_cut_into_pieces,
        ),
    ];
    let missing = CudaBackend::open().err().map(|e| e.to_string());
    if let Some(why) = &missing {
        eprintln!("every CUDA test is ignored: no usable CUDA device ({why})");
    }
    let trials = tests
        .iter()
        .map(|&(name, f)| {
            libtest_mimic::Trial::test(name, move || f().map_err(|e| e.to_string().into()))
                .with_ignored_flag(missing.is_some())
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
