//! Gather and scatter through flat (row-major) indices: the primitives that index arithmetic,
//! slices, diagonals and projections lower to.

use super::storage::{check_layout, host, read, shape_err, strided_collect, Float};
use crate::error::Result;
use crate::host::HostData;
use crate::ops::ReduceOp;
use crate::tensor::Tensor;
use rayon::prelude::*;

/// Indices per parallel task.
const GRAIN: usize = 1 << 15;

/// Checks that `index` fills `out_shape` and returns the element count.
fn check_index(op: &'static str, index: &[i64], out_shape: &[usize]) -> Result<usize> {
    let n: usize = out_shape.iter().product();
    if index.len() != n {
        return Err(shape_err(
            op,
            format!("{} indices for an output of {n} elements", index.len()),
        ));
    }
    Ok(n)
}

/// `out[k] = src[index[k]]` (0 where negative), erroring on indices past the end.
fn gather_slice<S: Copy + Send + Sync + Default>(src: &[S], index: &[i64]) -> Result<Vec<S>> {
    if let Some(&bad) = index
        .iter()
        .find(|&&i| i >= 0 && i as u64 >= src.len() as u64)
    {
        return Err(shape_err(
            "gather",
            format!("index {bad} into a tensor of {} elements", src.len()),
        ));
    }
    let pick = |&i: &i64| {
        if i < 0 {
            S::default()
        } else {
            src[i as usize]
        }
    };
    Ok(if index.len() >= GRAIN {
        index.par_iter().map(pick).collect()
    } else {
        index.iter().map(pick).collect()
    })
}

/// Gathers Boolean data as Booleans (no arithmetic, so no reason to widen).
pub(crate) fn gather_bool(
    t: &Tensor,
    index: &[i64],
    out_shape: &[usize],
) -> Result<Option<HostData>> {
    check_index("gather", index, out_shape)?;
    let data = host(t)?;
    let HostData::Bool(v) = data.as_ref() else {
        return Ok(None);
    };
    check_layout("gather", &t.layout, v.len())?;
    let flat = strided_collect(v, &t.layout, |x| x);
    Ok(Some(HostData::Bool(gather_slice(&flat, index)?)))
}

/// Gathers in compute type `T`.
pub(crate) fn gather<T: Float>(t: &Tensor, index: &[i64], out_shape: &[usize]) -> Result<Vec<T>> {
    check_index("gather", index, out_shape)?;
    let src = read::<T>("gather", t)?;
    gather_slice(&src, index)
}

/// Scatters `values` into a fresh zero tensor of `out_shape`, combining collisions with `op`.
pub(crate) fn scatter<T: Float>(
    values: &Tensor,
    index: &[i64],
    out_shape: &[usize],
    op: ReduceOp,
) -> Result<Vec<T>> {
    let vals = read::<T>("scatter", values)?;
    if index.len() != vals.len() {
        return Err(shape_err(
            "scatter",
            format!("{} indices for {} values", index.len(), vals.len()),
        ));
    }
    let n: usize = out_shape.iter().product();
    if let Some(&bad) = index.iter().find(|&&i| i >= 0 && i as u64 >= n as u64) {
        return Err(shape_err(
            "scatter",
            format!("index {bad} into an output of {n} elements"),
        ));
    }
    let pairs = index
        .iter()
        .zip(vals.iter())
        .filter(|(&i, _)| i >= 0)
        .map(|(&i, &v)| (i as usize, v));
    let mut out = vec![T::ZERO; n];
    match op {
        ReduceOp::Sum => pairs.for_each(|(i, v)| out[i] += v),
        ReduceOp::Mean => {
            let mut count = vec![0usize; n];
            pairs.for_each(|(i, v)| {
                out[i] += v;
                count[i] += 1;
            });
            for (o, &c) in out.iter_mut().zip(&count) {
                if c > 0 {
                    *o = *o / T::from_usize(c);
                }
            }
        }
        ReduceOp::Max | ReduceOp::Min => {
            let mut hit = vec![false; n];
            let max = op == ReduceOp::Max;
            pairs.for_each(|(i, v)| {
                out[i] = match (hit[i], max) {
                    (false, _) => v,
                    (true, true) => out[i].max(v),
                    (true, false) => out[i].min(v),
                };
                hit[i] = true;
            });
        }
    }
    Ok(out)
}
