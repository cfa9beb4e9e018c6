//! Softmax and layer norm along one axis.
//!
//! The input is read row-major and seen as `[outer, n, inner]`; with `inner == 1` every
//! normalised run is contiguous, otherwise each `[n, inner]` slab is processed a row at a time
//! so the loops stay unit-stride.

use super::storage::{read, shape_err, Float};
use crate::error::Result;
use crate::ops::NormFn;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Layer-norm epsilon (PyTorch's default).
const EPS: f64 = 1e-5;
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
    let mut out = x.into_owned();
    if slab == 0 || out.is_empty() {
        return Ok(out);
    }
    let per_task = (GRAIN / slab).max(1) * slab;
    let work = |s: &mut [T]| {
        for one in s.chunks_mut(slab) {
            if inner == 1 {
                row(one, func);
            } else {
                columns(one, n, inner, func);
            }
        }
    };
    if out.len() > per_task {
        out.par_chunks_mut(per_task).for_each(work);
    } else {
        work(&mut out);
    }
    Ok(out)
}

/// Normalises one contiguous run in place.
fn row<T: Float>(v: &mut [T], func: NormFn) {
    let len = T::from_usize(v.len());
    match func {
        NormFn::Softmax => {
            let mx = v.iter().fold(-T::INF, |a, &b| a.max(b));
            let mut sum = T::ZERO;
            for x in v.iter_mut() {
                *x = (*x - mx).exp();
                sum += *x;
            }
            let inv = T::from_f64(1.0) / sum;
            v.iter_mut().for_each(|x| *x = *x * inv);
        }
        NormFn::LayerNorm => {
            let mean = v.iter().fold(T::ZERO, |a, &b| a + b) / len;
            let var = v.iter().fold(T::ZERO, |a, &b| a + (b - mean) * (b - mean)) / len;
            let inv = T::from_f64(1.0) / (var + T::from_f64(EPS)).sqrt();
            v.iter_mut().for_each(|x| *x = (*x - mean) * inv);
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
