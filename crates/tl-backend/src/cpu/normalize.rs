//! Softmax and layer norm along one axis.
//!
//! The input is read row-major and seen as `[outer, n, inner]`; with `inner == 1` every
//! normalised run is contiguous, otherwise each `[n, inner]` slab is processed a row at a time
//! so the loops stay unit-stride.

use super::storage::{read, reserve, shape_err, zeroed, Float};
use crate::error::Result;
use crate::ops::NormFn;
use crate::ops::LAYER_NORM_EPS as EPS;
use crate::tensor::Tensor;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task.
const GRAIN: usize = 1 << 14;

/// Normalises `t` along `axis`, returning row-major elements of the same shape.
pub(crate) fn normalize<T: Float>(t: &Tensor, axis: usize, func: NormFn) -> Result<Vec<T>> {
    let rank = t.rank();
    if axis >= rank {
        return Err(shape_err(
            "normalize",
            format!("axis {axis} of a rank-{rank} tensor"),
        ));
    }
    let x = read::<T>("normalize", t)?;
    let shape = t.shape();
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let slab = n * inner;
    if slab == 0 || x.is_empty() {
        return Ok(x.into_owned());
    }
    let per_task = (GRAIN / slab).max(1) * slab;
    if inner == 1 {
        // Runs along the last axis: each row is read from the input and written once into
        // an output that is not zeroed in advance (see `map`).
        let mut out = reserve::<T>(x.len())?;
        let room = &mut out.spare_capacity_mut()[..x.len()];
        let work = |(src, dst): (&[T], &mut [MaybeUninit<T>])| {
            let dst = zeroed(dst);
            for (a, b) in src.chunks(n).zip(dst.chunks_mut(n)) {
                wide_row(a, b, func);
            }
        };
        if x.len() > per_task {
            x.par_chunks(per_task)
                .zip(room.par_chunks_mut(per_task))
                .for_each(work);
        } else {
            work((&x, room));
        }
        // SAFETY: every task zeroed, then wrote, its part of the first `x.len()` elements.
        unsafe { out.set_len(x.len()) };
        return Ok(out);
    }
    let mut out = x.into_owned();
    let work = |s: &mut [T]| {
        for one in s.chunks_mut(slab) {
            columns(one, n, inner, func);
        }
    };
    if out.len() > per_task {
        out.par_chunks_mut(per_task).for_each(work);
    } else {
        work(&mut out);
    }
    Ok(out)
}

super::vector::widest!(
    /// [`row`] in the widest copy this processor runs.
    wide_row, row, Float, (x: &[T], out: &mut [T], func: NormFn)
);

/// Lanes of the partial maxima and sums of a row: independent accumulators, so the
/// reductions vectorise (one float accumulator would be a chain the compiler must keep).
const LANES: usize = 16;

/// `f` folded over `x` into [`LANES`] partial results, then those combined with `combine`.
#[inline(always)]
fn fold<T: Float>(x: &[T], init: T, f: impl Fn(T, T) -> T, combine: impl Fn(T, T) -> T) -> T {
    let mut acc = [init; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            acc[k] = f(acc[k], c[k]);
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        acc[k] = f(acc[k], v);
    }
    acc.iter().fold(init, |a, &b| combine(a, b))
}

fn add<T: Float>(a: T, b: T) -> T {
    a + b
}

/// Normalises one contiguous run `x` into `out`.
#[inline(always)]
fn row<T: Float>(x: &[T], out: &mut [T], func: NormFn) {
    let len = T::from_usize(x.len());
    match func {
        NormFn::Softmax => {
            let mx = fold(x, -T::INF, T::max, T::max);
            for (o, &v) in out.iter_mut().zip(x) {
                *o = (v - mx).exp();
            }
            let inv = T::from_f64(1.0) / fold(out, T::ZERO, add, add);
            out.iter_mut().for_each(|o| *o = *o * inv);
        }
        NormFn::LayerNorm => {
            let mean = fold(x, T::ZERO, add, add) / len;
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v - mean;
            }
            let var = fold(out, T::ZERO, |a, b| a + b * b, add) / len;
            let inv = T::from_f64(1.0) / (var + T::from_f64(EPS)).sqrt();
            out.iter_mut().for_each(|o| *o = *o * inv);
        }
    }
}

/// Normalises each column of an `[n, inner]` row-major slab in place.
fn columns<T: Float>(v: &mut [T], n: usize, inner: usize, func: NormFn) {
    let len = T::from_usize(n);
    let mut a = vec![T::ZERO; inner];
    let mut b = vec![T::ZERO; inner];
    match func {
        NormFn::Softmax => {
            a.fill(-T::INF);
            for r in v.chunks(inner) {
                a.iter_mut().zip(r).for_each(|(m, &x)| *m = m.max(x));
            }
            for r in v.chunks_mut(inner) {
                for ((x, &m), s) in r.iter_mut().zip(&a).zip(b.iter_mut()) {
                    *x = (*x - m).exp();
                    *s += *x;
                }
            }
            b.iter_mut().for_each(|s| *s = T::from_f64(1.0) / *s);
            for r in v.chunks_mut(inner) {
                r.iter_mut().zip(&b).for_each(|(x, &s)| *x = *x * s);
            }
        }
        NormFn::LayerNorm => {
            for r in v.chunks(inner) {
                a.iter_mut().zip(r).for_each(|(m, &x)| *m += x);
            }
            a.iter_mut().for_each(|m| *m = *m / len);
            for r in v.chunks(inner) {
                for ((s, &m), &x) in b.iter_mut().zip(&a).zip(r) {
                    *s += (x - m) * (x - m);
                }
            }
            b.iter_mut()
                .for_each(|s| *s = T::from_f64(1.0) / (*s / len + T::from_f64(EPS)).sqrt());
            for r in v.chunks_mut(inner) {
                for ((x, &m), &s) in r.iter_mut().zip(&a).zip(&b) {
                    *x = (*x - m) * s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cpu::fixtures::*;
    use crate::cpu::CpuBackend;
    use crate::dtype::DType;
    use crate::error::{BackendError, Result};
    use crate::ops::NormFn;
    use crate::Calls;

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
                                let var = col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>()
                                    / n as f64;
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
}
